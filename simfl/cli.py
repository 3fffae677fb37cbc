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

from simfl.errors import ScenarioError, short

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Simulate the time, energy, CO2 and cost of federated fine-tuning.")
# Piped output gets room for wide tables (rich would squeeze them to 80 columns).
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
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
            about_option = (e.field or "").startswith("--")  # a bad option is not the scenario's fault
            msg = str(e.with_file(file)) if file is not None and not about_option else str(e)
            err.print(f"error: {msg}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
    return wrapper


def _load_and_build(scenario: Path):
    from simfl import load_scenario
    from simfl.build import build

    sc = load_scenario(scenario)
    built = build(sc)  # catches OOM and uncovered models before a run
    return sc, built


def _summary_table(summary: dict) -> Table:
    e = summary["energy_j"]
    t = Table(title=f"simfl: {summary['scenario']} (seed {summary['seed']})", show_header=False)
    t.add_column(style="bold")
    t.add_column(justify="right")
    hours = summary["sim_time_s"] / 3600
    g, g_total = summary["granularity_mean"], summary["granularity_total"]
    rows = [
        ("rounds", f"{summary['rounds_completed']}"),
        ("simulated time", f"{hours:,.2f} h ({summary['sim_time_s']:,.0f} s)"),
        ("granularity G: mean of rounds / total", " / ".join("n/a" if v is None else f"{v:,.3g}" for v in (g, g_total))),
        ("client-rounds completed / dropped / late / surplus",
         " / ".join(str(summary["client_rounds"][k]) for k in ("completed", "dropped", "late", "surplus"))),
        ("rounds with no update / short of K", f"{summary['rounds_without_update']} / {summary['rounds_short_of_k']}"),
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
    from simfl import load_scenario, simulate
    from simfl.report.outdir import OutputDir, default_dir
    from simfl.report.parquet import CSV_MAX_ROWS, ParquetSink
    from simfl.report.write import write_run_files

    sc = load_scenario(scenario)
    target = out_dir or default_dir(sc.name)
    show = progress and sys.stderr.isatty()
    with OutputDir(target, "run") as tmp:  # claimed (and checked) before the simulation runs
        sink = ParquetSink(tmp / "clients.parquet")  # client-round rows go to disk as the run goes
        try:
            with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeRemainingColumn(), console=err, disable=not show, transient=True) as bar:
                task = bar.add_task(f"simulating {sc.name}", total=sc.federation.rounds)
                result = simulate(sc, on_round=lambda _i: bar.advance(task), client_sink=sink)
        finally:
            sink.close()
        write_run_files(result, tmp, plots=plots)
    for w in result.warnings:
        err.print(f"warning: {w}", markup=False, highlight=False)
    out.print(_summary_table(result.summary))
    n = len(result.records.clients)
    if n >= CSV_MAX_ROWS:
        out.print(f"{n:,} client-rounds: clients.csv is left out (runs under {CSV_MAX_ROWS:,} get one); "
                  "the rows are in clients.parquet", highlight=False)
    out.print(f"wrote {target}/", highlight=False)


@app.command()
@_bad_input
def validate(scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")]) -> None:
    """Check a scenario: schema, data files, and that every device can train the model at that batch."""
    sc, built = _load_and_build(scenario)
    for w in built.warnings:
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


def _csv(text: str, cast=str, option: str | None = None) -> list:
    try:
        return [cast(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        kind = {int: "integers", float: "numbers"}.get(cast, "names")
        raise ScenarioError(f"expected a comma-separated list of {kind}, got {short(text)}", field=option) from None


def _torch_device(device: str):
    """--device as a torch device that exists here, or one line saying why not."""
    import re

    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", device)
    if not m:
        raise ScenarioError(f"expected auto, cpu, cuda or cuda:N, got {short(device)}", field="--device")
    if not torch.cuda.is_available():
        why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise ScenarioError(f"{device} is not available: {why} (use --device cpu or auto)", field="--device")
    index = int(m.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise ScenarioError(f"{device} is not available: this machine has {torch.cuda.device_count()} CUDA "
                            f"device(s)", field="--device")
    return torch.device(device)


@app.command()
@_bad_input
def calibrate(
    name: Annotated[str, typer.Option(help="Profile name (also the default file name).")],
    models: Annotated[str, typer.Option(help="Comma-separated catalog models.")] = "flan-t5-small",
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "1,2,4,8",
    seq_len: Annotated[int, typer.Option(min=1, help="Input tokens per sample.")] = 512,
    target_len: Annotated[int, typer.Option(min=1, help="Target tokens per sample.")] = 95,
    warmup: Annotated[int, typer.Option(min=0, help="Unmeasured warm-up steps per point.")] = 3,
    steps: Annotated[int, typer.Option(min=1, help="Measured steps per point.")] = 10,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    power: Annotated[str, typer.Option(help="auto, nvml, rapl, jetson or none.")] = "auto",
    power_rate_hz: Annotated[float, typer.Option(min=2.0, help="Power sampling rate (>= 2 Hz).")] = 10.0,
    idle_s: Annotated[float, typer.Option(min=0.0, help="Seconds of idle power measured before the steps.")] = 3.0,
    finetuning: Annotated[str, typer.Option(help="lora or full.")] = "lora",
    method: Annotated[str, typer.Option(help="backprop or forward_gradient (FwdLLM).")] = "backprop",
    perturbations: Annotated[int, typer.Option(min=1, help="forward_gradient: perturbations per step.")] = 16,
    lora_r: Annotated[int, typer.Option(min=1, help="LoRA rank.")] = 16,
    lora_alpha: Annotated[float, typer.Option(help="LoRA alpha.")] = 32.0,
    lora_targets: Annotated[str, typer.Option(help="LoRA target projections.")] = "q,v",
    optimizer: Annotated[str, typer.Option(help="sgd (lr 1.0, as in the paper) or adamw.")] = "sgd",
    lr: Annotated[float | None, typer.Option(help="Learning rate (default 1.0 for sgd, 1e-4 for adamw).")] = None,
    pretrained: Annotated[str | None, typer.Option(help="Load weights with from_pretrained(NAME_OR_PATH).")] = None,
    data: Annotated[Path | None, typer.Option(help="JSONL of dialogue/summary (or input/target) text to train on.")] = None,
    tokenizer: Annotated[str | None, typer.Option(help="Tokenizer NAME_OR_PATH for --data.")] = None,
    peak_flops: Annotated[float | None, typer.Option(help="Peak FLOP/s for MFU (default: known GPU or CPU estimate).")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="torch CPU threads (default: torch's choice).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of weights and token batches.")] = 0,
    out_file: Annotated[Path | None, typer.Option("--out", help="Profile file (default hardware_profiles/<name>.yaml).")] = None,
) -> None:
    """Run real LoRA FLAN-T5 training steps here, measure time, power and memory, write a profile."""
    import yaml

    from simfl.catalog import CATALOG
    from simfl.config.profiles import HardwareProfile

    model_list, batches = _csv(models, option="--models"), _csv(batch_sizes, int, "--batch-sizes")
    unknown = [m for m in model_list if m not in CATALOG]
    if unknown:
        raise ScenarioError(f"unknown model {unknown[0]!r}; known: {', '.join(CATALOG)}", field="--models")
    if not batches or min(batches) <= 0:
        raise ScenarioError(f"batch sizes must be positive integers, got {batch_sizes!r}", field="--batch-sizes")
    for opt, value, allowed in (("--finetuning", finetuning, ("lora", "full")), ("--optimizer", optimizer, ("sgd", "adamw")),
                                ("--method", method, ("backprop", "forward_gradient")),
                                ("--power", power, ("auto", "nvml", "rapl", "jetson", "none"))):
        if value not in allowed:
            raise ScenarioError(f"expected one of {', '.join(allowed)}, got {value!r}", field=opt)
    for opt, value in (("--lora-alpha", lora_alpha), ("--lr", lr), ("--peak-flops", peak_flops)):
        if value is not None and not (0 < value < float("inf")):
            raise ScenarioError(f"must be a positive number, got {value:g}", field=opt)
    targets = _csv(lora_targets, option="--lora-targets")
    if not targets or set(targets) - {"q", "k", "v", "o"}:
        raise ScenarioError(f"expected some of q, k, v, o, got {short(lora_targets)}", field="--lora-targets")
    fg_p = perturbations if method == "forward_gradient" else None
    if fg_p is not None and fg_p < 1:
        raise ScenarioError(f"need at least one perturbation, got {perturbations}", field="--perturbations")
    if data is not None and not tokenizer:
        raise ScenarioError("--data needs --tokenizer NAME_OR_PATH", field="--data")
    if data is not None and not data.is_file():
        raise ScenarioError(f"file not found: {data}", field="--data")

    import warnings

    import torch

    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    from simfl.calibrate.kernel import KernelSpec
    from simfl.calibrate.power import PowerMonitor, open_backend
    from simfl.calibrate.runner import (build_profile, calibrate as run_calibration, device_facts,
                                        interpolation_check, merge_profiles, peak_flops_for,
                                        training_flops_per_step)

    dev = _torch_device(device)
    if threads:
        torch.set_num_threads(threads)
    spec = KernelSpec(finetuning=finetuning, lora_r=lora_r, lora_alpha=lora_alpha, lora_targets=tuple(targets),
                      optimizer=optimizer, lr=lr if lr is not None else (1.0 if optimizer == "sgd" else 1e-4),
                      seq_len=seq_len, target_len=target_len, seed=seed, pretrained=pretrained,
                      data=str(data) if data else None, tokenizer=tokenizer)
    try:
        backend = open_backend(power, dev.type)
    except OSError as e:
        raise ScenarioError(str(e), field="--power") from None
    facts = device_facts(dev)
    try:
        peak, peak_source = peak_flops_for(dev, facts, peak_flops)
    except ValueError as e:
        raise ScenarioError(str(e), field="--peak-flops") from None
    err.print(f"calibrating on {facts.get('gpu') or facts.get('cpu')} ({dev}), power backend: {backend.name}"
              + (f" at {power_rate_hz:g} Hz" if backend.kind != "none" else " (power fields will be left out)"),
              highlight=False)
    monitor = PowerMonitor(backend, rate_hz=power_rate_hz)
    total = len(model_list) * len(batches)
    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), console=err,
                      transient=True, disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task("measuring", total=total)

            def on_point(p):
                bar.update(task, advance=1, description=f"{p.model} batch {p.batch_size}")
                if not sys.stderr.isatty():
                    err.print(f"  {p.model} batch {p.batch_size}: "
                              + ("OOM" if p.oom else f"{p.median_s:.4f} s/step"), highlight=False)

            points, idle = run_calibration(model_list, batches, spec, warmup=warmup, steps=steps, device=dev,
                                           monitor=monitor, idle_s=idle_s, on_point=on_point, perturbations=fg_p)
    except (ValueError, OSError) as e:  # an unreadable --data file or tokenizer is bad input, not a crash
        if data is None or isinstance(e, ScenarioError):
            raise
        raise ScenarioError(str(e).splitlines()[0], field="--data") from None
    finally:
        monitor.close()

    t = Table(title=f"calibration: {name}")
    phase_head = "perturb+fwd/opt s" if fg_p else "fwd/loss/bwd/opt s"
    for col in ("model", "batch", "median s", "p90 s", phase_head, "tokens/s", "W", "J/step",
                "peak mem GB", "MFU exact", "MFU 6N", "e (tok/s/W)"):
        t.add_column(col, justify="right")
    for p in points:
        if p.oom:
            t.add_row(p.model, str(p.batch_size), "OOM", *[""] * 9)
            continue
        tps = p.batch_size * seq_len / p.median_s
        fl = training_flops_per_step(p.model, finetuning, p.batch_size, seq_len, target_len, fg_p)
        w = p.power.avg_power_w if p.power else None
        ph = p.phases_s
        t.add_row(p.model, str(p.batch_size), f"{p.median_s:.4f}", f"{p.p90_s:.4f}",
                  "/".join(f"{v:.3f}" for k, v in ph.items() if k != "batch_load"),
                  f"{tps:,.0f}", "-" if w is None else f"{w:.1f}",
                  "-" if w is None else f"{p.power.energy_j / len(p.step_times_s):.2f}",
                  "-" if not p.peak_memory_bytes else f"{p.peak_memory_bytes / 1e9:.2f}",
                  f"{100 * fl['exact'] / p.median_s / peak:.2f}%", f"{100 * fl['6N'] / p.median_s / peak:.2f}%",
                  "-" if w is None else f"{tps / w:.2f}")
    out.print(t)
    for c in interpolation_check(points):
        out.print(f"interpolation check: {c['model']} batch {c['batch_size']} predicted from {c['from']}: "
                  f"{c['predicted_s']:.4f} s vs measured {c['measured_s']:.4f} s ({c['error_pct']:+.1f} %)",
                  highlight=False)
    profile = build_profile(name, points, idle, spec, device=dev, facts=facts, peak_flops=peak, peak_source=peak_source,
                            backend=backend.name, rate_hz=power_rate_hz, warmup=warmup, steps=steps,
                            perturbations=fg_p)
    target = out_file or Path("hardware_profiles") / f"{name}.yaml"
    if target.exists():
        profile = merge_profiles(yaml.safe_load(target.read_text()) or {}, profile)
    HardwareProfile.model_validate(profile)  # what simfl run will read: fail here, not there
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("# Written by simfl calibrate; provenance below.\n" + yaml.safe_dump(profile, sort_keys=False))
    out.print(f"wrote {target}", highlight=False)


@app.command()
@_bad_input
def train(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML with a train: section.")],
    optimizers: Annotated[str | None, typer.Option(help="Runs to do, comma-separated (default: all in the scenario).")] = None,
    target_val_loss: Annotated[float | None, typer.Option(help="Stop a run at this val loss (default: the scenario's).")] = None,
    rounds: Annotated[int | None, typer.Option(min=1, help="Most rounds per run (default: federation.rounds).")] = None,
    stop: Annotated[bool, typer.Option(help="Stop each run when it reaches the target.")] = True,
    data: Annotated[Path | None, typer.Option(help="JSONL of dialogue/summary pairs (e.g. SAMSum) instead of train.data.")] = None,
    tokenizer: Annotated[str | None, typer.Option(help="Tokenizer NAME_OR_PATH for --data.")] = None,
    pretrained: Annotated[str | None, typer.Option(help="Weights NAME_OR_PATH (from_pretrained) instead of random.")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="torch CPU threads.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default runs/<name>-train/).")] = None,
) -> None:
    """Really train with each server optimizer (and forward-gradient clients) on the simulated clock."""
    import warnings

    from simfl import load_scenario

    if target_val_loss is not None and not (0 < target_val_loss < float("inf")):
        raise ScenarioError(f"must be a positive number, got {target_val_loss:g}", field="--target-val-loss")
    sc = load_scenario(scenario)
    if sc.train is None:
        raise ScenarioError("has no train: section; simfl train needs one", field="train")
    overrides = {k: v for k, v in (("data", str(data) if data else None), ("tokenizer", tokenizer),
                                   ("pretrained", pretrained)) if v is not None}
    if data is not None and not data.is_file():
        raise ScenarioError(f"file not found: {data}", field="--data")
    if overrides:
        sc = sc.model_copy(update={"train": sc.train.model_copy(update=overrides)})
    warnings.filterwarnings("ignore", category=FutureWarning)
    import torch

    from simfl.fl.session import train_scenario
    from simfl.report.outdir import OutputDir, default_dir
    from simfl.report.training import write_training_files

    if threads:
        torch.set_num_threads(threads)
    target = target_val_loss if target_val_loss is not None else sc.train.target_val_loss
    max_rounds = rounds or sc.federation.rounds
    only = _csv(optimizers, option="--optimizers") if optimizers else None
    target_dir = out_dir or default_dir(sc.name, "-train")
    with OutputDir(target_dir, "train") as folder:  # claimed (and checked) before any training
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[val]}"), TimeRemainingColumn(), console=err,
                      disable=not sys.stderr.isatty()) as bar:
            tasks: dict[str, int] = {}

            def on_round(run: str, r: int, val: float | None) -> None:
                if run not in tasks:
                    tasks[run] = bar.add_task(run, total=max_rounds, val="")
                bar.update(tasks[run], completed=r, **({"val": f"val loss {val:.3f}"} if val is not None else {}))
                if not sys.stderr.isatty() and val is not None:
                    err.print(f"  {run} round {r}: val loss {val:.4f}", highlight=False)

            try:
                result = train_scenario(sc, only=only, target=target, max_rounds=max_rounds, stop_at_target=stop,
                                        on_round=on_round)
            except ScenarioError:
                raise
            except ValueError as e:
                raise ScenarioError(str(e).splitlines()[0], field="train") from None
        write_training_files(result, folder)
    t = Table(title=f"simfl train: {sc.name}" + (f" (target val loss {target:g})" if target else ""))
    for col in ("run", "rounds run", "best val loss", "rounds to target", "sim hours to target", "kWh to target"):
        t.add_column(col, justify="right")
    fmt = lambda v, f: "not reached" if v is None else format(v, f)  # noqa: E731
    for name, r in result.summary["runs"].items():
        t.add_row(name, str(r["rounds_run"]), f"{r['best_val_loss']:.4f}", fmt(r["rounds_to_target"], "d"),
                  fmt(r["sim_hours_to_target"], ".3f"), fmt(r["kwh_to_target"], ".4f"))
    out.print(t)
    out.print(f"wrote {target_dir}/", highlight=False)


