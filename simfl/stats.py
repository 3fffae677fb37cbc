"""Means and Student-t confidence intervals of replicated figures (no SciPy needed).

The t quantile comes from the t distribution's CDF, written with the regularized incomplete
beta function (continued fraction, Numerical Recipes 6.4), inverted by bisection: exact to
1e-10, checked in tests against the tabulated 12.706 (1 df), 4.303 (2), 2.262 (9), 2.042 (30).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betai(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    x = df / (df + t * t)
    tail = 0.5 * _betai(df / 2.0, 0.5, x)
    return 1.0 - tail if t > 0 else tail


@lru_cache(maxsize=1024)
def t_quantile(p: float, df: float) -> float:
    """The p quantile of Student's t with df degrees of freedom (0.5 < p < 1). Kept once worked out: a bisection
    over the continued fraction costs about 2 ms, and a plan point with replicates asks it for every figure
    (27 times, the same df), which was a quarter of a small point's time."""
    assert 0.5 < p < 1.0 and df > 0
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def mean_ci(values: Sequence[float], level: float = 0.95) -> dict:
    """mean, sd (n - 1), and the Student-t interval of the mean; sd and bounds are None for one value.
    Values that are None or not finite are left out (n says how many were used)."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(xs)
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "ci95_low": None, "ci95_high": None}
    mean = sum(xs) / n
    if n == 1:
        return {"n": 1, "mean": mean, "sd": None, "ci95_low": None, "ci95_high": None}
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "ci95_low": mean - half, "ci95_high": mean + half}


# The stated error of a predicted figure (docs/hardware-model.md): an 80 % interval, the 80th percentile of the
# absolute log errors of its kind of prediction on held-out points, prediction x exp(±h). A lognormal error with
# that central 80 % interval has log-sd h / Z80.
INTERVAL_LEVEL = 0.8
Z80 = 1.2815515655446004  # the 90th percentile of a standard normal: a central 80 % interval is ±Z80 sd


def quantile(xs: Sequence[float], q: float) -> float:
    """The q-quantile of xs, linear between order statistics (numpy's default)."""
    s = sorted(xs)
    if not s:
        raise ValueError("quantile of nothing")
    pos = q * (len(s) - 1)
    lo = int(pos)
    return s[lo] + (s[min(lo + 1, len(s) - 1)] - s[lo]) * (pos - lo)


def abs_log_error(relative_error: float) -> float:
    """|ln(predicted / measured)| of a prediction off by `relative_error` (0.1: 10 % too high)."""
    return abs(math.log1p(relative_error))


def interval_half_width(abs_log_errors: Sequence[float], level: float = INTERVAL_LEVEL) -> float:
    """h of the stated interval prediction x exp(±h): the `level` quantile of the absolute log errors."""
    return quantile(abs_log_errors, level)


def loo_inside(abs_log_errors: Sequence[float], level: float = INTERVAL_LEVEL) -> int:
    """How many points fall inside the interval stated from all the others (leave one out, so no point checks
    an interval it helped set); about `level` of them if the interval is calibrated. Needs two points or more."""
    xs = list(abs_log_errors)
    return sum(x <= quantile(xs[:i] + xs[i + 1:], level) for i, x in enumerate(xs))


def interval_text(half_width: float) -> str:
    """The interval prediction x exp(±h) as the relative errors it allows, e.g. '-23 % to +30 %'."""
    return f"-{100 * -math.expm1(-half_width):.0f} % to +{100 * math.expm1(half_width):.0f} %"
