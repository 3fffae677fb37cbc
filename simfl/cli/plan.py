"""simfl sweep and simfl plan: many scenarios from one, simulated locally or on Ray, as a table or a plan."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from simfl.cli.common import app, bad_input, err, out
from simfl.errors import ScenarioError

WORKERS = "Points simulated at once: processes of the local pool, or Ray's CPUs for a local Ray."
EXECUTOR = "local (a process pool) or ray (Ray tasks; pip install 'simfl[cluster]')."
ADDRESS = "Ray cluster address (ray://host:10001 or auto); default: start a local Ray."


def _check(workers: int, executor: str) -> None:
    from simfl.plan.executors import check_workers

    check_workers(workers)
    if executor not in ("local", "ray"):
        raise ScenarioError(f"expected local or ray, got {executor!r}", field="--executor")


class _Bar:
    """A progress bar that counts points (those resumed from a journal count as done)."""

    def __init__(self, what: str):
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=err, disable=not sys.stderr.isatty(), transient=True)
        self.what, self.task = what, None

    def start(self, total: int, done: int) -> None:
        self.task = self.progress.add_task(self.what, total=total, completed=min(done, total))

    def point(self, _i: int, _row: dict) -> None:
        self.progress.advance(self.task)


def _evaluate(run, spec: Path, out_dir: Path | None, suffix: str, what: str, workers: int, executor: str,
              address: str | None, report, with_report: bool):
    """The part sweep and plan share: check the options, claim the folder, run with a progress bar, report."""
    from simfl.report.outdir import default_dir

    _check(workers, executor)
    target = out_dir or default_dir(spec.stem, suffix)
    bar = _Bar(f"{what} {spec.name}")
    with bar.progress:
        result = run(spec, target, workers=workers, executor=executor, address=address, on_start=bar.start,
                     on_point=bar.point)
    if with_report:
        report(result, spec)
    return result, target


@app.command()
@bad_input
def sweep(
    spec: Annotated[Path, typer.Argument(help="Sweep YAML: scenario, replicates, axes.")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default runs/<file>-sweep/).")] = None,
    workers: Annotated[int, typer.Option(help=WORKERS)] = 1,
    executor: Annotated[str, typer.Option(help=EXECUTOR)] = "local",
    address: Annotated[str | None, typer.Option(help=ADDRESS)] = None,
    report: Annotated[bool, typer.Option(help="Write report.html.")] = True,
) -> None:
    """Simulate every combination of the axes; write sweep.csv and sweep.parquet, a row a point.
    Run it again after an interruption and it finishes only the points that were left."""
    from simfl.plan.sweep import run_sweep
    from simfl.report.html import sweep_report

    result, target = _evaluate(run_sweep, spec, out_dir, "-sweep", "sweeping", workers, executor, address,
                               sweep_report, report)
    t = result.table
    ok, stopped = int((t["status"] == "ok").sum()), int((t["status"] == "stopped").sum())
    out.print(f"{len(t)} points: {ok + stopped} ran" + (f" ({stopped} stopped early)" if stopped else "")
              + f", {len(t) - ok - stopped} invalid"
              + (f" ({result.resumed} taken from an earlier run of the same sweep)" if result.resumed else ""),
              highlight=False)
    for _, row in t[t["status"] != "ok"].head(5).iterrows():
        out.print(f"  point {row['point']}: {row['error']}", markup=False, highlight=False)
    out.print(f"wrote {target}/", highlight=False)


@app.command()
@bad_input
def plan(
    spec: Annotated[Path, typer.Argument(help="Plan YAML: scenario, choose, minimize, subject_to, replicates.")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default runs/<file>-plan/).")] = None,
    workers: Annotated[int, typer.Option(help=WORKERS)] = 1,
    executor: Annotated[str, typer.Option(help=EXECUTOR)] = "local",
    address: Annotated[str | None, typer.Option(help=ADDRESS)] = None,
    report: Annotated[bool, typer.Option(help="Write report.html.")] = True,
) -> None:
    """Find the choices that minimise a summary figure under constraints; write plan.json (best, runners-up,
    Pareto front), points.csv and report.html."""
    from simfl.plan.search import run_plan
    from simfl.report.html import plan_report

    result, target = _evaluate(run_plan, spec, out_dir, "-plan", "planning", workers, executor, address,
                               plan_report, report)
    p = result.plan
    out.print(f"{p['method']} search: {p['evaluated']} of {p['space']} points evaluated, {p['feasible']} feasible, "
              f"{p['invalid']} invalid"
              + (f", {p['excluded_stopped_early']} excluded as stopped early" if p["excluded_stopped_early"] else ""),
              highlight=False)
    for e in p["stopped_early"][:5]:
        out.print(f"  point {e['point']} stopped early: {e['reason']}", markup=False, highlight=False)
    if p["best"] is None:
        out.print("no point meets the constraints", highlight=False)
    else:
        out.print(_plan_table(p))
        c = p.get("confidence")
        if c:
            others = ", ".join(f"point {o['point']} in {100 * o['share']:.0f} %" for o in c["other_winners"][:3])
            out.print(f"over {c['draws']} draws (seeds and predicted inputs): the best meets every constraint in "
                      f"{100 * c['meets_constraints']:.0f} % and is the cheapest that does in "
                      f"{100 * c['cheapest_feasible']:.0f} %" + (f"; others win: {others}" if others else ""),
                      highlight=False)
    out.print(f"wrote {target}/", highlight=False)


def _plan_table(p: dict) -> Table:
    names = list(p["best"]["choices"])
    figs = [p["minimize"], *[f for f in p["subject_to"] if f != p["minimize"]]]
    t = Table(title=f"minimise {p['minimize']}" + (f" subject to {', '.join(f'{k} {v}' for k, v in p['subject_to'].items())}"
                                                   if p["subject_to"] else ""))
    t.add_column("")
    for n in names + figs:
        t.add_column(n, justify="right")
    for label, e in [("best", p["best"])] + [(f"#{i + 2}", e) for i, e in enumerate(p["runners_up"])]:
        t.add_row(label, *[str(e["choices"][n]) for n in names], *[f"{e['figures'][f]:,.4g}" for f in figs])
    return t
