"""Records -> pandas tables and the summary dict of the output contract."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import pandas as pd

from simfl.config.scenario import Scenario
from simfl.costs import energy_cost, kwh
from simfl.sim.job import STATUSES
from simfl.sim.records import CLIENT_FIELDS, RoundRecord, RunRecords

ROUND_COLUMNS = [
    "round", "start_s", "end_s", "clients_selected", "clients_completed", "t_comp_s", "t_comm_s",
    "granularity", "bits_down", "bits_up", "energy_network_j", "energy_client_compute_j",
    "energy_client_idle_j", "energy_server_j", "clients_dropped", "clients_late", "clients_surplus",
    "aggregation_s", "clients_offline", "wait_s", "co2_g", "clients_stale", "staleness_mean", "staleness_max",
]
CLIENT_COLUMNS = [
    "round", "client", "device", "network", "download_start_s", "download_end_s", "compute_start_s",
    "compute_end_s", "upload_start_s", "upload_end_s", "status", "energy_compute_j", "energy_idle_j",
    "energy_network_j", "compute_s", "bits_down", "bits_up", "end_s", "group", "cell",
    "version_downloaded", "version_aggregated", "staleness",
]


def _frame(rows: list, cls: type, columns: list[str]) -> pd.DataFrame:
    names = [f.name for f in dataclasses.fields(cls)]
    df = pd.DataFrame.from_records([dataclasses.astuple(r) for r in rows], columns=names)
    return df[columns]


def rounds_frame(records: RunRecords) -> pd.DataFrame:
    return _frame(records.rounds, RoundRecord, ROUND_COLUMNS)


def clients_frame(records: RunRecords) -> pd.DataFrame:
    """All client-round rows (those kept in memory: a run streamed to a sink has none here)."""
    frames = [pd.DataFrame(chunk) for chunk in records.clients.chunks()]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(CLIENT_FIELDS))
    return df[CLIENT_COLUMNS]


def status_row(summary: dict) -> tuple[str, str]:
    """The console and report line of client-job statuses; `stale` only where it can happen (async modes)."""
    names = ["completed", "dropped", "late", "surplus", "offline"]
    if summary.get("mode", "sync") != "sync":
        names.append("stale")
    return (f"client-rounds {' / '.join(names)}", " / ".join(str(summary["client_rounds"][k]) for k in names))


def run_warnings(rounds: pd.DataFrame, scenario: Scenario) -> list[str]:
    """What a user must not miss: rounds that aggregated nothing, or mostly fewer than K uploads, and why."""
    n = len(rounds)
    if n == 0:
        return []
    k = scenario.federation.clients_per_round
    done = rounds["clients_completed"]
    out = []
    empty = int((done == 0).sum())
    if empty == n:
        out.append(f"NO ROUND AGGREGATED ANY UPDATE: all {n} rounds ended with 0 uploads, so this run trains "
                   f"nothing; {short_of_k_causes(rounds, scenario)}")
    elif empty:
        out.append(f"{empty} of {n} rounds aggregated no update (0 uploads); their time and energy bought "
                   f"nothing; {short_of_k_causes(rounds[done == 0], scenario)}")
    short = int((done < k).sum())
    if empty < n and short * 2 > n:
        out.append(f"{short} of {n} rounds aggregated fewer than K = {k} uploads; "
                   f"{short_of_k_causes(rounds[done < k], scenario)}")
    return out


def short_of_k_causes(rounds: pd.DataFrame, scenario: Scenario) -> str:
    """Why `rounds` (each short of K uploads) were short, from their counts, each cause named with the field
    that sets it: too few clients online to select K (availability), selected clients going offline before
    their upload (availability), dropouts (dropout_prob), clients still working at the deadline (deadline_s),
    updates too stale (max_staleness). Over-selection never costs an upload, so it is not blamed."""
    fed = scenario.federation
    k = fed.clients_per_round
    varying = [i for i, g in enumerate(scenario.fleet) if g.availability.kind != "always"]
    see = "; see " + (", ".join(f"fleet[{i}].availability" for i in varying) or "the availability models")
    causes = []

    def in_how_many(m: int) -> str:
        return "" if len(rounds) == 1 else f" (in {m} of these {len(rounds)} rounds)"

    # A synchronous round selects min(wanted, online) clients: fewer than K selected means fewer than K online.
    few = rounds[rounds["clients_selected"] < k] if fed.mode == "sync" and varying else rounds.iloc[:0]
    if len(few):
        worst = few.loc[few["clients_selected"].idxmin()]
        n, r, of = int(worst["clients_selected"]), int(worst["round"]), scenario.population
        causes.append(f"only {n} of the {of} clients were online in round {r}{see}" if len(few) == 1 else
                      f"fewer than K = {k} clients were online{in_how_many(len(few))}, as few as {n} of the {of} "
                      f"in round {r}{see}")

    def count(column: str, what: str, knob: str) -> None:
        c = rounds[column]
        if c.sum() > 0:
            causes.append(f"{int(c.sum())} selected client(s) {what}{in_how_many(int((c > 0).sum()))}{knob}")

    count("clients_offline", "went offline before their upload", see)
    count("clients_dropped", "dropped out", "; see dropout_prob")
    count("clients_late", "were still working at the deadline", "; see deadline_s")
    count("clients_stale", "sent updates staler than max_staleness", "; see max_staleness")
    if not causes:
        return ("check the deadline (deadline_s), dropout_prob and over_selection against the clients' round "
                "times in rounds.csv/clients.csv")
    return "; ".join(causes)


def summarize(scenario: Scenario, rounds: pd.DataFrame, status_counts: Mapping[str, int],
              warnings: tuple[str, ...] = (), extra: dict | None = None) -> dict:
    """The summary of a run from its round table and its client-round status counts."""
    e_compute = float(rounds["energy_client_compute_j"].sum())
    e_idle = float(rounds["energy_client_idle_j"].sum())
    e_net = float(rounds["energy_network_j"].sum())
    e_server = float(rounds["energy_server_j"].sum())
    total_j = e_compute + e_idle + e_net + e_server
    total_kwh = kwh(total_j)
    g = rounds["granularity"]
    g_finite = g[g.map(math.isfinite)]
    t_comp_total_s = float(rounds["t_comp_s"].sum())
    t_comm_total_s = float(rounds["t_comm_s"].sum())
    acc = scenario.accounting
    k = scenario.federation.clients_per_round
    summary = {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "mode": scenario.federation.mode,
        "rounds_completed": int(len(rounds)),
        "rounds_without_update": int((rounds["clients_completed"] == 0).sum()),
        "rounds_short_of_k": int((rounds["clients_completed"] < k).sum()),
        "sim_time_s": float(rounds["end_s"].max()) if len(rounds) else 0.0,
        "granularity_mean": float(g_finite.mean()) if len(g_finite) else None,
        "granularity_total": (t_comp_total_s / t_comm_total_s
                              if t_comm_total_s > 0 and rounds["clients_completed"].any() else None),
        "t_comp_total_s": t_comp_total_s,
        "t_comm_total_s": t_comm_total_s,
        "network_bits": {"down": float(rounds["bits_down"].sum()), "up": float(rounds["bits_up"].sum())},
        "energy_j": {
            "client_compute": e_compute,
            "client_idle": e_idle,
            "network": e_net,
            "server": e_server,
            "total": total_j,
        },
        "kwh_total": total_kwh,
        "kwh_network_per_round_mean": kwh(e_net) / len(rounds) if len(rounds) else 0.0,
        # each joule at the grid intensity of the instant it was spent (a flat intensity without a file)
        "co2_kg": float(rounds["co2_g"].sum()) / 1000.0,
        "cost_energy": energy_cost(total_kwh, acc.price_per_kwh),
        "currency": acc.currency,
        "client_rounds": {s: int(status_counts.get(s, 0)) for s in STATUSES},
        "warnings": [*warnings, *run_warnings(rounds, scenario)],
    }
    if extra:
        summary.update(extra)
    return summary


def world_summary(scenario: Scenario, records: RunRecords, sim_time_s: float, start_hours: tuple[str, ...]) -> dict:
    """What a varying world adds to the summary: per-group participation, per-cell utilisation, the CO2 of
    each start hour of the day (with a carbon file), and what the engine had to say."""
    aggregated = sum(records.aggregated_by_group.values())
    groups = []
    for gi, g in enumerate(scenario.fleet):
        done = records.aggregated_by_group.get(gi, 0)
        groups.append({
            "group": gi, "device": g.device, "network": g.network, "count": g.count,
            "client_rounds": records.selected_by_group.get(gi, 0), "aggregated": done,
            "participation": done / aggregated if aggregated else None,  # share of all aggregated updates
        })
    cells = {}
    for name, cell in scenario.cells.items():
        cap = {"down": cell.downlink_bps, "up": cell.uplink_bps}
        cells[name] = {d: {"bits": records.cell_bits.get((name, d), 0.0),
                           "utilisation": (records.cell_bits.get((name, d), 0.0) / (cap[d] * sim_time_s)
                                           if sim_time_s > 0 else None)} for d in ("down", "up")}
    out = {"groups": groups, "cells": cells}
    if start_hours:
        kg = [g / 1000.0 for g in records.co2_g_by_shift] or [0.0] * len(start_hours)
        hours = [{"start_time": h, "co2_kg": c} for h, c in zip(start_hours, kg)]
        best, worst = min(hours, key=lambda h: h["co2_kg"]), max(hours, key=lambda h: h["co2_kg"])
        note = "the same schedule repriced at each start hour"
        if any(g.availability.kind == "diurnal" for g in scenario.fleet):
            note += ("; availability here is diurnal, so starting at another hour would also change the "
                     "schedule: indicative only")
        out["carbon_start_hours"] = {"best": best, "worst": worst, "hours": hours, "note": note}
    return out
