"""Statistics of replicated runs: per figure, the mean and its 95 % Student-t interval, and percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from simfl.stats import mean_ci
from simfl.summary.figures import FIGURES, FigureStats, ReplicateStats, Summary


def figure_stats(values: Sequence[float | None]) -> FigureStats:
    """One figure over the replicates; values that are None (a G of a run with no update) are left out."""
    ci = mean_ci(values)
    used = [v for v in values if v is not None and math.isfinite(float(v))]
    p05, p95 = (float(np.quantile(used, q)) if used else None for q in (0.05, 0.95))
    return FigureStats(ci["n"], ci["mean"], ci["sd"], ci["ci95_low"], ci["ci95_high"], p05, p95)


def replicate_stats(summaries: Sequence[Summary]) -> ReplicateStats:
    """FIGURES over the summaries of replicates (seeds seed..seed+N-1, in order)."""
    return ReplicateStats(len(summaries), tuple(s.seed for s in summaries),
                          tuple((name, figure_stats([s.figure(name) for s in summaries])) for name in FIGURES))
