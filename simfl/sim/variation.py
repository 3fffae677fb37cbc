"""Sampled variation of devices and links: step-time multipliers, link-rate multipliers, measured link mixes.

Every sampler draws from a generator it is given (the speed or the links stream, see streams.py)
and draws the same count of numbers whatever its parameters, so that changing a sigma changes the
values drawn and nothing else: the next draw of the stream is where it would have been.

- `Spread(sigma)`: a multiplier with median 1, exp(sigma * z) with z standard normal
  (lognormal, log-sd sigma). sigma 0 is the fixed multiplier 1.
- `LinkMix`: (downlink bps, uplink bps, one-way latency s) drawn from a mixture of
  three-dimensional lognormals, one per operator, picked by weight: the form the ERRANT
  fits ship in (network_models/*-errant.yaml). With one component it is a plain
  correlated lognormal.

A link draw is one uniform (the operator) and three standard normals per client; a
multiplier link draw uses the first normal of the same draw, so switching a group between
lognormal and empirical links keeps the other clients' draws in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

@dataclass(frozen=True)
class Spread:
    """A lognormal multiplier with median 1 and log-sd `sigma` (0: always 1)."""

    sigma: float = 0.0

    def __post_init__(self) -> None:
        assert self.sigma >= 0 and np.isfinite(self.sigma)

    def apply(self, z: np.ndarray) -> np.ndarray:
        """Multipliers from standard normals `z` (one per client)."""
        return np.exp(self.sigma * z)


@dataclass(frozen=True)
class Component:
    """One operator's fitted distribution: weight, and log-space mean and covariance of
    (log downlink bps, log uplink bps, log one-way latency s)."""

    weight: float
    log_mean: tuple[float, float, float]
    log_cov: tuple[tuple[float, float, float], ...]


@dataclass(frozen=True)
class LinkMix:
    components: tuple[Component, ...]

    def __post_init__(self) -> None:
        assert self.components, "a link mix needs a component"
        w = np.array([c.weight for c in self.components], dtype=float)
        assert np.all(w > 0)
        object.__setattr__(self, "_cum", np.cumsum(w / w.sum()))
        object.__setattr__(self, "_mean", np.array([c.log_mean for c in self.components], dtype=float))
        # Cholesky factors turn independent normals into each operator's correlated log values.
        object.__setattr__(self, "_chol", np.array([np.linalg.cholesky(np.array(c.log_cov, dtype=float))
                                                    for c in self.components]))

    def apply(self, u: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(downlink_bps, uplink_bps, latency_s) from uniforms `u` (n,) and standard normals `z` (n, 3)."""
        k = np.minimum(np.searchsorted(self._cum, u, side="right"), len(self.components) - 1)
        logs = self._mean[k] + np.einsum("nij,nj->ni", self._chol[k], z)
        values = np.exp(logs)
        return values[:, 0], values[:, 1], values[:, 2]


@dataclass(frozen=True, eq=False)
class LinkSamples:
    """Measured (downlink bps, uplink bps, one-way latency s) rows, one drawn uniformly per client."""

    rows: np.ndarray  # (n, 3)

    def apply(self, u: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        i = np.minimum((u * len(self.rows)).astype(np.int64), len(self.rows) - 1)
        r = self.rows[i]
        return r[:, 0].copy(), r[:, 1].copy(), r[:, 2].copy()


def draw_links(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The numbers of n link draws: uniforms u (n,) and standard normals z (n, 3). How many are
    drawn depends on n only, never on a distribution's parameters."""
    return rng.random(n), rng.standard_normal((n, 3))
