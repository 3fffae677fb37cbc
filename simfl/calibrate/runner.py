"""Calibration: measure training steps per (model, batch), write a hardware profile simfl run reads."""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from simfl.calibrate.kernel import FG_PHASES, PHASES, is_oom, sync_device, timed_fg_step, timed_step
from simfl.calibrate.power import Measurement, PowerMonitor
from simfl.catalog import get_architecture
from simfl.costs import interpolate
from simfl.lm.data import random_batch, text_batches
from simfl.lm.model import KernelSpec, build_model, make_optimizer
from simfl.training import (DEFAULT_GRADIENT_CHECKPOINTING, DEFAULT_LORA_R, DEFAULT_LORA_TARGETS, DEFAULT_METHOD,
                            DEFAULT_OPTIMIZER, DEFAULT_PRECISION, DEFAULT_QUANTIZATION, DEFAULT_TARGET_LEN)

# Dense BF16/FP16 tensor peak of known accelerators (datasheets; the A100 and Orin figures are the
# seed paper's MFU peaks). Anything else needs --peak-flops or gets the CPU estimate.
KNOWN_PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "Orin": 42.5e12}


@dataclass(frozen=True)
class PointResult:
    model: str
    batch_size: int
    oom: bool
    step_times_s: tuple[float, ...] = ()
    phases_s: dict | None = None
    power: Measurement | None = None
    peak_memory_bytes: float | None = None

    @property
    def median_s(self) -> float:
        return float(np.median(self.step_times_s))

    @property
    def p90_s(self) -> float:
        return float(np.percentile(self.step_times_s, 90))


def cpu_peak_flops_estimate() -> tuple[float, str]:
    """FP32 peak of this CPU: cores x max clock x FLOP/cycle from its vector units (an estimate)."""
    flags, mhz = "", 0.0
    try:
        text = open("/proc/cpuinfo").read()
        flags = next((l for l in text.splitlines() if l.startswith("flags")), "")
        mhz = max(float(l.split(":")[1]) for l in text.splitlines() if l.startswith("cpu MHz"))
    except (OSError, ValueError, StopIteration):
        pass
    # FP32 FLOP/cycle = 2 FMA units x lanes x 2: 512-bit (Xeon SP, Zen 5) 64; 256-bit (Haswell+, Zen 2-4) 32
    per_cycle = 64 if "avx512f" in flags else 32 if "fma" in flags else 8
    cores = os.cpu_count() or 1
    ghz = (mhz or 2000.0) / 1000
    return float(f"{cores * ghz * 1e9 * per_cycle:.4g}"), (
        f"estimate: {cores} logical cores x {ghz:.2f} GHz x {per_cycle} FP32 FLOP/cycle (two FMA units assumed, "
        "from /proc/cpuinfo flags; logical cores that are SMT siblings would halve the true peak)")


