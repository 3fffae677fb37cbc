"""What drives the spread of a run's figures: each uncertain input swung alone, and the seeds alone.

Each input replicates draw (simfl/uncertainty.py: a predicted step time's error) is set to its 5th and then its
95th percentile, exp(-+1.645 sigma), every other at its median, with the base seed: the figure's low and high.
The seeds are run alone (replicates without draws): their 5th and 95th percentiles. The share of the variance
each accounts for is, for an input, ((high - low) / (2 x 1.645))^2 (its swing as the spread of a normal, the
figure taken as linear in it), for the seeds their sample variance; the shares of a figure add up to 1. It is a
one-at-a-time account: interactions between inputs are not in it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simfl.api import simulate, simulate_replicates
from simfl.build import build
from simfl.config.scenario import Scenario
from simfl.uncertainty import Z95

SEEDS = "seeds (the run's own randomness)"


@dataclass(frozen=True)
class Fixed:
    """Draws set by hand: input key -> z (standard normal units); every other input at its median."""

    z: dict

    def multiplier(self, key: str, log_sd: float) -> float:
        return math.exp(log_sd * self.z.get(key, 0.0))


def _discard(_chunk) -> None:
    return None


def drivers(scenario: Scenario, figures: tuple[str, ...], seeds: int) -> list[dict]:
    """Per figure, each uncertain input and the seeds: {figure, input, low, nominal, high, swing, variance_share},
    the largest swing first."""
    built = build(scenario)
    nominal = simulate(scenario, client_sink=_discard).summary
    rows = []
    for key, sd, what in built.uncertain:
        low = simulate(scenario, client_sink=_discard, draws=Fixed({key: -Z95})).summary
        high = simulate(scenario, client_sink=_discard, draws=Fixed({key: Z95})).summary
        for f in figures:
            lo, hi = low.figure(f), high.figure(f)
            rows.append({"figure": f, "input": what, "low": lo, "nominal": nominal.figure(f), "high": hi,
                         "swing": abs(hi - lo), "variance": ((hi - lo) / (2 * Z95)) ** 2})
    if seeds > 1:
        _, summaries = simulate_replicates(scenario, seeds, client_sink=_discard, epistemic=False)
        for f in figures:
            values = np.array([s.figure(f) for s in summaries], dtype=float)
            lo, hi = np.quantile(values, [0.05, 0.95])
            rows.append({"figure": f, "input": SEEDS, "low": float(lo), "nominal": nominal.figure(f),
                         "high": float(hi), "swing": float(hi - lo), "variance": float(values.var(ddof=1))})
    out = []
    for f in figures:
        these = [r for r in rows if r["figure"] == f]
        total = sum(r["variance"] for r in these)
        for r in sorted(these, key=lambda r: -r["swing"]):
            share = r.pop("variance") / total if total > 0 else 0.0
            out.append({**r, "variance_share": share})
    return out
