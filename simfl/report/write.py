"""Write a run's files: all into a temporary folder, then moved into place (no half-written output)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from simfl.config.load import dump_scenario


def write_run(result, out_dir: Path, plots: bool = True) -> Path:
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        (tmp / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
        result.rounds.to_csv(tmp / "rounds.csv", index=False)
        result.clients.to_csv(tmp / "clients.csv", index=False)
        (tmp / "scenario.resolved.yaml").write_text(dump_scenario(result.scenario))
        if plots:
            from simfl.report.plots import energy_breakdown, timeline

            timeline(result.rounds, result.clients, tmp / "timeline.png")
            energy_breakdown(result.summary, tmp / "energy.png")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