@app.command()
def schema() -> None:
    """Print the scenario JSON Schema (for editor completion and validation)."""
    from simfl.config.scenario import Scenario

    sys.stdout.write(json.dumps(Scenario.model_json_schema(), indent=2) + "\n")


def _given_value(param, argv: list[str]) -> str | None:
    """What the user typed for an option the parser refused (click does not keep it)."""
    for opt in getattr(param, "opts", None) or []:
        for i, arg in enumerate(argv):
            if arg == opt and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(opt + "="):
                return arg[len(opt) + 1:]
    return None


def main() -> None:
    """The `simfl` entry point: a usage error (unknown option, a value of the wrong type or out of
    range) is one line and exit code 2, like every other bad input."""
    try:  # typer >= 0.20 carries its own copy of click; older ones use click itself
        from typer._click.exceptions import UsageError
    except ImportError:
        from click.exceptions import UsageError

    try:
        rc = app(prog_name="simfl", standalone_mode=False)
    except UsageError as e:
        message = e.format_message()
        if not message:  # `simfl` with no command: the help was printed
            sys.exit(EXIT_BAD_INPUT)
        message = message.rstrip(".")
        given = _given_value(getattr(e, "param", None), sys.argv[1:])
        if given is not None:
            message = f"{message} (got {short(given)})"
        where = f"; see simfl {e.ctx.info_name} --help" if e.ctx is not None and e.ctx.info_name != "simfl" else ""
        err.print(f"error: {message}{where}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(EXIT_BAD_INPUT)
    except typer.Abort:
        err.print("aborted", highlight=False)
        sys.exit(130)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
