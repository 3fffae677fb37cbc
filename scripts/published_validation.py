"""The hardware model against published fine-tuning runs it never saw: step time and peak memory of every row of
docs/data/published-finetuning.yaml that names a device simfl has a profile of and a model it can build.

    python scripts/published_validation.py [--csv docs/data/published-validation.csv]

Each usable row becomes a TrainingConfig (a decoder's packed sequence of S tokens is seq_len S - 1 plus one target
token; a per-GPU batch; the row's precision, optimizer, checkpointing and quantization). The prediction is
`simfl estimate`'s: the shipped hardware model on the device's profile. Printed per row: measured and predicted
step time and memory, their errors, and whether the measured step time falls inside the interval the prediction
states (none when it says its error is not validated). Then the median absolute error and the coverage. Rows
that cannot be used are listed with the reason (no profile of the device, a model without a config, a field the
source does not state). Nothing here is fitted to these rows: they are held out.
"""

from __future__ import annotations

import argparse
import csv
import re
import statistics
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simfl.config.datadirs import PROFILE_DIR  # noqa: E402
from simfl.config.load import load_model  # noqa: E402
from simfl.config.model_config import load_model_config  # noqa: E402
from simfl.config.profiles import HardwareProfile  # noqa: E402
from simfl.hardware.predict import shipped  # noqa: E402
from simfl.stats import abs_log_error, interval_half_width, interval_text, loo_inside  # noqa: E402
from simfl.training import TrainingConfig  # noqa: E402

DEVICES = {"RTX 4090": "rtx-4090-24gb", "A100-80GB": "a100-80gb", "A100 (variant not stated)": "a100-80gb",
           "H100-80GB (SXM, DGX)": "h100-sxm-80gb"}
MODELS = {"meta-llama/Llama-3.1-8B": "llama-3.1-8b", "meta-llama/Llama-3.2-3B": "llama-3.2-3b",
          "Qwen/Qwen2.5-7B": "qwen2.5-7b", "meta-llama/Llama-3.2-1B": "llama-3.2-1b-instruct",
          "microsoft/Phi-3-mini-4k-instruct": "phi-3-mini-4k-instruct"}
GIB = 2**30


def first_int(value) -> int | None:
    m = re.match(r"\s*(\d+)", str(value))
    return int(m.group(1)) if m else None


def first_float(value) -> float | None:
    m = re.match(r"\s*([\d.]+)", str(value))
    return float(m.group(1)) if m else None


def memory_bytes(value) -> float | None:
    text = str(value)
    x = first_float(text)
    if x is None or "<" in text:
        return None
    return x * (GIB if "GiB" in text else 1e9)


def optimizer_of(text: str) -> str | None:
    t = str(text).lower()
    if t.startswith("unknown"):
        return None
    return "adamw-8bit" if "8bit" in t or "8-bit" in t else "adamw" if "adamw" in t else None


def checkpointing_of(text) -> bool | None:
    t = str(text).lower()
    return True if t.startswith("true") else False if t.startswith("false") else None


def config_of(row: dict) -> tuple[TrainingConfig | None, str]:
    """The row as a TrainingConfig, or None and why not."""
    if row.get("num_devices") != 1:
        return None, "more than one device (simfl models one)"
    model = MODELS.get(row["model"])
    if model is None:
        return None, f"no config.json shipped for {row['model']}"
    load_model_config(model, None)
    fine = str(row["finetuning"]).split()[0]
    if fine not in ("lora", "qlora", "full"):
        return None, f"fine-tuning {fine}"
    quant = str(row["quantization"]).split()[0]
    if quant not in ("none", "nf4", "int8"):
        return None, f"quantization {quant}"
    precision = str(row["precision"]).split()[0]
    if precision == "bf16" and ("bf16-true" in str(row["precision"]) or "torchtune" in str(row.get("framework"))):
        precision = "bf16-true"  # torchtune and Lightning's bf16-true hold weights, gradients and moments in bf16
    if "unpacked" in str(row["seq_len"]) or "variable" in str(row["seq_len"]):
        return None, "sequences of varying length (tokens per step unknown)"
    opt, ckpt = optimizer_of(row["optimizer"]), checkpointing_of(row["gradient_checkpointing"])
    batch, seq = first_int(row["batch_size"]), first_int(row["seq_len"]) or first_int(
        re.sub(r"^\D*", "", str(row["seq_len"])))
    missing = [k for k, v in (("precision", precision in ("fp32", "tf32", "bf16", "fp16", "bf16-true")), ("optimizer", opt),
                              ("gradient_checkpointing", ckpt is not None), ("batch_size", batch), ("seq_len", seq))
               if not v]
    if missing:
        return None, f"{', '.join(missing)} not stated"
    r = first_int(row["lora_r"]) if fine != "full" else 16
    return TrainingConfig(model, "full" if fine == "full" else "lora", seq_len=seq - 1, target_len=1,
                          batch_size=batch, lora_r=r or 16, lora_targets=("q", "v"), optimizer=opt,
                          precision=precision, quantization=quant, gradient_checkpointing=ckpt), ""


