"""simfl calibrate: real training steps on this machine, measured into a hardware profile."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from simfl.cli.common import (CHECKPOINTING_HELP, LORA_TARGETS_HELP, OPTIMIZER_HELP, PRECISION_HELP, QUANTIZATION_HELP,
                              app, bad_input, checked_training, csv_list, err, lora_targets_option, need_torch, out)
from simfl.errors import ScenarioError, short
from simfl.safeio import atomic_write_text, load_yaml, regular_file
from simfl.training import (DEFAULT_FINETUNING, DEFAULT_GRADIENT_CHECKPOINTING, DEFAULT_LORA_ALPHA, DEFAULT_LORA_R,
                            DEFAULT_LORA_TARGETS, DEFAULT_METHOD, DEFAULT_OPTIMIZER, DEFAULT_PERTURBATIONS,
                            DEFAULT_PRECISION, DEFAULT_QUANTIZATION, DEFAULT_SEQ_LEN, DEFAULT_TARGET_LEN, FINETUNING,
                            METHODS, TrainingConfig)


def _device_name(device: str):
    """--device's spelling checked (no torch needed): auto, cpu, or cuda[:N] as a match of its index."""
    import re

    m = re.fullmatch(r"cuda(?::(\d+))?", device)
    if not m and device not in ("auto", "cpu"):
        raise ScenarioError(f"expected auto, cpu, cuda or cuda:N, got {short(device)}", field="--device")
    return m


