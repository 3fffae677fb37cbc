"""Convergence measured for real over a grid: `simfl train` at every combination of some fields (clients per
round, local steps, the Dirichlet alpha), each run stopped at the target, written as the convergence table
a scenario's `federation.rounds: {convergence: TABLE.csv}` reads (simfl/convergence.py)."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simfl.convergence import COLUMNS

FIXED = ("clients_per_round", "local_steps", "dirichlet_alpha", "server_optimizer")


def convergence_grid(scenario_path: Path, grid: dict[str, list[Any]], *, only: list[str] | None, target: float,
                     max_rounds: int, on_run: Callable[[dict, dict], None] | None = None) -> list[dict]:
    """One row per grid point and run (server optimizer): the table's columns, then the grid's paths."""
    from simfl.config.load import load_scenario
    from simfl.fl.session import train_scenario
    from simfl.plan.spec import points

    rows = []
    for point in points(grid):
        sc = load_scenario(scenario_path, point)
        if sc.training.local_steps is None:
            from simfl.errors import ScenarioError

            raise ScenarioError("a convergence table is indexed by local steps: give training.local_steps, "
                                "not local_epochs", field="--grid")
        result = train_scenario(sc, only=only, target=target, max_rounds=max_rounds)
        for name, run in result.summary["runs"].items():
            row = {"clients_per_round": sc.federation.clients_per_round, "local_steps": sc.training.local_steps,
                   "dirichlet_alpha": sc.federation.partition.dirichlet_alpha,
                   "server_optimizer": run.get("optimizer") or name,
                   "rounds_to_target": run["rounds_to_target"], **{k: v for k, v in point.items()}}
            if "rank_aggregation" in run:  # groups of different LoRA ranks: the rule and the ranks, as columns
                row.update(rank_aggregation=run["rank_aggregation"],
                           lora_ranks=" ".join(map(str, run["lora_ranks"])))
            rows.append(row)
            if on_run:
                on_run(point, row)
    return rows


def write_table(rows: list[dict], path: Path, scenario_path: Path, target: float, max_rounds: int,
                eval_every: int) -> None:
    today = dt.date.today().isoformat()
    extra = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in COLUMNS]  # every row's, in order
    with path.open("w", newline="") as f:
        f.write(f"# source: measured by simfl train --grid on {today}: {scenario_path}, each run stopped at val "
                f"loss {target:g} (evaluated every {eval_every} rounds, so rounds are multiples of it); an empty "
                f"rounds_to_target was not reached in {max_rounds} rounds\n")
        w = csv.DictWriter(f, fieldnames=[*COLUMNS, *[k for k in extra if k.split(".")[-1] not in FIXED]],
                           extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({**r, "rounds_to_target": "" if r["rounds_to_target"] is None else r["rounds_to_target"]})
