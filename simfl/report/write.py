"""Write a run's files: all into a temporary folder, then moved into place (no half-written output)."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from simfl.config.load import dump_scenario


@contextlib.contextmanager
def atomic_dir(out_dir: Path) -> Iterator[Path]:
    """Yield a temporary folder beside out_dir; on success it replaces out_dir, on failure it is removed."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        yield tmp
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_run(result, out_dir: Path, plots: bool = True) -> Path:
    with atomic_dir(out_dir) as tmp:
        (tmp / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
        result.rounds.to_csv(tmp / "rounds.csv", index=False)
        result.clients.to_csv(tmp / "clients.csv", index=False)
        (tmp / "scenario.resolved.yaml").write_text(dump_scenario(result.scenario))
        if plots:
            from simfl.report.plots import energy_breakdown, timeline

            timeline(result.rounds, result.clients, tmp / "timeline.png")
            energy_breakdown(result.summary, tmp / "energy.png")
    return Path(out_dir)