def _torch_device(device: str):
    """--device as a torch device that exists here, or one line saying why not."""
    m = _device_name(device)
    need_torch("calibrate")
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise ScenarioError(f"{device} is not available: {why} (use --device cpu or auto)", field="--device")
    index = int(m.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise ScenarioError(f"{device} is not available: this machine has {torch.cuda.device_count()} CUDA "
                            f"device(s)", field="--device")
    return torch.device(device)


@dataclass(frozen=True)
class CalibrationRequest:
    """What simfl calibrate was asked to measure, every option checked; nothing measured, torch not loaded."""

    name: str
    models: list[str]
    batch_sizes: list[int]
    training: TrainingConfig  # of the first model (each model's was checked); model and batch vary
    target: Path  # the profile file
    warmup: int
    steps: int
    device: str
    power: str
    power_rate_hz: float
    idle_s: float
    lr: float | None
    peak_flops: float | None
    threads: int | None
    seed: int
    pretrained: str | None
    data: Path | None
    tokenizer: str | None


@dataclass(frozen=True)
class Measured:
    """What a calibration measured, and on what."""

    device: object  # the torch.device
    facts: dict
    backend: str
    peak_flops: float
    peak_source: str
    points: list
    idle: object  # the idle Measurement, or None


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
    optimizer: Annotated[str, typer.Option(help=OPTIMIZER_HELP)] = DEFAULT_OPTIMIZER,
    precision: Annotated[str, typer.Option(help=PRECISION_HELP)] = DEFAULT_PRECISION,
    gradient_checkpointing: Annotated[bool, typer.Option(help=CHECKPOINTING_HELP)] = DEFAULT_GRADIENT_CHECKPOINTING,
    quantization: Annotated[str, typer.Option(help=QUANTIZATION_HELP)] = DEFAULT_QUANTIZATION,
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
    model_list, batches = _models_and_batches(models, batch_sizes)
    training = TrainingConfig(model_list[0], finetuning, method, seq_len, target_len, lora_r=lora_r,
                              lora_targets=lora_targets_option(lora_targets), lora_alpha=lora_alpha,
                              perturbations=perturbations if method == "forward_gradient" else None,
                              optimizer=optimizer, precision=precision, quantization=quantization,
                              gradient_checkpointing=gradient_checkpointing)
    _check_every_model(training, model_list)
    _check_runs_here(training, device)
    _check_run_options(power=power, lr=lr, peak_flops=peak_flops, threads=threads, data=data, tokenizer=tokenizer,
                       pretrained=pretrained)
    target = out_file or Path("hardware_profiles") / f"{name}.yaml"
    request = CalibrationRequest(name, model_list, batches, training, target, warmup, steps, device, power,
                                 power_rate_hz, idle_s, lr, peak_flops, threads, seed, pretrained, data, tokenizer)
    profile_target(request.target)  # before any measuring: a user's file in the way is found now, not in 20 minutes
    spec = _kernel_spec(request)
    measured = _measure(request, spec)
    _show(request, measured)
    _write_profile(request, spec, measured)


# -- parse and check: every option, before torch is loaded or anything measured --------------------------------

def _models_and_batches(models: str, batch_sizes: str) -> tuple[list[str], list[int]]:
    """--models (catalog names) and --batch-sizes (positive integers) as lists, or one line saying which is wrong."""
    from simfl.catalog import BUILTIN_MODELS, CATALOG

    model_list, batches = csv_list(models, option="--models"), csv_list(batch_sizes, int, "--batch-sizes")
    if not model_list:
        raise ScenarioError(f"give at least one model, got {short(models)}", field="--models")
    for m in model_list:  # a model config (model_configs/NAME or a path to a config.json) is read and registered
        if m not in CATALOG and _is_model_config(m):
            from simfl.config.model_config import load_model_config

            load_model_config(m, None, field="--models")
    model_list = [_config_name(m) for m in model_list]
    unknown = [m for m in model_list if m not in CATALOG]
    if unknown:
        raise ScenarioError(f"unknown model {unknown[0]!r}; known: {', '.join(BUILTIN_MODELS)}; or a model config "
                            "(model_configs/NAME, or a path to a config.json)", field="--models")
    if not batches or min(batches) <= 0:
        raise ScenarioError(f"batch sizes must be positive integers, got {batch_sizes!r}", field="--batch-sizes")
    return model_list, batches


def _is_model_config(ref: str) -> bool:
    from simfl.config.model_config import find_model_config

    return "/" in ref or ref.endswith(".json") or find_model_config(ref, None) is not None


def _config_name(ref: str) -> str:
    """The catalog name a --models entry goes by: itself, or a config path's model name."""
    if "/" in ref or ref.endswith(".json"):
        from simfl.config.model_config import default_name, find_model_config

        return default_name(ref, find_model_config(ref, None))
    return ref


def _check_every_model(training: TrainingConfig, models: list[str]) -> None:
    """The training options checked for each model of --models (TrainingConfig.check), the first bad one said as
    the option that set it."""
    for name in models:
        checked_training(replace(training, model=name), {"model": "--models"})


def _check_runs_here(training: TrainingConfig, device: str) -> None:
    """What this machine's torch cannot run, said before anything is measured: quantized weights and 8-bit AdamW
    need bitsandbytes on a CUDA device, TF32 and FP16 autocast need a CUDA device (a CPU computes TF32 as FP32)."""
    import importlib.util

    _device_name(device)
    on_cpu = device == "cpu" or (device == "auto" and not _cuda_available())
    needs_bnb = [(f, v) for f, v in (("--quantization", training.quantization), ("--optimizer", training.optimizer))
                 if v in ("int8", "nf4", "adamw-8bit")]
    for option, value in needs_bnb:
        if on_cpu or importlib.util.find_spec("bitsandbytes") is None:
            raise ScenarioError(f"{value} needs bitsandbytes on a CUDA device; this run has "
                                + ("no CUDA device" if on_cpu else "no bitsandbytes"), field=option)
    if on_cpu and training.precision in ("tf32", "fp16"):
        raise ScenarioError(f"{training.precision} needs a CUDA device (a CPU computes tf32 as fp32, and fp16 "
                            "autocast on a CPU is not how anyone trains); use fp32 or bf16", field="--precision")


def _cuda_available() -> bool:
    """Whether torch sees a CUDA device; False without torch (said in one line later, after every option and
    --out are checked: _kernel_spec)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def _check_run_options(*, power: str, lr: float | None, peak_flops: float | None, threads: int | None,
                      data: Path | None, tokenizer: str | None, pretrained: str | None) -> None:
    """The options of the run itself (not of the training configuration): one line for the first bad one."""
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


# -- build the specs ----------------------------------------------------------------------------------------------

def _kernel_spec(request: CalibrationRequest):
    """The lm.model.KernelSpec of the request's training configuration, its learning rate, seed, weights and data."""
    import warnings

    need_torch("calibrate")
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    from simfl.lm.model import KernelSpec

    return KernelSpec.of(request.training, lr=request.lr, seed=request.seed, pretrained=request.pretrained,
                         data=str(request.data) if request.data else None, tokenizer=request.tokenizer)


# -- run and write ------------------------------------------------------------------------------------------------

def _measure(request: CalibrationRequest, spec) -> Measured:
    """Every (model, batch) of the request measured on its device, with a progress bar (or a line a point)."""
    import torch

    from simfl.calibrate.power import PowerMonitor, open_backend
    from simfl.calibrate.runner import calibrate as run_calibration, device_facts, peak_flops_for

    dev = _torch_device(request.device)
    if request.threads:
        torch.set_num_threads(request.threads)
    try:
        backend = open_backend(request.power, dev.type)
    except OSError as e:
        raise ScenarioError(str(e), field="--power") from None
    facts = device_facts(dev)
    try:
        peak, peak_source = peak_flops_for(dev, facts, request.peak_flops)
    except ValueError as e:
        raise ScenarioError(str(e), field="--peak-flops") from None
    err.print(f"calibrating on {facts.get('gpu') or facts.get('cpu')} ({dev}), power backend: {backend.name}"
              + (f" at {request.power_rate_hz:g} Hz" if backend.kind != "none" else " (power fields will be left out)"),
              highlight=False)
    monitor = PowerMonitor(backend, rate_hz=request.power_rate_hz)
    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), console=err,
                      transient=True, disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task("measuring", total=len(request.models) * len(request.batch_sizes))

            def on_point(p):
                bar.update(task, advance=1, description=f"{p.model} batch {p.batch_size}")
                if not sys.stderr.isatty():
                    err.print(f"  {p.model} batch {p.batch_size}: "
                              + ("OOM" if p.oom else f"{p.median_s:.4f} s/step"), highlight=False)

            points, idle = run_calibration(request.models, request.batch_sizes, spec, warmup=request.warmup,
                                           steps=request.steps, device=dev, monitor=monitor, idle_s=request.idle_s,
                                           on_point=on_point, perturbations=request.training.perturbations)
    except (ValueError, OSError) as e:  # an unreadable --data, tokenizer or weights is bad input, not a crash
        bad = _input_error(e, request)
        if bad is None:
            raise
        raise bad from None
    finally:
        monitor.close()
    return Measured(dev, facts, backend.name, peak, peak_source, points, idle)


