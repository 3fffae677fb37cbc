"""simfl run, validate, profiles and schema: simulate a scenario and show what simfl can find."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from simfl.cli.common import app, bad_input, err, out
from simfl.errors import ScenarioError


SET_HELP = "Override a field: PATH=VALUE, e.g. federation.clients_per_round=20 or fleet[0].count=400 (repeatable)."


def overrides_of(assignments: list[str] | None) -> dict:
    from simfl.config.overrides import parse_assignment

    return dict(parse_assignment(a) for a in assignments or [])


def _load_and_build(scenario: Path, assignments: list[str] | None = None):
    from simfl import load_scenario
    from simfl.build import build

    sc = load_scenario(scenario, overrides_of(assignments))
    built = build(sc)  # catches OOM and uncovered models before a run
    return sc, built


def host_warnings(sc) -> list[str]:
    """A client profile whose provenance names this machine (its `host` is this host name) but whose CPU model,
    core count or GPU is not this machine's: one warning each, never an error (simfl/hostid.py has the rule)."""
    import platform

    from simfl.hostid import here, of_profile, same_host

    out, name = [], platform.node()
    for device, i in {g.device: i for i, g in reversed(list(enumerate(sc.fleet)))}.items():
        profile = sc.hardware[device]
        if not name or (profile.provenance or {}).get("host") != name:
            continue
        gpu = profile.device_class in ("gpu", "soc-gpu")
        this, there = here(gpu=gpu), of_profile(profile.provenance)
        same, why = same_host(there, this, gpu=gpu)
        if not same:
            measured = there.describe(gpu) if there else "a host it does not record"
            out.append(f"fleet[{i}].device {device!r} names this machine ({name!r}) as the host it was measured on, "
                       f"but it was measured on {measured} and this is {this.describe(gpu)} ({why}): its step times "
                       "are that host's; run simfl calibrate here for this machine's")
    return out


DRIVER_FIGURES = ("sim_time_s", "energy_j.total", "co2_kg", "cost_total")
DRIVER_SEEDS = 20  # the seeds' spread from at most this many runs: enough for its 5th-95th, and a bounded cost


def _drivers(sc, replicates: int, folder, plots: bool) -> list[dict]:
    """What drives the spread of the run's figures (simfl/sensitivity.py), into drivers.csv and drivers.png."""
    import pandas as pd

    from simfl.sensitivity import drivers

    rows = drivers(sc, DRIVER_FIGURES, min(replicates, DRIVER_SEEDS))
    pd.DataFrame(rows).to_csv(folder / "drivers.csv", index=False)
    if plots:
        from simfl.report.plots import tornado

        tornado(rows, "sim_time_s", folder / "drivers.png")
    return rows


def _drivers_table(rows: list[dict], figure: str) -> Table:
    t = Table(title=f"what drives the spread of {figure} (5th to 95th percentile, each alone)")
    for name in ("input", "low", "high", "share of variance"):
        t.add_column(name, justify="left" if name == "input" else "right")
    for r in (r for r in rows if r["figure"] == figure):
        t.add_row(r["input"], f"{r['low']:,.4g}", f"{r['high']:,.4g}", f"{100 * r['variance_share']:.0f} %")
    return t


