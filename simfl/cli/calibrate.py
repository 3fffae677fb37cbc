"""simfl calibrate: real training steps on this machine, measured into a hardware profile."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from simfl.cli.common import (LORA_TARGETS_HELP, app, bad_input, checked_training, csv_list, err, lora_targets_option,
                              out)
from simfl.errors import ScenarioError, short
from simfl.safeio import atomic_write_text, load_yaml, regular_file
from simfl.training import (DEFAULT_FINETUNING, DEFAULT_LORA_ALPHA, DEFAULT_LORA_R, DEFAULT_LORA_TARGETS,
                            DEFAULT_METHOD, DEFAULT_OPTIMIZER, DEFAULT_PERTURBATIONS, DEFAULT_SEQ_LEN,
                            DEFAULT_TARGET_LEN, FINETUNING, METHODS, TrainingConfig)


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
@bad_input
def calibrate(
    name: Annotated[str, typer.Option(help="Profile name (also the default file name).")],
    models: Annotated[str, typer.Option(help="Comma-separated catalog models.")] = "flan-t5-small",
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "1,2,4,8",
    seq_len: Annotated[int, typer.Option(min=1, help="Input tokens per sample.")] = DEFAULT_SEQ_LEN,
    target_len: Annotated[int, typer.Option(min=1, help="Target tokens per sample.")] = DEFAULT_TARGET_LEN,
    warmup: Annotated[int, typer.Option(min=0, help="Unmeasured warm-up steps per point.")] = 3,
    steps: Annotated[int, typer.Option(min=1, help="Measured steps per point.")] = 10,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    power: Annotated[str, typer.Option(help="auto, nvml, rapl, jetson or none.")] = "auto",
    power_rate_hz: Annotated[float, typer.Option(min=2.0, help="Power sampling rate (>= 2 Hz).")] = 10.0,
    idle_s: Annotated[float, typer.Option(min=0.0, help="Seconds of idle power measured before the steps.")] = 3.0,
    finetuning: Annotated[str, typer.Option(help=f"{' or '.join(FINETUNING)}.")] = DEFAULT_FINETUNING,
    method: Annotated[str, typer.Option(help=f"{' or '.join(METHODS)} (FwdLLM).")] = DEFAULT_METHOD,
    perturbations: Annotated[int, typer.Option(
        min=1, help="forward_gradient: perturbations per step.")] = DEFAULT_PERTURBATIONS,
    lora_r: Annotated[int, typer.Option(min=1, help="LoRA rank.")] = DEFAULT_LORA_R,
    lora_alpha: Annotated[float, typer.Option(help="LoRA alpha.")] = DEFAULT_LORA_ALPHA,
    lora_targets: Annotated[str, typer.Option(help=LORA_TARGETS_HELP)] = ",".join(DEFAULT_LORA_TARGETS),
    optimizer: Annotated[str, typer.Option(help="sgd (lr 1.0, as in the paper) or adamw.")] = DEFAULT_OPTIMIZER,
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

    model_list, batches = csv_list(models, option="--models"), csv_list(batch_sizes, int, "--batch-sizes")
    if not model_list:
        raise ScenarioError(f"give at least one model, got {short(models)}", field="--models")
    unknown = [m for m in model_list if m not in CATALOG]
    if unknown:
        raise ScenarioError(f"unknown model {unknown[0]!r}; known: {', '.join(CATALOG)}", field="--models")
    if not batches or min(batches) <= 0:
        raise ScenarioError(f"batch sizes must be positive integers, got {batch_sizes!r}", field="--batch-sizes")
    training = TrainingConfig(model_list[0], finetuning, method, seq_len, target_len, lora_r=lora_r,
                              lora_targets=lora_targets_option(lora_targets), lora_alpha=lora_alpha,
                              perturbations=perturbations if method == "forward_gradient" else None,
                              optimizer=optimizer)
    for other in model_list:  # the one rule (simfl.training), each bad field said as its option
        checked_training(replace(training, model=other), {"model": "--models"})
    fg_p = training.perturbations
    allowed = ("auto", "nvml", "rapl", "jetson", "none")
    if power not in allowed:
        raise ScenarioError(f"expected one of {', '.join(allowed)}, got {power!r}", field="--power")
    for opt, value in (("--lr", lr), ("--peak-flops", peak_flops)):
        if value is not None and not (0 < value < float("inf")):
            raise ScenarioError(f"must be a positive number, got {value:g}", field=opt)
    if threads is not None:
        from simfl.plan.executors import check_workers

        check_workers(threads, "--threads")
    if data is not None and not tokenizer:
        raise ScenarioError("--data needs --tokenizer NAME_OR_PATH", field="--data")
    if data is not None:
        regular_file(data, field="--data")
    check_local_name(pretrained, "--pretrained")
    check_local_name(tokenizer, "--tokenizer")
    target = out_file or Path("hardware_profiles") / f"{name}.yaml"
    profile_target(target)  # before any measuring: a user's file in the way is found now, not in 20 minutes

    import warnings

    import torch

    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    from simfl.lm.model import KernelSpec
    from simfl.calibrate.power import PowerMonitor, open_backend
    from simfl.calibrate.runner import (build_profile, calibrate as run_calibration, device_facts,
                                        interpolation_check, merge_profiles, peak_flops_for,
                                        training_flops_per_step)

    dev = _torch_device(device)
    if threads:
        torch.set_num_threads(threads)
    spec = KernelSpec.of(training, lr=lr, seed=seed, pretrained=pretrained, data=str(data) if data else None,
                         tokenizer=tokenizer)
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
    except (ValueError, OSError) as e:  # an unreadable --data, tokenizer or weights is bad input, not a crash
        if isinstance(e, ScenarioError) or (data is None and pretrained is None):
            raise
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        field = next((o for o, v in (("--pretrained", pretrained), ("--tokenizer", tokenizer), ("--data", data))
                      if v is not None and str(v) in text), "--data" if data is not None else "--pretrained")
        raise ScenarioError(short_text(text), field=field) from None
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
    old = profile_target(target)  # again: the file may have changed while this ran
    if old is not None:
        profile = merge_profiles(old, profile)
    HardwareProfile.model_validate(profile)  # what simfl run will read: fail here, not there
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ScenarioError(f"cannot create the folder {target.parent}: {(e.strerror or str(e)).lower()}",
                            field="--out") from None
    atomic_write_text(target, PROFILE_MARKER + yaml.safe_dump(profile, sort_keys=False))
    out.print(f"wrote {target}", highlight=False)


PROFILE_MARKER = "# Written by simfl calibrate; provenance below.\n"
MARKER_START = "# Written by simfl calibrate"


def profile_target(target: Path) -> dict | None:
    """Check --out before anything is measured; returns the profile already there (to merge into), if any.

    simfl replaces only a file it wrote: one that starts with its marker line or is a valid hardware profile.
    A folder, a symbolic link, a FIFO or device, someone else's file, a folder that cannot be written: refused.
    """
    from simfl.config.load import load_model
    from simfl.config.profiles import HardwareProfile
    from simfl.safeio import read_text

    if target.is_symlink():
        raise ScenarioError(f"{target} is a symbolic link; give the profile file's own path", field="--out")
    if target.is_dir():
        raise ScenarioError(f"{target} is a folder; give a profile file, e.g. {target / 'NAME.yaml'}",
                            field="--out")
    if os.path.lexists(target):
        text = read_text(target, field="--out", what="hardware profile")  # a FIFO or device: one line
        try:
            load_model(HardwareProfile, target)  # valid: simfl can merge the new points into it
            return load_yaml(text, target)
        except ScenarioError as e:
            if not text.startswith(MARKER_START):
                raise ScenarioError(f"{target} exists and is not a simfl profile (no '{MARKER_START}' line, not a "
                                    "valid hardware profile), so simfl will not replace it; give another --out or "
                                    "remove it yourself", field="--out") from None
            raise ScenarioError(f"{target} is a simfl profile that no longer loads ({e}), so simfl will not merge "
                                "into it or replace it; fix it, or remove it yourself", field="--out") from None
    parent = Path(os.path.abspath(target)).parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ScenarioError(f"cannot create {target}: {parent} is a file, not a folder", field="--out")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ScenarioError(f"cannot write to {parent}: permission denied", field="--out")
    return None


def check_local_name(value: str | None, field: str) -> None:
    """A NAME_OR_PATH that looks like a local path (starts with / . or ~, or has more than one slash) must exist:
    one line now, rather than a download attempt and a traceback later. A hub name (org/name) is left to
    transformers, whose error is made one line too."""
    if value is None:
        return
    local = value.startswith(("/", ".", "~")) or value.count("/") > 1 or value.endswith("/")
    if local and not os.path.exists(os.path.expanduser(value)):
        raise ScenarioError(f"{value}: no such file or folder", field=field)


def short_text(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
