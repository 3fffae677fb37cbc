"""The summary's loud warnings: rounds that aggregated nothing, or mostly fewer than K uploads, and why."""

from __future__ import annotations

import numpy as np

from simfl.config.scenario import Scenario

Columns = dict[str, np.ndarray]  # a round-record field -> its values, one per round


def _rows(rounds: Columns, keep: np.ndarray) -> Columns:
    return {name: values[keep] for name, values in rounds.items()}


def run_warnings(rounds: Columns, scenario: Scenario) -> list[str]:
    """What a user must not miss: rounds that aggregated nothing, or mostly fewer than K uploads, and why."""
    n = len(rounds["round"])
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
                   f"nothing; {short_of_k_causes(_rows(rounds, done == 0), scenario)}")
    short = int((done < k).sum())
    if empty < n and short * 2 > n:
        out.append(f"{short} of {n} rounds aggregated fewer than K = {k} uploads; "
                   f"{short_of_k_causes(_rows(rounds, done < k), scenario)}")
    return out


def short_of_k_causes(rounds: Columns, scenario: Scenario) -> str:
    """Why `rounds` (each short of K uploads) were short, from their counts, each cause named with the field
    that sets it: too few clients online to select K (availability), selected clients going offline before
    their upload (availability), dropouts (dropout_prob), clients still working at the deadline (deadline_s),
    updates too stale (max_staleness). Over-selection never costs an upload, so it is not blamed."""
    fed = scenario.federation
    k = fed.clients_per_round
    n_rounds = len(rounds["round"])
    varying = [i for i, g in enumerate(scenario.fleet) if g.availability.kind != "always"]
    see = "; see " + (", ".join(f"fleet[{i}].availability" for i in varying) or "the availability models")
    causes = []

    def in_how_many(m: int) -> str:
        return "" if n_rounds == 1 else f" (in {m} of these {n_rounds} rounds)"

    # A synchronous round selects min(wanted, online) clients: fewer than K selected means fewer than K online.
    selected = rounds["clients_selected"]
    few = np.flatnonzero(selected < k) if fed.mode == "sync" and varying else np.array([], dtype=int)
    if len(few):
        worst = few[np.argmin(selected[few])]  # the first round of the fewest
        n, r, of = int(selected[worst]), int(rounds["round"][worst]), scenario.population
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
