"""The step-time, power and memory model: a device's datasheet and a step's work in, seconds, watts and bytes out.

Step time is a soft roofline with a per-block overhead (docs/hardware-model.md):

    T0 = blocks x overhead_s_per_block                      (launching and dispatching the step's kernels)
    Tc = flops / (eta x peak_flops)                          (executing them: arithmetic, at fp32; another
                                                             precision scales eta x peak_flops by the
                                                             datasheet's peak ratio, capped at its peak ...
    Tm = traffic_bytes / (memory_efficiency x bandwidth)     ... and memory traffic)
    t  = (T0^p + Tc^p + Tm^p)^(1/p)                          p = overlap: 1 adds them (one resource does it
                                                             all in turn), larger p hides the smaller under the
                                                             larger (a GPU queues kernels ahead: batch 1 costs
                                                             the overhead, large batches the work)

    eta = compute_efficiency x d_model / (d_model + half_width): matrix products of narrow models run
    further below peak. Forward-gradient steps execute theirs at forward_gradient_efficiency x eta.
Power rises from idle towards the device's limit with the fraction of the step the device is executing
work, busy = T1 / t: P = idle + (limit - idle) x (floor + slope x busy), capped at the limit.
Memory: static bytes + runtime_bytes + activation_scale x (activation_factor x saved activations +
logits_factor x logits) must fit in the device's memory.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from simfl.hardware.work import StepWork

DeviceClass = Literal["gpu", "soc-gpu", "cpu"]
DEVICE_CLASSES: tuple[str, ...] = ("gpu", "soc-gpu", "cpu")


@dataclass(frozen=True)
class Datasheet:
    """What a vendor publishes about a device (power_limit_w and idle_power_w may be unknown: None)."""

    device_class: str
    peak_flops: float
    memory_bytes: float
    memory_bandwidth_bytes_per_s: float
    power_limit_w: float | None = None
    idle_power_w: float | None = None
    # the datasheet's dense peak at each precision it lists, (precision, FLOP/s): what another precision than
    # fp32 (the one measured profiles train at) is scaled by
    peaks: tuple[tuple[str, float], ...] = ()

    def rate_at(self, precision: str, fp32_rate: float) -> tuple[float, bool]:
        """(FLOP/s a step at `precision` executes, whether the datasheet scaled it): the fp32 rate times the
        datasheet's peak ratio, never beyond the datasheet's peak at that precision; the fp32 rate unchanged
        where the datasheet does not list both (a CPU's tf32 is its fp32)."""
        table = dict(self.peaks)
        precision = precision.removesuffix("-true")  # bf16-true's matmuls are bf16's
        if precision == "fp32" or precision not in table or "fp32" not in table:
            return fp32_rate, False
        return min(fp32_rate * table[precision] / table["fp32"], table[precision]), True


@dataclass(frozen=True)
class SpeedParams:
    overhead_s_per_block: float
    compute_efficiency: float
    memory_efficiency: float
    overlap: float = 1.0
    forward_gradient_efficiency: float = 1.0
    half_width: float = 1.0  # d_model at which matmuls run at half of compute_efficiency

    def with_(self, **kw) -> "SpeedParams":
        return replace(self, **kw)


@dataclass(frozen=True)
class PowerParams:
    floor: float  # share of (limit - idle) drawn while a step runs but the device executes nothing
    slope: float  # share added per unit of busy fraction


@dataclass(frozen=True)
class MemoryParams:
    activation_factor: float  # peak bytes per saved-activation byte (transients, allocator slack)
    logits_factor: float  # peak bytes per byte of logits beyond the saved ones (the loss's backward copies)
    forward_gradient_factor: float  # the same for forward-gradient steps (P tangents live at once)
    runtime_bytes: float  # the framework's own footprint
    activation_scale: float = 1.0  # a device class's activations relative to those measured (its allocator)


def terms_s(w: StepWork, sheet: Datasheet, sp: SpeedParams) -> tuple[float, float, float]:
    """(overhead, compute, memory) times of a step, each as if it ran alone."""
    eff = (sp.compute_efficiency * w.width / (w.width + sp.half_width)
           * (sp.forward_gradient_efficiency if w.forward_gradient else 1.0))
    rate, _ = sheet.rate_at(w.precision, eff * sheet.peak_flops)
    return (w.blocks * sp.overhead_s_per_block, w.flops / rate,
            w.traffic_bytes / (sp.memory_efficiency * sheet.memory_bandwidth_bytes_per_s))


def _norm(xs, p: float) -> float:
    m = max(xs)  # scaled to keep large p from overflowing
    return m * sum((x / m) ** p for x in xs) ** (1.0 / p) if m > 0 else 0.0


def step_time_s(w: StepWork, sheet: Datasheet, sp: SpeedParams) -> float:
    return _norm(terms_s(w, sheet, sp), sp.overlap)


def busy_fraction(w: StepWork, sheet: Datasheet, sp: SpeedParams) -> float:
    """Share of the step the device spends executing work (compute and memory, overlapped as the step's
    terms are, over the step time), in (0, 1]."""
    _, tc, tm = terms_s(w, sheet, sp)
    return min(1.0, _norm((tc, tm), sp.overlap) / step_time_s(w, sheet, sp))


def power_w(busy: float, sheet: Datasheet, pp: PowerParams) -> float | None:
    """Average power of a step; None when the datasheet lacks the limit or the idle power."""
    if sheet.power_limit_w is None or sheet.idle_power_w is None:
        return None
    share = min(1.0, pp.floor + pp.slope * busy)
    return sheet.idle_power_w + (sheet.power_limit_w - sheet.idle_power_w) * share


def batch_memory_bytes(w: StepWork, mp: MemoryParams) -> float:
    """The part of a step's memory that grows with the batch, before the class's activation_scale."""
    if w.forward_gradient:
        return mp.forward_gradient_factor * w.activation_bytes
    return mp.activation_factor * w.activation_bytes + mp.logits_factor * w.logits_bytes


def memory_needed_bytes(w: StepWork, mp: MemoryParams) -> float:
    return w.static_bytes + mp.runtime_bytes + mp.activation_scale * batch_memory_bytes(w, mp)
