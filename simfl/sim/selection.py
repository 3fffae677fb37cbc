"""Which clients work in a round: a policy object, not a line inside the round loop."""

from __future__ import annotations

import numpy as np


class UniformSelection:
    """Each round, `count` distinct clients chosen uniformly from the whole population."""

    def select(self, rng: np.random.Generator, population: int, count: int) -> np.ndarray:
        return rng.choice(population, size=count, replace=False)
