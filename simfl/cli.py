"""The command line: parse, load, call, write. Bad input: one line on stderr, exit code 2."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from simfl.errors import ScenarioError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Simulate the time, energy, CO2 and cost of federated fine-tuning.")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
EXIT_BAD_INPUT = 2


def _bad_input(fn: Callable) -> Callable:
    """Turn a ScenarioError into one line on stderr and exit code 2, no traceback."""
    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ScenarioError as e:
            file = kwargs.get("scenario")
            msg = str(e.with_file(file)) if file is not None else str(e)
            err.print(f"error: {msg}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
    return wrapper


def _load_and_build(scenario: Path):
    import numpy as np

    from simfl import load_scenario
    from simfl.build import build

    sc = load_scenario(scenario)
    built = build(sc, np.random.default_rng(sc.seed))  # catches OOM and uncovered models before a run
    return sc, built


def _summary_table(summary: dict) -> Table:
    e = summary["energy_j"]
    t = Table(title=f"simfl: {summary['scenario']} (seed {summary['seed']})", show_header=False)
    t.add_column(style="bold")
    t.add_column(justify="right")
    hours = summary["sim_time_s"] / 3600
    g = summary["granularity_mean"]
    rows = [
        ("rounds", f"{summary['rounds_completed']}"),
        ("simulated time", f"{hours:,.2f} h ({summary['sim_time_s']:,.0f} s)"),
        ("granularity G (mean)", "n/a" if g is None else f"{g:,.3g}"),
        ("client-rounds completed / dropped / late",
         " / ".join(str(summary["client_rounds"][k]) for k in ("completed", "dropped", "late"))),
        ("data down / up", f"{summary['network_bits']['down'] / 8e9:,.3f} / "
                           f"{summary['network_bits']['up'] / 8e9:,.3f} GB"),
        ("energy: client compute", f"{e['client_compute'] / 3.6e6:,.4g} kWh"),
        ("energy: client idle", f"{e['client_idle'] / 3.6e6:,.4g} kWh"),
        ("energy: network", f"{e['network'] / 3.6e6:,.4g} kWh"),
        ("energy: server", f"{e['server'] / 3.6e6:,.4g} kWh"),
        ("energy: total", f"{summary['kwh_total']:,.4g} kWh"),
        ("network kWh per round (mean)", f"{summary['kwh_network_per_round_mean']:,.4g}"),
        ("CO2", f"{summary['co2_kg']:,.4g} kg"),
        ("energy cost", f"{summary['cost']:,.2f} {summary['currency']}"),
    ]
    for k, v in rows:
        t.add_row(k, v)
    return t


@app.command()
@_bad_input
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default runs/<name>/).")] = None,
    plots: Annotated[bool, typer.Option(help="Write timeline.png and energy.png.")] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Simulate every round of a scenario and write summary, tables, resolved scenario and plots."""
    from simfl import simulate
    from simfl.report.write import write_run

    sc, _ = _load_and_build(scenario)
    target = out_dir or Path("runs") / sc.name
    show = progress and sys.stderr.isatty()
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err, disable=not show, transient=True) as bar:
        task = bar.add_task(f"simulating {sc.name}", total=sc.federation.rounds)
        result = simulate(sc, on_round=lambda _i: bar.advance(task))
    write_run(result, target, plots=plots)
    for w in result.warnings:
        err.print(f"warning: {w}", markup=False, highlight=False)
    out.print(_summary_table(result.summary))
    out.print(f"wrote {target}/", highlight=False)


@app.command()
@_bad_input
def validate(scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")]) -> None:
    """Check a scenario: schema, data files, and that every device can train the model at that batch."""
    sc, built = _load_and_build(scenario)
    for w in built.warnings:
        err.print(f"warning: {w}", markup=False, highlight=False)
    inputs = built.inputs
    out.print(f"{scenario}: ok: {sc.name}, {len(inputs.clients)} clients, {inputs.clients_selected} selected "
              f"a round, {sc.federation.rounds} rounds, {inputs.trainable_params:,} trainable params "
              f"({inputs.bits_per_transfer / 8e6:,.2f} MB a transfer)", highlight=False)


@app.command()
def profiles() -> None:
    """List the hardware profiles and network models simfl can find, and where it looked."""
    from simfl.config.load import NETWORK_DIR, PROFILE_DIR, available, load_model, search_dirs
    from simfl.config.profiles import HardwareProfile, NetworkModel

    t = Table(title="hardware profiles")
    t.add_column("name", no_wrap=True)
    for col in ("kind", "TFLOP/s", "mem GB", "idle W", "trains (L lora, F full)"):
        t.add_column(col)
    for p in available(PROFILE_DIR):
        try:
            h = load_model(HardwareProfile, p)
        except ScenarioError as e:
            t.add_row(p.stem, "[red]invalid[/red]", "", "", "", e.message)
            continue
        covers: dict[str, set[str]] = {}
        for x in h.training:
            if not x.oom:
                covers.setdefault(x.model.removeprefix("flan-t5-"), set()).add(x.finetuning)
        models = [m + ":" + "".join(sorted((f[0].upper() for f in fts), key="LF".index))
                  for m, fts in covers.items()]
        t.add_row(h.name, "estimated" if h.estimated else "measured", f"{h.peak_flops / 1e12:,.3g}",
                  f"{h.memory_bytes / 1e9:,.3g}", f"{h.idle_power_w:g}", " ".join(models))
    out.print(t)
    n = Table(title="network models")
    n.add_column("name", no_wrap=True)
    for col in ("down Mbit/s", "up Mbit/s", "latency ms", "nJ/bit up", "nJ/bit down"):
        n.add_column(col, justify="right")
    for p in available(NETWORK_DIR):
        try:
            m = load_model(NetworkModel, p)
        except ScenarioError as e:
            n.add_row(p.stem, "[red]invalid[/red]", e.message, "", "", "")
            continue
        n.add_row(m.name, f"{m.downlink_bps / 1e6:,.6g}", f"{m.uplink_bps / 1e6:,.6g}", f"{m.latency_s * 1e3:g}",
                  f"{m.energy_per_bit_up_j * 1e9:,.5g}", f"{m.energy_per_bit_down_j * 1e9:,.5g}")
    out.print(n)
    dirs = [str(d) for kind in (PROFILE_DIR, NETWORK_DIR) for d in search_dirs(kind)]
    out.print("searched: " + ", ".join(dirs), highlight=False)


@app.command()
def schema() -> None:
    """Print the scenario JSON Schema (for editor completion and validation)."""
    from simfl.config.scenario import Scenario

    sys.stdout.write(json.dumps(Scenario.model_json_schema(), indent=2) + "\n")


if __name__ == "__main__":
    app()
