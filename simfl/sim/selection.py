"""Which clients work in a round: a policy object, not a line inside the round loop."""

from __future__ import annotations

import numpy as np


class UniformSelection:
    """Each round, `count` distinct clients chosen uniformly from the whole population, or from those online."""

    def select(self, rng: np.random.Generator, population: int, count: int) -> np.ndarray:
        return rng.choice(population, size=count, replace=False)

    def select_from(self, rng: np.random.Generator, ids: np.ndarray, count: int) -> np.ndarray:
        """min(count, len(ids)) distinct members of `ids` (those online), uniformly."""
        return ids[rng.choice(len(ids), size=min(count, len(ids)), replace=False)]
