"""Which clients work: a selection policy object that both round policies ask, chosen in the scenario.

A policy has one method, `select(rng, candidates, count, expected_s)`: `count` distinct members of
`candidates` (an int n for every member 0..n-1, without building that array; or an array of ids: those
online, or the idle ones online), drawn from the selection stream only. `expected_s(ids)` is what the server can know of each candidate before it starts: its nominal
round time alone on its path (inputs.SimInputs.expected_round_s); a policy that does not use it never
calls it, so uniform selection costs nothing more.

- UniformSelection: uniformly, without replacement (today's rule: one Generator.choice per call).
- SpeedSelection (in the spirit of Oort, Lai et al., OSDI 2021, with every client's statistical utility
  equal, which is all a cost simulator knows): a share `explore` of the picks, explore x count rounded down or
  up at random (up with probability its fraction), uniformly among all candidates; the rest drawn without replacement with weight 1 for a candidate
  expected to finish within `target_s`, and (target_s / expected_s) ** alpha for one expected to take
  longer (Oort's system-utility penalty). alpha 0 is uniform; a large alpha all but excludes the slow.
  Draws, in order: one uniform (the rounding), the explored positions (one choice), then the exploited ones
  (one weighted choice among the rest); the chosen are the explored followed by the exploited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ExpectedS = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, slots=True)
class UniformSelection:
    """`count` distinct candidates, uniformly."""

    def select(self, rng: np.random.Generator, candidates: int | np.ndarray, count: int,
               expected_s: ExpectedS | None = None) -> np.ndarray:
        every = isinstance(candidates, (int, np.integer))
        n = int(candidates) if every else len(candidates)
        if not n:
            return np.empty(0, dtype=np.int64)  # no draw: nobody to choose from
        if count == 1:  # the same number choice(n, 1, replace=False) gives, without its overhead
            pos = np.array([rng.integers(n)])
        else:
            pos = rng.choice(n, size=min(count, n), replace=False)
        return pos if every else candidates[pos]


@dataclass(frozen=True, slots=True)
class SpeedSelection:
    """Prefer candidates expected to finish within target_s; explore a share uniformly (module docstring)."""

    target_s: float
    explore: float = 0.1
    alpha: float = 2.0

    def __post_init__(self) -> None:
        assert self.target_s > 0 and 0.0 <= self.explore <= 1.0 and self.alpha >= 0.0

    def weights(self, expected_s: np.ndarray) -> np.ndarray:
        """Each candidate's exploitation weight: 1 within target_s, (target_s / expected_s) ** alpha beyond."""
        ratio = np.minimum(1.0, self.target_s / np.asarray(expected_s, dtype=float))
        # bounded below so that a weighted draw never meets an all-zero p (alpha <= 10, times < 1e15 s)
        return np.maximum(ratio ** self.alpha, 1e-300)

    def select(self, rng: np.random.Generator, candidates: int | np.ndarray, count: int,
               expected_s: ExpectedS | None = None) -> np.ndarray:
        if isinstance(candidates, (int, np.integer)):
            candidates = np.arange(int(candidates))  # every member: this policy weighs each one
        n = len(candidates)
        if not n:
            return np.empty(0, dtype=np.int64)
        count = min(count, n)
        # explore x count picks, the fraction rounded at random (one uniform), so that one pick at a time (an
        # asynchronous job) still explores with probability `explore`
        whole, frac = divmod(self.explore * count, 1.0)
        n_explore = int(whole) + int(rng.random() < frac)
        explored = rng.choice(n, size=n_explore, replace=False) if n_explore else np.empty(0, dtype=np.int64)
        rest = np.setdiff1d(np.arange(n), explored, assume_unique=True) if n_explore else np.arange(n)
        n_exploit = count - n_explore
        if n_exploit:
            w = self.weights(expected_s(candidates[rest]))
            exploited = rest[rng.choice(len(rest), size=n_exploit, replace=False, p=w / w.sum())]
        else:
            exploited = rest[:0]
        return candidates[np.concatenate([explored, exploited]).astype(np.int64)]