def device_facts(device: torch.device) -> dict:
    """The host and device measured: host name, CPU model, logical cores and speed flags (simfl.hostid, the
    record emulate and run compare with this machine), the GPU's name and memory, or the host's memory."""
    from simfl.hostid import here

    facts = {"host": platform.node(), **here().provenance()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        facts["gpu"] = props.name
        facts["memory_bytes"] = float(props.total_memory)
        try:
            import pynvml

            pynvml.nvmlInit()
            facts["driver"] = pynvml.nvmlSystemGetDriverVersion()
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001 - provenance is best effort
            pass
    else:
        try:
            kb = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
            facts["memory_bytes"] = kb * 1024.0
        except (OSError, StopIteration):
            facts["memory_bytes"] = 0.0
    return facts


def device_class_of(device: torch.device, facts: dict) -> str:
    """The hardware model's class: a Jetson (Tegra) GPU shares memory with its CPU, a discrete GPU does not."""
    if device.type != "cuda":
        return "cpu"
    return "soc-gpu" if any(k in facts.get("gpu", "") for k in ("Orin", "Tegra", "Xavier")) else "gpu"


def measure_bandwidth_bytes_per_s(device: torch.device, nbytes: int = 1 << 30, repeats: int = 7) -> float:
    """Memory bandwidth as a device-to-device copy moves it (read and write: 2 x nbytes), best of `repeats`:
    the figure the hardware model divides a step's memory traffic by."""
    a = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    b = torch.empty_like(a)
    best = math.inf
    for _ in range(repeats):
        sync_device(device)
        t = time.perf_counter()
        b.copy_(a)
        sync_device(device)
        best = min(best, time.perf_counter() - t)
    return float(f"{2 * nbytes / best:.4g}")


def peak_flops_for(device: torch.device, facts: dict, given: float | None) -> tuple[float, str]:
    if given:
        return given, "given with --peak-flops"
    if device.type == "cuda":
        for key, flops in KNOWN_PEAK_FLOPS.items():
            if key in facts.get("gpu", ""):
                return flops, f"datasheet dense BF16 peak of {key}"
        raise ValueError(f"unknown GPU {facts.get('gpu')!r}: pass --peak-flops")
    return cpu_peak_flops_estimate()


def training_flops_per_step(model: str, finetuning: str, batch: int, seq_len: int, target_len: int,
                            perturbations: int | None = None) -> dict:
    """FLOPs of one step by two formulas, so MFU can be compared with the paper.

    exact: the encoder-decoder forward count, x3 for full fine-tuning (forward, input
    gradients, weight gradients), x2 for LoRA (the frozen base's weight gradients skipped);
    forward-gradient: x2 per perturbation (a jvp carries primal and tangent).
    6N: 6 x total params x input tokens, the formula the paper's MFU values match.
    """
    arch = get_architecture(model)
    fwd = arch.forward_flops(seq_len, target_len) * batch
    factor = 2 * perturbations if perturbations else (3 if finetuning == "full" else 2)
    return {"exact": fwd * factor, "6N": 6.0 * arch.total_params() * batch * seq_len}


def measure_point(model, optimizer, arch, spec: KernelSpec, batch: int, warmup: int, steps: int,
                  device: torch.device, monitor: PowerMonitor, model_name: str, fg=None) -> PointResult:
    count = min(steps + warmup, 4)  # a few distinct batches, cycled: the step, not the loader, is measured
    if spec.data:
        data = text_batches(spec, batch, count)
    else:
        gen = torch.Generator().manual_seed(spec.seed + batch)
        data = [random_batch(batch, spec, arch.vocab_size, gen) for _ in range(count)]
    if fg is None:
        step, phase_names = (lambda b: timed_step(model, optimizer, b, device, spec.autocast_dtype)), PHASES
    else:
        step, phase_names = (lambda b: timed_fg_step(fg, b, device, spec.lr)), FG_PHASES
    for i in range(warmup):
        step(data[i % len(data)])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    monitor.begin_window("steps")
    results = [step(data[i % len(data)]) for i in range(steps)]
    m = monitor.end_window("steps")
    peak = float(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else m.peak_rss_bytes
    phases = {p: float(np.median([r[p] for r in results])) for p in phase_names}
    return PointResult(model_name, batch, False, tuple(r["step"] for r in results), phases, m, peak)


def calibrate(models: list[str], batch_sizes: list[int], spec: KernelSpec, *, warmup: int, steps: int,
              device: torch.device, monitor: PowerMonitor, idle_s: float = 3.0,
              on_point: Callable[[PointResult], None] | None = None,
              step_hook: Callable | None = None, perturbations: int | None = None,
              ) -> tuple[list[PointResult], Measurement | None]:
    """Measure every (model, batch). An OOM marks that batch and every larger one, then the next model.

    With `perturbations`, steps are forward-gradient steps (FwdLLM) with that many
    perturbations, computed by forward-mode AD; otherwise backprop steps.
    """
    if perturbations:
        from simfl.lm.forward_gradient import ForwardGradient

        spec = KernelSpec(**{**spec.__dict__, "eager_attention": True, "lora_dropout": 0.0})
    idle = None
    if monitor.backend.kind != "none" and idle_s > 0:
        monitor.begin_window("idle")
        time.sleep(idle_s)
        idle = monitor.end_window("idle")
    points: list[PointResult] = []
    for name in models:
        arch = get_architecture(name)
        model = build_model(arch, spec).to(device)
        optimizer = None if perturbations else make_optimizer(model, spec)
        fg = ForwardGradient(model.eval(), perturbations, mode="auto", seed=spec.seed) if perturbations else None
        oom_from = None
        for batch in sorted(batch_sizes):
            if oom_from is None:
                try:
                    if step_hook:
                        step_hook(name, batch)
                    point = measure_point(model, optimizer, arch, spec, batch, warmup, steps, device, monitor, name,
                                          fg)
                except Exception as e:  # noqa: BLE001 - only OOM is expected; anything else re-raises
                    if not is_oom(e):
                        raise
                    oom_from = batch
                    if optimizer is not None:
                        optimizer.zero_grad(set_to_none=True)
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
            if oom_from is not None:
                point = PointResult(name, batch, True)
            points.append(point)
            if on_point:
                on_point(point)
        del model, optimizer
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return points, idle


def interpolation_check(points: list[PointResult]) -> list[dict]:
    """Leave-one-out: predict each interior measured batch from the others, as simfl run would."""
    out = []
    for name in dict.fromkeys(p.model for p in points):
        ok = sorted((p for p in points if p.model == name and not p.oom), key=lambda p: p.batch_size)
        for i in range(1, len(ok) - 1):
            rest = ok[:i] + ok[i + 1:]
            pred, _ = interpolate([p.batch_size for p in rest], [p.median_s for p in rest], ok[i].batch_size)
            out.append({"model": name, "batch_size": ok[i].batch_size, "from": [p.batch_size for p in rest],
                        "measured_s": ok[i].median_s, "predicted_s": pred,
                        "error_pct": 100.0 * (pred - ok[i].median_s) / ok[i].median_s})
    return out


def point_entry(p: PointResult, spec: KernelSpec, method: str, peak_flops: float,
                perturbations: int | None = None) -> dict:
    entry = {"model": p.model, "finetuning": spec.finetuning, "method": method, "seq_len": spec.seq_len,
             "target_len": spec.target_len, "lora_r": spec.lora_r, "lora_targets": list(spec.lora_targets),
             "batch_size": p.batch_size}
    if perturbations:
        entry["perturbations"] = perturbations
    # how it trained, where that is not the seed paper's way (a point without them is sgd, fp32, ...)
    for field, default in (("optimizer", DEFAULT_OPTIMIZER), ("precision", DEFAULT_PRECISION),
                           ("quantization", DEFAULT_QUANTIZATION),
                           ("gradient_checkpointing", DEFAULT_GRADIENT_CHECKPOINTING)):
        if getattr(spec, field) != default:
            entry[field] = getattr(spec, field)
    if p.oom:
        return {**entry, "oom": True}
    step = p.median_s
    flops = training_flops_per_step(p.model, spec.finetuning, p.batch_size, spec.seq_len, spec.target_len,
                                    perturbations)
    entry.update(step_time_s=round(step, 6), step_time_p90_s=round(p.p90_s, 6),
                 tokens_per_s=round(p.batch_size * spec.seq_len / step, 3),
                 mfu=round(flops["exact"] / step / peak_flops, 6),
                 phases_s={k: round(v, 6) for k, v in p.phases_s.items()})
    if p.peak_memory_bytes:
        entry["peak_memory_bytes"] = float(p.peak_memory_bytes)
    if p.power is not None and p.power.avg_power_w is not None:
        entry["power_w"] = round(p.power.avg_power_w, 4)
        entry["energy_per_step_j"] = round(p.power.energy_j / len(p.step_times_s), 4)
    return entry


def build_profile(name: str, points: list[PointResult], idle: Measurement | None, spec: KernelSpec, *,
                  device: torch.device, facts: dict, peak_flops: float, peak_source: str, backend: str,
                  rate_hz: float, warmup: int, steps: int, perturbations: int | None = None) -> dict:
    import peft
    import transformers

    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    where = facts.get("gpu") or facts.get("cpu")
    provenance = {
        "host": facts.get("host"), "cpu": facts.get("cpu"), "cpu_cores": facts.get("cpu_cores"),
        "cpu_flags": facts.get("cpu_flags"), "gpu": facts.get("gpu"), "driver": facts.get("driver"),
        "device": str(device), "torch": str(torch.__version__), "transformers": str(transformers.__version__),
        "peft": str(peft.__version__), "python": platform.python_version(), "date": now,
        "command": " ".join(["simfl", *sys.argv[1:]]) if sys.argv else None,
        "warmup_steps": warmup, "measured_steps": steps, "power_backend": backend,
        "power_sampling_hz": rate_hz if backend != "none" else None, "torch_threads": torch.get_num_threads(),
        "weights": spec.pretrained or "random (architecture from the catalog's config)",
        "data": f"{spec.data} (tokenizer {spec.tokenizer})" if spec.data else "random token ids, seeded",
        "optimizer": f"{spec.optimizer} lr {spec.lr}", "target_len": spec.target_len,
        "peak_flops_source": peak_source,
        "memory_bandwidth_source": "measured: best of 7 copies of an FP32 tensor (1 GiB, or a 16th of memory) on the device",
        "mfu_formula": "exact encoder-decoder forward FLOPs x (2 LoRA | 3 full) / step time / peak_flops",
    }
    profile = {
        "name": name,
        "source": f"measured by simfl calibrate on {facts.get('host')} ({where}), {now}",
        "estimated": False,
        "device_class": device_class_of(device, facts),
        "peak_flops": peak_flops,
        "memory_bytes": facts.get("memory_bytes") or 1.0,
        "memory_bandwidth_bytes_per_s": measure_bandwidth_bytes_per_s(
            device, int(min(1 << 30, (facts.get("memory_bytes") or 16 << 30) / 16))),
        "idle_power_w": round(idle.avg_power_w, 4) if idle and idle.avg_power_w is not None else None,
        "idle_power_source": (f"measured over {idle.duration_s:.1f} s idle before the steps" if idle and
                              idle.avg_power_w is not None else "not measured: no power backend"),
        "training": [point_entry(p, spec, "forward_gradient" if perturbations else "backprop", peak_flops,
                                 perturbations) for p in points],
        "provenance": {k: v for k, v in provenance.items() if v is not None},
    }
    spread = step_spread(points)
    if spread is not None:
        profile["speed"] = spread
    return profile


def step_spread(points: list[PointResult], min_steps: int = 10) -> dict | None:
    """The measured spread of step time as a profile's `speed`: the log-sd of every measured step around its
    own point's median, pooled over the points. None with fewer than `min_steps` steps or no spread.

    It describes step to step spread on this one device; a fleet group that takes it as its default draws a
    round's step-time multiplier with it (per: round), which treats a round's steps as moving together and
    so overstates the spread of rounds of many independent steps."""
    devs = [math.log(t / p.median_s) for p in points if not p.oom for t in p.step_times_s if t > 0]
    if len(devs) < min_steps:
        return None
    sigma = math.sqrt(sum(d * d for d in devs) / (len(devs) - 1))
    if not sigma > 0:
        return None
    n_points = sum(1 for p in points if not p.oom)
    return {"sigma": round(sigma, 6), "per": "round",
            "source": f"log-sd of {len(devs)} measured steps around their point's median, pooled over "
                      f"{n_points} point(s), by simfl calibrate"}


def merge_profiles(old: dict, new: dict) -> dict:
    """Keep old points the new run did not measure; new points replace same-configuration ones."""
    key = lambda p: (p["model"], p["finetuning"], p.get("method", DEFAULT_METHOD), p["seq_len"],  # noqa: E731
                     p["batch_size"], p.get("perturbations"), p.get("target_len", DEFAULT_TARGET_LEN),
                     p.get("lora_r", DEFAULT_LORA_R), tuple(sorted(p.get("lora_targets", DEFAULT_LORA_TARGETS))),
                     p.get("optimizer", DEFAULT_OPTIMIZER), p.get("precision", DEFAULT_PRECISION),
                     p.get("quantization", DEFAULT_QUANTIZATION),
                     p.get("gradient_checkpointing", DEFAULT_GRADIENT_CHECKPOINTING))
    fresh = {key(p) for p in new["training"]}
    kept = [p for p in old.get("training", []) if key(p) not in fresh]
    merged = {**new, "training": kept + new["training"]}
    if old.get("aggregation"):
        merged["aggregation"] = old["aggregation"]
    return merged