def measured_step_s(row: dict, c: TrainingConfig) -> float | None:
    """The row's step time: stated, or the batch's tokens over the stated tokens per second."""
    tokens = first_float(row.get("tokens_per_s"))
    if tokens:
        return c.batch_size * (c.seq_len + 1) / tokens
    return None


OTHER_FILE = ROOT / "simfl" / "hardware" / "other_configuration.yaml"


def interval_of(errors: list[float], source: str) -> dict | None:
    """The stated error of a step trained in a way no profile measured, from these held-out relative errors: the
    median absolute error, the 80 % interval (80th percentile of the absolute log errors: prediction x
    exp(±interval_80)), and how many of the points fall inside the interval stated from all the others (leave one
    out). None with fewer than 3 points."""
    if len(errors) < 3:
        return None
    logs = [abs_log_error(e) for e in errors]
    return {"median": round(statistics.median(abs(e) for e in errors), 4),
            "interval_80": round(interval_half_width(logs), 4), "points": len(errors), "inside_80": loo_inside(logs),
            "source": source}


def calibrate_interval(out: list[dict]) -> dict | None:
    """The stated error of a GPU step at a precision, optimizer, checkpointing or quantization no profile measured,
    from every published row with a step time: printed, and what --write keeps."""
    errs = [r["step_error"] for r in out if r["step_error"] is not None]
    st = interval_of(errs, "scripts/published_validation.py: the hardware model's step time on the published runs of "
                           "docs/data/published-finetuning.yaml (a precision, optimizer, checkpointing or quantization no "
                           "shipped profile measured); each row's coverage checked against the interval of the others")
    if st is None:
        print("too few rows to state an interval")
        return None
    print(f"interval from {st['points']} published rows: median {100 * st['median']:.0f} %, 80 % interval "
          f"{interval_text(st['interval_80'])}; each row left out: {st['inside_80']} of {st['points']} inside the "
          "interval of the others")
    return {"gpu": st}


