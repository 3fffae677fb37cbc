"""Write a run's files into a folder; `write_run` claims the output folder first (see outdir.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from simfl.config.load import dump_scenario
from simfl.report.outdir import OutputDir


def _finite_or_none(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite_or_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_or_none(v) for v in x]
    return x


def json_text(obj) -> str:
    """Strict JSON (RFC 8259): a figure that is not a finite number (a diverged loss) is written as null."""
    return json.dumps(_finite_or_none(obj), indent=2, allow_nan=False) + "\n"


def write_run_files(result, folder: Path, plots: bool = True) -> None:
    """The output contract of `simfl run`, written into an existing (temporary) folder.

    Client-round rows are in clients.parquet: already there when the run streamed them into
    this folder (result.clients is None), written here otherwise. clients.csv is added for
    runs under CSV_MAX_ROWS client-rounds.
    """
    from simfl.report.parquet import CSV_MAX_ROWS, parquet_to_csv, read_rounds, write_frame

    (folder / "summary.json").write_text(json_text(result.summary.to_dict()))
    result.rounds.to_csv(folder / "rounds.csv", index=False)
    write_frame(result.rounds, folder / "rounds.parquet")
    streamed = result.clients is None
    if not streamed:
        write_frame(result.clients, folder / "clients.parquet")
    if len(result.records.clients) < CSV_MAX_ROWS:
        if streamed:
            parquet_to_csv(folder / "clients.parquet", folder / "clients.csv")
        else:
            result.clients.to_csv(folder / "clients.csv", index=False)
    (folder / "scenario.resolved.yaml").write_text(dump_scenario(result.scenario))
    if plots:
        from simfl.report.plots import TIMELINE_ROUNDS, energy_breakdown, timeline

        shown = result.rounds["round"].head(TIMELINE_ROUNDS).tolist()
        clients = read_rounds(folder / "clients.parquet", shown) if streamed else result.clients
        timeline(result.rounds, clients, folder / "timeline.png")
        energy_breakdown(result.summary, folder / "energy.png")
    from simfl.report.html import run_report

    run_report(result, folder)


def write_run(result, out_dir: Path, plots: bool = True) -> Path:
    """Write a finished run to out_dir under the output-folder rules (refuses a folder it did not write)."""
    with OutputDir(Path(out_dir), "run") as tmp:
        write_run_files(result, tmp, plots)
    return Path(out_dir)