def _summary_table(summary, drawn: bool = False) -> Table:
    """The run's figures, read from its Summary; with replicates, a column of mean +- 95 % CI half-width beside
    the first replicate's (`drawn`: whose predicted step times were drawn, not the nominal ones)."""
    from simfl.report.tables import charge_row, embodied_row, status_row

    s, stats = summary, summary.replicates
    t = Table(title=f"simfl: {s.scenario} (seed {s.seed})", show_header=stats is not None)
    t.add_column("figure", style="bold")
    t.add_column(f"seed {s.seed}" + (", inputs drawn" if drawn else ""), justify="right")
    kwh = s.energy_kwh
    rows = [
        ("rounds", f"{s.rounds_completed}"),
        ("simulated time", f"{s.sim_time_h:,.2f} h ({s.sim_time_s:,.0f} s)"),
        ("granularity G: mean of rounds / total",
         " / ".join("n/a" if v is None else f"{v:,.3g}" for v in (s.granularity_mean, s.granularity_total))),
        status_row(s),
        ("rounds with no update / short of K", f"{s.rounds_without_update} / {s.rounds_short_of_k}"),
        ("data down / up", f"{s.network_gb.down:,.3f} / {s.network_gb.up:,.3f} GB"),
        ("energy: client compute", f"{kwh.client_compute:,.4g} kWh"),
        ("energy: client idle", f"{kwh.client_idle:,.4g} kWh"),
        ("energy: network", f"{kwh.network:,.4g} kWh"),
        ("energy: server", f"{kwh.server:,.4g} kWh"),
        ("energy: total", f"{kwh.total:,.4g} kWh"),
        ("network kWh per round (mean)", f"{s.kwh_network_per_round_mean:,.4g}"),
        ("CO2", f"{s.co2_kg:,.4g} kg"),
        embodied_row(s),
        ("cost: energy / hardware / data",
         " / ".join(f"{v:,.2f}" for v in (s.cost_energy, s.cost_hardware, s.cost_data)) + f" {s.currency}"),
        ("cost: total (purchases up front)", f"{s.cost_total:,.2f} {s.currency} ({s.capex:,.0f})"),
        charge_row(s),
    ]
    hours = s.carbon_start_hours
    if hours:
        rows.append(("CO2 if started at best / worst hour",
                     f"{hours.best.co2_kg:,.4g} kg ({hours.best.start_time[11:16]}) / "
                     f"{hours.worst.co2_kg:,.4g} kg ({hours.worst.start_time[11:16]})"))
    if stats is None:
        for k, v in rows:
            t.add_row(k, v)
        return t
    t.add_column(f"mean +- 95 % CI ({stats.of('sim_time_s').n} replicates)", justify="right")
    by_row = {"simulated time": ("sim_time_s", 1 / 3600, "h"), "energy: total": ("kwh_total", 1, "kWh"),
              "CO2": ("co2_kg", 1, "kg"), "cost: total (purchases up front)": ("cost_total", 1, s.currency),
              "rounds": ("rounds_completed", 1, "")}
    for k, v in rows:
        cell = ""
        if k in by_row:
            name, scale, unit = by_row[k]
            f = stats.of(name)
            if f.mean is not None:
                half = (f.ci95_high - f.mean) * scale if f.ci95_high is not None else 0.0
                cell = f"{f.mean * scale:,.4g} +- {half:,.2g} {unit}".rstrip()
        t.add_row(k, v, cell)
    return t