def measured_ways() -> dict[str, list[dict]]:
    """Points measured here in other ways than fp32 + SGD + no checkpointing (profiles such as
    cpu-2core-epyc-zen4-ways, by benchmarks/training_ways.py), each predicted from its profile's default points
    alone: {device class: [{"point", "step_error", "memory_error"}]}."""
    out: dict[str, list[dict]] = {}
    for path in sorted((ROOT / PROFILE_DIR).glob("*.yaml")):
        profile = load_model(HardwareProfile, path)
        other = [t for t in profile.training if not t.oom and (t.precision or t.optimizer or t.gradient_checkpointing
                                                              or t.quantization)]
        if not other or profile.datasheet() is None:
            continue
        base = profile.model_copy(update={"training": [t for t in profile.training if t not in other]})
        for t in other:
            est = shipped().estimate(base, t.training_config)
            out.setdefault(profile.device_class, []).append({
                "point": f"{profile.name} {t.describe()}", "step_error": est.step_time_s / t.step_time_s - 1,
                "memory_error": None if not t.peak_memory_bytes else est.memory_bytes / t.peak_memory_bytes - 1})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", type=Path)
    ap.add_argument("--write", action="store_true",
                    help=f"write the interval fitted on the calibration half into {OTHER_FILE.relative_to(ROOT)}")
    a = ap.parse_args()
    rows = yaml.safe_load((ROOT / "docs" / "data" / "published-finetuning.yaml").read_text())["rows"]
    model = shipped()
    out, skipped = [], []
    for row in rows:
        device = DEVICES.get(str(row["device"]))
        if device is None:
            skipped.append((row["id"], f"no profile of {row['device']}"))
            continue
        c, why = config_of(row)
        if c is None:
            skipped.append((row["id"], why))
            continue
        profile = load_model(HardwareProfile, ROOT / PROFILE_DIR / f"{device}.yaml")
        est = model.estimate(profile, c)
        step, mem = measured_step_s(row, c), memory_bytes(row["peak_memory_gb"])
        half = est.interval_80
        out.append({"id": row["id"], "device": device, "model": c.model, "config": f"{c.finetuning}{c.how()}",
                    "batch": c.batch_size, "tokens": c.seq_len + 1,
                    "step_measured_s": step, "step_predicted_s": est.step_time_s,
                    "step_error": None if step is None else est.step_time_s / step - 1,
                    "memory_measured_gb": None if mem is None else mem / 1e9,
                    "memory_predicted_gb": est.memory_bytes / 1e9,
                    "memory_error": None if mem is None else est.memory_bytes / mem - 1,
                    "error_kind": est.error_kind, "stated_interval_80": half,
                    "inside": None if half is None or step is None else abs_log_error(est.step_time_s / step - 1) <= half})
    print(f"{'id':>3} {'device':14s} {'model':12s} {'config':32s} {'step s meas/pred':>18s} {'err':>6s} "
          f"{'mem GB meas/pred':>18s} {'err':>6s}  stated")
    for r in out:
        s = "-" if r["step_measured_s"] is None else f"{r['step_measured_s']:.2f}/{r['step_predicted_s']:.2f}"
        m = "-" if r["memory_measured_gb"] is None else f"{r['memory_measured_gb']:.1f}/{r['memory_predicted_gb']:.1f}"
        se = "" if r["step_error"] is None else f"{100 * r['step_error']:+.0f}%"
        me = "" if r["memory_error"] is None else f"{100 * r['memory_error']:+.0f}%"
        stated = "not validated" if r["stated_interval_80"] is None else interval_text(r["stated_interval_80"])
        print(f"{r['id']:>3} {r['device']:14s} {r['model']:12s} {r['config']:32s} {s:>18s} {se:>6s} {m:>18s} "
              f"{me:>6s}  {stated}")
    steps = [abs(r["step_error"]) for r in out if r["step_error"] is not None]
    mems = [abs(r["memory_error"]) for r in out if r["memory_error"] is not None]
    stated = [r for r in out if r["inside"] is not None]
    print(f"\n{len(out)} rows used, {len(skipped)} not usable")
    if steps:
        print(f"step time: median absolute error {100 * statistics.median(steps):.0f} % over {len(steps)} rows")
    if mems:
        print(f"peak memory: median absolute error {100 * statistics.median(mems):.0f} % over {len(mems)} rows")
    print(f"stated 80 % intervals (as shipped, in-sample for the rows they were set from): {len(stated)} rows state "
          f"one, {sum(r['inside'] for r in stated)} inside it; "
          f"{sum(r['stated_interval_80'] is None for r in out)} say their error is not validated")
    for i, why in skipped:
        print(f"  row {i}: {why}")
    interval = calibrate_interval(out)
    here = measured_ways()
    for device_class, rows in here.items():
        print(f"\nmeasured here, {device_class}: each point predicted from its profile's fp32 + SGD points")
        for r in rows:
            mem = "" if r["memory_error"] is None else f"  memory {100 * r['memory_error']:+.0f}%"
            print(f"  {r['point']:80s} step {100 * r['step_error']:+.0f}%{mem}")
        steps = [abs(r["step_error"]) for r in rows]
        mems = [abs(r["memory_error"]) for r in rows if r["memory_error"] is not None]
        print(f"  step time median |error| {100 * statistics.median(steps):.0f} %"
              + (f", peak memory {100 * statistics.median(mems):.0f} %" if mems else ""))
        fitted = interval_of([r["step_error"] for r in rows],
                             "scripts/published_validation.py: points this project measured in other ways "
                             "(benchmarks/training_ways.py), predicted from their profile's fp32 + SGD points; each "
                             "point's coverage checked against the interval of the others")
        if fitted and interval is not None:
            interval[device_class] = fitted
            print(f"  80 % interval {interval_text(fitted['interval_80'])}; each point left out: "
                  f"{fitted['inside_80']} of {fitted['points']} inside the interval of the others")
    if interval and a.write:
        OTHER_FILE.write_text("# Generated by scripts/published_validation.py --write; edit the script, not this "
                              "file.\n" + yaml.safe_dump(interval, sort_keys=False, width=110))
        print(f"wrote {OTHER_FILE.relative_to(ROOT)}")
    if a.csv:
        with a.csv.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(out[0]))
            w.writeheader()
            w.writerows(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
