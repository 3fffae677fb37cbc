"""Epistemic draws: one step-time multiplier per uncertain input and replicate, the same for every run that uses it.

A predicted step time (the hardware model's, for a configuration or device nobody measured) carries the stated
error of its kind of prediction: an 80 % interval, prediction x exp(±h), h the 80th percentile of the absolute log
errors of its validation's held-out points (docs/hardware-model.md). Taken as a lognormal multiplier X with median
1 whose central 80 % interval is that one, its log-sd is sigma = h / 1.2816 (the 90th percentile of a standard
normal), so the draws fall inside the stated interval as often as it says.

Replicate r of a run draws, for each uncertain input (a device and the configuration it trains, whatever the
batch), X = exp(sigma x z) with z a standard normal from SeedSequence([base seed, r, crc32(input)]): the same
z for that input in replicate r of every run of the same base seed, so the points of a plan are compared under
the same draw of each device's error (common random numbers), and an input's draw does not depend on which others
a point has. Seed-to-seed variation comes from the run's own streams, as before.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from simfl.stats import Z80

Z95 = 1.6448536269514722  # the 95th percentile of a standard normal: a range read as p5..p95 spans 2 x Z95 sds


def log_sd_of(interval_half_width: float) -> float:
    """The log-sd of a lognormal multiplier whose central 80 % interval is exp(±interval_half_width)."""
    return interval_half_width / Z80


@dataclass(frozen=True)
class Draws:
    """The epistemic draws of one replicate of runs from one base seed."""

    seed: int
    replicate: int

    def z(self, key: str) -> float:
        """The standard normal this replicate draws for input `key`."""
        return float(np.random.default_rng([self.seed, self.replicate, zlib.crc32(key.encode())]).standard_normal())

    def multiplier(self, key: str, log_sd: float) -> float:
        return math.exp(log_sd * self.z(key))
