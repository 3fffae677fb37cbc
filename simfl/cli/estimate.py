"""simfl estimate: a device's step time, throughput, power and memory for a model, measured or predicted."""

from __future__ import annotations

import json
import math
from typing import Annotated

import typer
from rich.table import Table

from simfl.cli.common import (CHECKPOINTING_HELP, LORA_TARGETS_HELP, OPTIMIZER_HELP, PRECISION_HELP, QUANTIZATION_HELP,
                              app, bad_input, checked_training, csv_list, lora_targets_option, out)
from simfl.errors import ScenarioError, short
from simfl.training import (DEFAULT_FINETUNING, DEFAULT_GRADIENT_CHECKPOINTING, DEFAULT_LORA_R, DEFAULT_LORA_TARGETS,
                            DEFAULT_METHOD, DEFAULT_OPTIMIZER, DEFAULT_PERTURBATIONS, DEFAULT_PRECISION,
                            DEFAULT_QUANTIZATION, DEFAULT_SEQ_LEN, DEFAULT_TARGET_LEN, FINETUNING, METHODS,
                            TrainingConfig)


def _profile(device: str):
    from simfl.config.load import PROFILE_DIR, available, find_data_file, load_model
    from simfl.config.profiles import HardwareProfile

    path = find_data_file(device, PROFILE_DIR, None)
    if path is None:
        names = ", ".join(p.stem for p in available(PROFILE_DIR))
        raise ScenarioError(f"unknown hardware profile {short(device)}; available: {names}", field="DEVICE")
    return load_model(HardwareProfile, path)


def _model_name(model: str) -> str:
    """MODEL as a catalog name: itself, or the model a config.json names (read and registered)."""
    from simfl.catalog import CATALOG

    if model in CATALOG:
        return model
    from simfl.config.model_config import find_model_config, load_model_config

    if find_model_config(model, None) is None and "/" not in model and not model.endswith(".json"):
        return model  # neither: TrainingConfig.check says it is unknown
    return load_model_config(model, None, field="MODEL")[2]