def _input_error(e: Exception, request: CalibrationRequest) -> ScenarioError | None:
    """A failure of the run as the option whose file or name caused it; None where no option did (or `e` already
    says it)."""
    data, pretrained, tokenizer = request.data, request.pretrained, request.tokenizer
    if isinstance(e, ScenarioError) or (data is None and pretrained is None):
        return None
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    field = next((o for o, v in (("--pretrained", pretrained), ("--tokenizer", tokenizer), ("--data", data))
                  if v is not None and str(v) in text), "--data" if data is not None else "--pretrained")
    return ScenarioError(short_text(text), field=field)


def _show(request: CalibrationRequest, measured: Measured) -> None:
    """The measured points as a table, and the leave-one-out interpolation check, on stdout."""
    from simfl.calibrate.runner import interpolation_check, training_flops_per_step

    c, fg_p, peak = request.training, request.training.perturbations, measured.peak_flops
    t = Table(title=f"calibration: {request.name}")
    phase_head = "perturb+fwd/opt s" if fg_p else "fwd/loss/bwd/opt s"
    for col in ("model", "batch", "median s", "p90 s", phase_head, "tokens/s", "W", "J/step",
                "peak mem GB", "MFU exact", "MFU 6N", "e (tok/s/W)"):
        t.add_column(col, justify="right")
    for p in measured.points:
        if p.oom:
            t.add_row(p.model, str(p.batch_size), "OOM", *[""] * 9)
            continue
        tps = p.batch_size * c.seq_len / p.median_s
        fl = training_flops_per_step(p.model, c.finetuning, p.batch_size, c.seq_len, c.target_len, fg_p)
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
    for chk in interpolation_check(measured.points):
        out.print(f"interpolation check: {chk['model']} batch {chk['batch_size']} predicted from {chk['from']}: "
                  f"{chk['predicted_s']:.4f} s vs measured {chk['measured_s']:.4f} s ({chk['error_pct']:+.1f} %)",
                  highlight=False)


def _write_profile(request: CalibrationRequest, spec, measured: Measured) -> None:
    """The profile of the measured points, merged into the one at --out if there is one, validated, written."""
    import yaml

    from simfl.calibrate.runner import build_profile, merge_profiles
    from simfl.config.profiles import HardwareProfile

    m, target = measured, request.target
    profile = build_profile(request.name, m.points, m.idle, spec, device=m.device, facts=m.facts,
                            peak_flops=m.peak_flops, peak_source=m.peak_source, backend=m.backend,
                            rate_hz=request.power_rate_hz, warmup=request.warmup, steps=request.steps,
                            perturbations=request.training.perturbations)
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
