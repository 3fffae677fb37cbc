"""simfl sweep: every combination of the axes, each point simulated once (or replicated), one table.

Results are journaled as each point finishes (points.jsonl in the output folder, one complete JSON line
a point), so a sweep killed part way and run again re-runs only the points it had not finished; the
table is written at the end, in point order, and equals an uninterrupted sweep's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from simfl.config.load import ScenarioSource
from simfl.errors import ScenarioError
from simfl.safeio import MB, atomic_write, atomic_write_text, open_regular, read_text
from simfl.plan.evaluate import REPLICATE_VALUES
from simfl.plan.executors import run_local, run_ray
from simfl.plan.spec import fingerprint, point_key, points

JOURNAL = "points.jsonl"


@dataclass
class SweepResult:
    table: pd.DataFrame  # one row per point, in point order
    axes: list[str]  # the table's axis columns, in the sweep file's order
    resumed: int  # points taken from an earlier run of the same sweep (its journal)
    folder: Path


def claim_resumable(target: Path, command: str, fp: str) -> int:
    """Make `target` this sweep's folder: reuse it when it holds an interrupted run of the same sweep
    (same fingerprint), else start it afresh; the usual refusals for anything that is not simfl's.
    Returns how many journaled points it keeps."""
    from simfl.report.outdir import MARKER, OutputDir, is_simfl_output

    marker = target / MARKER
    if is_simfl_output(target):
        try:
            meta = json.loads(read_text(marker, what="output marker", max_bytes=MB))
        except (ValueError, RecursionError):  # unreadable (a ScenarioError is one): the sweep starts afresh
            meta = {}
        meta = meta if isinstance(meta, dict) else {}
        if meta.get("command") == command and meta.get("fingerprint") == fp and (target / JOURNAL).is_file():
            return sum(1 for _ in read_journal(target / JOURNAL))
    out = OutputDir(target, command)
    tmp = out.claim()  # the usual checks: not the working directory, not someone else's folder
    try:
        (tmp / JOURNAL).touch()
        out.commit()
    except BaseException:
        out.abandon()
        raise
    atomic_write_text(marker, json.dumps({"tool": "simfl", "command": command, "fingerprint": fp}) + "\n")
    return 0


def read_journal(path: Path):
    """The journal's complete entries; it is read a line at a time, and only as a regular file."""
    with open_regular(path, field="--out") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except (ValueError, RecursionError):
                continue  # a line cut short by a kill (or not UTF-8): that point runs again
            if isinstance(entry, dict) and isinstance(entry.get("index"), int) and "row" in entry:
                yield entry


def _cell(v: Any) -> Any:
    return v if v is None or isinstance(v, (bool, int, float, str)) else json.dumps(v)


def table_of(space: list[dict], rows: dict[int, dict]) -> pd.DataFrame:
    """A row per evaluated point, in point order: its index, its axis values, then its figures (not each
    replicate's: those stay in the journal)."""
    return pd.DataFrame.from_records([{"point": i, **{k: _cell(v) for k, v in space[i].items()},
                                       **{k: v for k, v in rows[i].items() if k != REPLICATE_VALUES}}
                                      for i in sorted(rows)])


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """A table or plan.json written whole or not at all into the (existing) sweep folder; see safeio."""
    atomic_write(path, write)


def run_points(scenario, space: list[dict], replicates: int, folder: Path, *, workers: int = 1,
               executor: str = "local", address: str | None = None,
               on_point: Callable[[int, dict], None] | None = None) -> tuple[dict[int, dict], int]:
    """Evaluate every point not yet in the folder's journal, journaling each as it finishes. `scenario` is the
    base (a config.load.ScenarioSource, or a path read at each point)."""
    journal = folder / JOURNAL
    done: dict[int, dict] = {}
    for entry in read_journal(journal):
        i = entry["index"]
        if i < len(space) and entry.get("key") == point_key(space[i]):
            done[i] = entry["row"]
    resumed = len(done)
    base = scenario if isinstance(scenario, ScenarioSource) else str(scenario)
    jobs = [(i, base, p, replicates) for i, p in enumerate(space) if i not in done]
    if executor == "ray":
        stream = run_ray(jobs, address, workers)
    elif executor == "local":
        stream = run_local(jobs, workers)
    else:
        raise ScenarioError(f"expected local or ray, got {executor!r}", field="--executor")
    with journal.open("a") as f:
        for i, row in stream:
            try:
                f.write(json.dumps({"index": i, "key": point_key(space[i]), "row": row}) + "\n")
                f.flush()
                os.fsync(f.fileno())
            except OSError as e:  # a full disk: one line; what is journaled is kept for the next run
                raise ScenarioError(f"cannot write {journal}: {(e.strerror or str(e)).lower()}; the points journaled "
                                    "so far are kept: run it again to finish", field="--out") from None
            done[i] = row
            if on_point:
                on_point(i, row)
    return done, resumed


def run_sweep(spec_path: Path, out: Path, *, workers: int = 1, executor: str = "local", address: str | None = None,
              on_start: Callable[[int, int], None] | None = None,
              on_point: Callable[[int, dict], None] | None = None) -> SweepResult:
    from simfl.plan.spec import SweepSpec, load_spec

    spec, scenario = load_spec(spec_path, SweepSpec)
    space = points(spec.axes)
    fp = fingerprint(spec_path, scenario.file)
    claim_resumable(out, "sweep", fp)
    if on_start:
        on_start(len(space), sum(1 for _ in read_journal(out / JOURNAL)))
    rows, resumed = run_points(scenario, space, spec.replicates, out, workers=workers, executor=executor,
                               address=address, on_point=on_point)
    table = table_of(space, rows)
    write_atomic(out / "sweep.csv", lambda p: table.to_csv(p, index=False))
    write_atomic(out / "sweep.parquet", lambda p: table.to_parquet(p, index=False))
    return SweepResult(table, list(spec.axes), resumed, out)
