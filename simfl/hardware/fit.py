"""Fitting the hardware model's parameters to measured points: least squares on log step time (a small
Levenberg-Marquardt in numpy), linear least squares for power, interval search for a class's activation scale."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from simfl.hardware.model import (Datasheet, MemoryParams, PowerParams, SpeedParams, busy_fraction,
                                  step_time_s)
from simfl.hardware.work import StepWork
from simfl.training import TrainingConfig

# Where each speed parameter may go (physical ranges; overlap 1 adds the terms, 8 is all but a max).
BOUNDS = {"overhead_s_per_block": (1e-7, 1.0), "compute_efficiency": (1e-3, 1.0),
          "memory_efficiency": (1e-3, 1.0), "overlap": (1.0, 8.0), "forward_gradient_efficiency": (0.02, 2.0),
          "half_width": (1.0, 1e4)}


@dataclass(frozen=True)
class Observation:
    """One measured point of a device: its work, its datasheet and what was measured (None: not measured)."""

    device: str
    config: TrainingConfig
    work: StepWork
    sheet: Datasheet
    step_time_s: float | None = None
    power_w: float | None = None
    peak_memory_bytes: float | None = None
    oom: bool = False


def levenberg_marquardt(residuals: Callable[[np.ndarray], np.ndarray], x0: np.ndarray, lower: np.ndarray,
                        upper: np.ndarray, iterations: int = 200) -> np.ndarray:
    """Minimise sum(residuals(x)^2) within box bounds (steps projected onto the box); forward-difference
    Jacobian. Small problems only (a handful of parameters)."""
    x = np.clip(np.asarray(x0, dtype=float), lower, upper)
    r = residuals(x)
    cost, lam = float(r @ r), 1e-3
    for _ in range(iterations):
        jac = np.empty((r.size, x.size))
        for j in range(x.size):
            h = 1e-6 * max(1.0, abs(x[j]))
            xh = x.copy()
            xh[j] = xh[j] + h if xh[j] + h <= upper[j] else xh[j] - h
            jac[:, j] = (residuals(xh) - r) / (xh[j] - x[j])
        g, a = jac.T @ r, jac.T @ jac
        improved = False
        while lam < 1e10:
            step = np.linalg.solve(a + lam * np.diag(np.diag(a) + 1e-12), -g)
            xn = np.clip(x + step, lower, upper)
            rn = residuals(xn)
            cn = float(rn @ rn)
            if cn < cost:
                improved = cost - cn > 1e-14 * max(cost, 1e-30)
                x, r, cost, lam = xn, rn, cn, max(lam / 10, 1e-12)
                break
            lam *= 10
        if not improved:
            break
    return x


def log_errors(obs: Sequence[Observation], sp: SpeedParams) -> np.ndarray:
    return np.array([np.log(step_time_s(o.work, o.sheet, sp) / o.step_time_s) for o in obs])


PRIOR_WEIGHT = 0.1  # how hard a fit is pulled to its prior: a parameter the points do not pin down stays there


def fit_speed(obs: Sequence[Observation], start: SpeedParams, free: Sequence[str],
              prior: SpeedParams | None = None) -> SpeedParams:
    """The speed parameters named in `free` that best fit the observations' step times (least squares of the
    log ratio, so every point weighs by its relative error); the others stay as in `start`. Parameters are
    searched on a log scale (overlap on a linear one). With a prior, each free parameter also pays
    PRIOR_WEIGHT x its (log) distance from the prior's value: points that cannot tell two parameters apart
    (one batch size only, say) leave them near the prior instead of anywhere."""
    timed = [o for o in obs if o.step_time_s is not None and not o.oom]
    free = [f for f in free if f != "forward_gradient_efficiency" or any(o.work.forward_gradient for o in timed)]
    if not timed or not free:
        return start

    def unpack(x):
        return start.with_(**{f: (float(v) if f == "overlap" else float(np.exp(v))) for f, v in zip(free, x)})

    def to_x(f, v):
        return v if f == "overlap" else np.log(v)

    lo = np.array([to_x(f, BOUNDS[f][0]) for f in free])
    hi = np.array([to_x(f, BOUNDS[f][1]) for f in free])
    centre = None if prior is None else np.array([to_x(f, getattr(prior, f)) for f in free])

    def residuals(x):
        r = log_errors(timed, unpack(x))
        return r if centre is None else np.concatenate([r, PRIOR_WEIGHT * (x - centre)])

    best = None
    for overlap0 in ([1.0, 2.0, 4.0] if "overlap" in free else [start.overlap]):  # the overlap has local minima
        s0 = start.with_(overlap=overlap0)
        x = levenberg_marquardt(residuals, np.array([to_x(f, getattr(s0, f)) for f in free]), lo, hi)
        r = residuals(x)
        cost = float(r @ r)
        if best is None or cost < best[0]:
            best = (cost, unpack(x))
    return best[1]


def fit_scale(obs: Sequence[Observation], start: SpeedParams) -> SpeedParams:
    """One point's worth of fitting: every time scaled by the geometric-mean ratio measured / predicted
    (overhead multiplied, efficiencies divided)."""
    timed = [o for o in obs if o.step_time_s is not None and not o.oom]
    if not timed:
        return start
    k = float(np.exp(-np.mean(log_errors(timed, start))))
    return start.with_(overhead_s_per_block=start.overhead_s_per_block * k,
                       compute_efficiency=start.compute_efficiency / k, memory_efficiency=start.memory_efficiency / k)


def fit_power(obs: Sequence[Observation], speed: Callable[[Observation], SpeedParams]) -> PowerParams | None:
    """floor and slope (both >= 0) of the share of (limit - idle) drawn, by least squares against the busy
    fraction the speed model gives each point; None without points that have power, limit and idle."""
    rows = [(busy_fraction(o.work, o.sheet, speed(o)),
             (o.power_w - o.sheet.idle_power_w) / (o.sheet.power_limit_w - o.sheet.idle_power_w))
            for o in obs if o.power_w is not None and not o.oom and o.sheet.power_limit_w is not None
            and o.sheet.idle_power_w is not None]
    if len(rows) < 2:
        return None
    busy, share = np.array(rows).T
    a = np.column_stack([np.ones_like(busy), busy])
    floor, slope = np.linalg.lstsq(a, share, rcond=None)[0]
    if slope < 0:  # no rise with work: a constant share
        floor, slope = float(np.mean(share)), 0.0
    if floor < 0:  # through the origin
        floor, slope = 0.0, float(busy @ share / (busy @ busy))
    return PowerParams(float(floor), float(slope))


def fit_activation_memory(obs: Sequence[Observation]) -> tuple[float, float, float, float] | None:
    """(activation_factor, logits_factor, forward_gradient_factor, runtime_bytes) from measured peak memory:
    peak - static = runtime + a x saved activations + b x logits, least squares over backprop points (b is
    0 unless the points vary the vocabulary); the forward-gradient factor from its own points with that
    runtime (the backprop factor when there are none)."""
    bp = [o for o in obs if o.peak_memory_bytes and not o.work.forward_gradient and not o.oom]
    if len({o.work.activation_bytes for o in bp}) < 2:
        return None
    act = np.array([o.work.activation_bytes for o in bp])
    logits = np.array([o.work.logits_bytes for o in bp])
    extra = np.array([o.peak_memory_bytes - o.work.static_bytes for o in bp])
    cols = [np.ones_like(act), act, logits]
    if len({round(float(l / a), 6) for l, a in zip(logits, act)}) < 2:
        cols = cols[:2]
    coef = np.linalg.lstsq(np.column_stack(cols), extra, rcond=None)[0]
    runtime, factor, lf = max(float(coef[0]), 0.0), float(coef[1]), float(coef[2]) if len(coef) > 2 else 0.0
    fg = [o for o in obs if o.peak_memory_bytes and o.work.forward_gradient and not o.oom]
    fg_factor = (float(np.mean([(o.peak_memory_bytes - o.work.static_bytes - runtime) / o.work.activation_bytes
                                for o in fg])) if fg else factor)
    return factor, max(lf, 0.0), fg_factor, runtime


def activation_scale_bounds(obs: Sequence[Observation], mp: MemoryParams) -> list[tuple[float, bool]]:
    """Each point's largest activation_scale that would still fit its device's memory, and whether it ran
    out: a point that ran bounds the scale from above, an OOM one from below."""
    from simfl.hardware.model import batch_memory_bytes

    return [((o.sheet.memory_bytes - o.work.static_bytes - mp.runtime_bytes) / batch_memory_bytes(o.work, mp), o.oom)
            for o in obs if o.oom or o.step_time_s is not None]


def fit_activation_scale(bounds: Sequence[tuple[float, bool]], default: float) -> tuple[float, int]:
    """The activation_scale that agrees with the most points (ran: scale <= bound; OOM: scale > bound), the
    middle of the widest such interval; with no OOM points, `default` lowered to the smallest bound of a
    point that ran. Returns (scale, points it contradicts)."""
    ran = [b for b, oom in bounds if not oom]
    ooms = [b for b, oom in bounds if oom]
    if not ooms:
        s = min([default] + [b for b in ran if b > 0])
        return s, sum(b < s for b in ran)
    edges = sorted({b for b in ran + ooms if b > 0})
    candidates = [(0.0, edges[0])] + list(zip(edges, edges[1:])) + [(edges[-1], 2 * edges[-1])]
    best = None
    for lo, hi in candidates:
        s = (lo + hi) / 2
        wrong = sum(b < s for b in ran) + sum(b >= s for b in ooms)
        key = (wrong, -(hi - lo) / max(hi, 1e-12))
        if best is None or key < best[0]:
            best = (key, s, wrong)
    return best[1], best[2]
