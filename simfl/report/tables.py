"""Records -> the pandas tables of the output contract (rounds.csv, clients.csv), and the status line."""

from __future__ import annotations

import dataclasses

import pandas as pd

from simfl.sim.records import CLIENT_FIELDS, RoundRecord, RunRecords
from simfl.summary import Summary

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


def status_row(summary: Summary) -> tuple[str, str]:
    """The console and report line of client-job statuses; `stale` only where it can happen (async modes)."""
    names = ["completed", "dropped", "late", "surplus", "offline"]
    if summary.mode != "sync":
        names.append("stale")
    return (f"client-rounds {' / '.join(names)}", " / ".join(str(getattr(summary.client_rounds, k)) for k in names))


def embodied_row(summary: Summary) -> tuple[str, str]:
    """The console and report line of embodied CO2: the share charged to the job, and which devices no source
    gives a figure for (so not counted)."""
    missing = summary.embodied_not_counted
    text = f"{summary.co2_embodied_kg:,.4g} kg"
    if missing:
        text += f" (not counted: {', '.join(missing)}: no published figure)"
    return ("CO2 embodied (the job's share)", text)


def charge_row(summary: Summary) -> tuple[str, str]:
    """How the hardware was charged: per device, its basis (a share of its life, the purchase whole or over N jobs,
    rented by the hour)."""
    parts = [f"{h.device} x {h.count}: {h.charge.replace('_', ' ')}" for h in summary.costs.hardware]
    return ("hardware charged as", "; ".join(parts) if parts else "no priced device")
