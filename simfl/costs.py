"""Pure cost functions: time, energy, carbon and money, SI units in and out."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

J_PER_KWH = 3.6e6


def transfer_time_s(bits: float, rate_bps: float, latency_s: float = 0.0) -> float:
    """Time to move `bits` over an uncontended link: latency, then bits at the link rate."""
    if rate_bps <= 0:
        raise ValueError(f"rate_bps must be positive, got {rate_bps}")
    return latency_s + bits / rate_bps


def energy_j(power_w: float, duration_s: float) -> float:
    return power_w * duration_s


def network_energy_j(bits_down: float, bits_up: float, per_bit_down_j: float, per_bit_up_j: float) -> float:
    """Per-bit model (Jalali et al. 2014): bits times the summed per-bit energy of the path."""
    return bits_down * per_bit_down_j + bits_up * per_bit_up_j


def kwh(energy_joules: float) -> float:
    return energy_joules / J_PER_KWH


def co2_kg(energy_kwh: float, carbon_g_per_kwh: float) -> float:
    return energy_kwh * carbon_g_per_kwh / 1000.0


def energy_cost(energy_kwh: float, price_per_kwh: float) -> float:
    return energy_kwh * price_per_kwh


BYTES_PER_GB = 1e9


def hardware_cost(count: int, per_hour: float, duration_s: float) -> float:
    """Holding `count` devices for the job: count x price per hour x hours."""
    return count * per_hour * duration_s / 3600.0


def data_cost(bits: float, per_gb: float) -> float:
    """Bits moved, priced per GB (10^9 bytes)."""
    return bits / 8 / BYTES_PER_GB * per_gb


def granularity(t_comp_s: float, t_comm_s: float) -> float:
    """G = T_comp / T_comm (the seed paper, after HPC usage); inf when nothing is communicated."""
    return t_comp_s / t_comm_s if t_comm_s > 0 else float("inf")


def interpolate(xs: Sequence[float], ys: Sequence[float], x: float) -> tuple[float, bool]:
    """Piecewise-linear y(x) through sorted points; outside them, the nearest segment's line.

    Returns (y, extrapolated). One point gives a constant (and extrapolated unless x
    equals it), since one measurement says nothing about the slope.
    """
    if len(xs) != len(ys) or not xs:
        raise ValueError("interpolate needs matching, non-empty xs and ys")
    used = interpolation_points(xs, x)
    if len(used) == 1:
        return float(ys[used[0]]), x != xs[used[0]]
    lo, hi = used
    x0, x1, y0, y1 = xs[lo], xs[hi], ys[lo], ys[hi]
    return float(y0 + (y1 - y0) * (x - x0) / (x1 - x0)), x < xs[0] or x > xs[-1]


def interpolation_points(xs: Sequence[float], x: float) -> tuple[int, ...]:
    """The indices of the points `interpolate` reads for x: the exact one (or the only one), else the two
    ends of the segment around x, or of the nearest segment outside the points."""
    i = bisect.bisect_left(xs, x)
    if len(xs) == 1 or (i < len(xs) and xs[i] == x):
        return (min(i, len(xs) - 1),)
    lo = min(max(i - 1, 0), len(xs) - 2)
    return (lo, lo + 1)