@app.command()
@bad_input
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default runs/<name>/).")] = None,
    plots: Annotated[bool, typer.Option(help="Write timeline.png and energy.png.")] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    replicates: Annotated[int, typer.Option(
        help="Run N replicates, seeds seed..seed+N-1: replicates.csv, and mean and 95 % CI in the summary.")] = 1,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
    epistemic: Annotated[bool, typer.Option(help="With replicates, also draw each predicted step time's error "
                                                 "(--no-epistemic: the seeds' spread only).")] = True,
    drivers: Annotated[bool, typer.Option(help="With replicates, say what drives the spread: drivers.csv, "
                                               "drivers.png (each uncertain input swung alone, then the seeds).")] = True,
) -> None:
    """Simulate every round of a scenario and write summary, tables, resolved scenario and plots."""
    from dataclasses import replace

    from simfl import load_scenario
    from simfl.api import simulate_replicates
    from simfl.summary import replicate_stats
    from simfl.report.outdir import OutputDir, default_dir
    from simfl.report.parquet import CSV_MAX_ROWS, ParquetSink
    from simfl.report.write import write_run_files

    if replicates < 1:
        raise ScenarioError(f"must be at least 1 (got {replicates})", field="--replicates")
    sc = load_scenario(scenario, overrides_of(set_))
    target = out_dir or default_dir(sc.name)
    show = progress and sys.stderr.isatty()
    with OutputDir(target, "run") as tmp:  # claimed (and checked) before the simulation runs
        sink = ParquetSink(tmp / "clients.parquet")  # client-round rows go to disk as the run goes
        try:
            with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeRemainingColumn(), console=err, disable=not show, transient=True) as bar:
                what = f"simulating {sc.name}" + (f", {replicates} replicates" if replicates > 1 else "")
                task = bar.add_task(what, total=sc.federation.rounds * replicates)
                result, summaries = simulate_replicates(sc, replicates, on_round=lambda _i: bar.advance(task),
                                                        client_sink=sink, epistemic=epistemic)
        finally:
            sink.close()
        summary = result.summary
        if replicates > 1:
            import pandas as pd

            summary = summary.with_replicates(replicate_stats(summaries))
            pd.DataFrame([{"seed": s.seed, **s.figures()} for s in summaries]).to_csv(tmp / "replicates.csv",
                                                                                     index=False)
        result = replace(result, summary=summary.with_warnings(host_warnings(sc)))
        write_run_files(result, tmp, plots=plots)
        spread = _drivers(sc, replicates, tmp, plots) if replicates > 1 and drivers else None
    for w in result.warnings:
        err.print(f"warning: {w}", markup=False, highlight=False)
    drawn = replicates > 1 and epistemic and any(e.log_sd for e in result.summary.estimated_inputs)
    out.print(_summary_table(result.summary, drawn))
    if spread:
        out.print(_drivers_table(spread, "sim_time_s"))
    n = len(result.records.clients)
    if n >= CSV_MAX_ROWS:
        out.print(f"{n:,} client-rounds: clients.csv is left out (runs under {CSV_MAX_ROWS:,} get one); "
                  "the rows are in clients.parquet", highlight=False)
    out.print(f"wrote {target}/", highlight=False)


@app.command()
@bad_input
def validate(scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
             set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None) -> None:
    """Check a scenario: schema, data files, and that every device can train the model at that batch."""
    sc, built = _load_and_build(scenario, set_)
    for w in [*built.warnings, *host_warnings(sc)]:
        err.print(f"warning: {w}", markup=False, highlight=False)
    inputs = built.inputs
    out.print(f"{scenario}: ok: {sc.name}, {inputs.population_size:,} clients, {inputs.clients_selected} selected "
              f"a round, {sc.federation.rounds} rounds, {inputs.trainable_params:,} trainable params "
              f"({inputs.bits_per_transfer / 8e6:,.2f} MB a transfer)", highlight=False)
    from simfl.report.parquet import CSV_MAX_ROWS, CSV_BYTES_PER_ROW, PARQUET_BYTES_PER_ROW

    n = inputs.clients_selected * sc.federation.rounds
    csv_mb = n * CSV_BYTES_PER_ROW / 1e6 if n < CSV_MAX_ROWS else 0.0
    out.print(f"expect {n:,} client-rounds: clients.parquet up to about {n * PARQUET_BYTES_PER_ROW / 1e6:,.1f} MB"
              + (f", clients.csv about {csv_mb:,.1f} MB" if csv_mb else
                 f"; no clients.csv (written for runs under {CSV_MAX_ROWS:,} client-rounds)"), highlight=False)


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
        some_estimated = (any(x.estimated for x in h.training) or h.idle_power_estimated
                          or (h.aggregation is not None and h.aggregation.estimated))
        kind = "estimated" if h.estimated else "measured+estimated" if some_estimated else "measured"
        t.add_row(h.name, kind, f"{h.peak_flops / 1e12:,.3g}",
                  f"{h.memory_bytes / 1e9:,.3g}", "-" if h.idle_power_w is None else f"{h.idle_power_w:g}",
                  " ".join(models))
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