@app.command()
@bad_input
def estimate(
    device: Annotated[str, typer.Argument(help="Hardware profile: a shipped name or a YAML path.")],
    model: Annotated[str, typer.Argument(help="Catalog model (e.g. flan-t5-base), or a model config: a name in "
                                              "model_configs/ (e.g. qwen2.5-7b) or a path to a config.json.")],
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "1,8,16,32",
    seq_len: Annotated[int, typer.Option(min=1, help="Input tokens per sample.")] = DEFAULT_SEQ_LEN,
    target_len: Annotated[int, typer.Option(min=1, help="Target tokens per sample.")] = DEFAULT_TARGET_LEN,
    finetuning: Annotated[str, typer.Option(help=f"{' or '.join(FINETUNING)}.")] = DEFAULT_FINETUNING,
    method: Annotated[str, typer.Option(help=f"{' or '.join(METHODS)}.")] = DEFAULT_METHOD,
    perturbations: Annotated[int, typer.Option(
        min=1, help="forward_gradient: perturbations per step.")] = DEFAULT_PERTURBATIONS,
    lora_r: Annotated[int, typer.Option(min=1, help="LoRA rank.")] = DEFAULT_LORA_R,
    lora_targets: Annotated[str, typer.Option(help=LORA_TARGETS_HELP)] = ",".join(DEFAULT_LORA_TARGETS),
    optimizer: Annotated[str, typer.Option(help=OPTIMIZER_HELP)] = DEFAULT_OPTIMIZER,
    precision: Annotated[str, typer.Option(help=PRECISION_HELP)] = DEFAULT_PRECISION,
    gradient_checkpointing: Annotated[bool, typer.Option(help=CHECKPOINTING_HELP)] = DEFAULT_GRADIENT_CHECKPOINTING,
    quantization: Annotated[str, typer.Option(help=QUANTIZATION_HELP)] = DEFAULT_QUANTIZATION,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per batch size instead of a table.")] = False,
) -> None:
    """Step time, tokens/s, power, energy per step and memory of a configuration on a device: the profile's
    measurements where they cover it, simfl's hardware model elsewhere (with its expected error)."""
    from simfl.hardware.lookup import matching_points, step_cost
    from simfl.hardware.predict import shipped

    model = _model_name(model)
    config = TrainingConfig(model, finetuning, method, seq_len, target_len, lora_r=lora_r,
                            lora_targets=lora_targets_option(lora_targets),
                            perturbations=perturbations if method == "forward_gradient" else None,
                            optimizer=optimizer, precision=precision, quantization=quantization,
                            gradient_checkpointing=gradient_checkpointing)
    config = checked_training(config, {"model": "MODEL"})
    batches = csv_list(batch_sizes, int, "--batch-sizes")
    if not batches or min(batches) < 1:
        raise ScenarioError(f"expected positive batch sizes, got {short(batch_sizes)}", field="--batch-sizes")
    profile = _profile(device)
    rows = []
    for b in batches:
        c = config.at_batch(b)
        row = {"batch_size": b}
        est = shipped().estimate(profile, c) if profile.datasheet() is not None else None
        if est is not None:
            row.update(memory_bytes=round(est.memory_bytes), device_memory_bytes=est.usable_memory_bytes,
                       fits=est.fits)
        try:
            cost = step_cost(profile, c)
        except ScenarioError as e:
            row.update(error=e.message)
            rows.append(row)
            continue
        row.update(step_time_s=cost.step_time_s, tokens_per_s=b * seq_len / cost.step_time_s,
                   power_w=cost.power_w,
                   energy_per_step_j=None if cost.power_w is None else cost.power_w * cost.step_time_s,
                   source=("; ".join(cost.estimated_because) if cost.estimated_because else "measured"
                           if any(p.batch_size == b for p in matching_points(profile, c)) else "interpolated"))
        if est is not None:
            row["expected_error"] = est.expected_error if cost.estimated_because else None
            if cost.estimated_because and est.interval_80 is not None:  # step time x exp(±h): the stated 80 % interval
                row["interval_80"] = [round(math.expm1(-est.interval_80), 4), round(math.expm1(est.interval_80), 4)]
        rows.append(row)
    if as_json:
        for r in rows:
            out.print(json.dumps(r), markup=False, highlight=False, soft_wrap=True)
        return
    _table(profile, model, finetuning, method, seq_len, rows)


def _table(profile, model, finetuning, method, seq_len, rows) -> None:
    def f(x, fmt):
        return "-" if x is None else format(x, fmt)

    t = Table(title=f"{profile.name}: {model} {finetuning} {method}, seq_len {seq_len}")
    for col in ("batch", "step s", "tokens/s", "power W", "J/step", "memory GB", "fits", "from"):
        t.add_column(col, justify="left" if col in ("fits", "from") else "right")
    notes: list[str] = []
    for r in rows:
        mem = f(r.get("memory_bytes") and r["memory_bytes"] / 1e9, ".1f")
        fits = "-" if "fits" not in r else ("yes" if r["fits"] else "no")
        if "error" in r:
            t.add_row(str(r["batch_size"]), "-", "-", "-", "-", mem, "no" if "out of memory" in r["error"] else fits,
                      r["error"].split(": ", 1)[-1])
            continue
        src = r["source"]
        if src not in ("measured", "interpolated"):
            if src not in notes:
                notes.append(src)
            src = f"predicted [{notes.index(src) + 1}]"
            if r.get("interval_80") is not None:
                low, high = r["interval_80"]
                src += f" {100 * low:.0f} % to +{100 * high:.0f} %"
        t.add_row(str(r["batch_size"]), f(r["step_time_s"], ".3g"), f(r["tokens_per_s"], ".4g"), f(r["power_w"], ".3g"),
                  f(r["energy_per_step_j"], ".3g"), mem, fits, src)
    out.print(t)
    for i, n in enumerate(notes, 1):
        out.print(f"[{i}] {n}", markup=False, highlight=False, soft_wrap=True)
