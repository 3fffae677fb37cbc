"""Dirichlet split of training samples over a client population, seeded."""

from __future__ import annotations

import numpy as np


def dirichlet_counts(total: int, clients: int, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """Sample counts per client: proportions ~ Dir(alpha, ..., alpha), counts ~ Multinomial(total, p).

    The counts sum to `total` exactly. A client that would get no sample gets one
    from the client holding the most (repeatedly), so every client can train;
    this needs total >= clients. Smaller alpha, more uneven counts.
    """
    if clients <= 0 or total < clients:
        raise ValueError(f"cannot split {total} samples over {clients} clients with at least one each")
    if alpha <= 0:
        raise ValueError(f"dirichlet alpha must be positive, got {alpha}")
    p = rng.dirichlet(np.full(clients, float(alpha)))
    counts = rng.multinomial(total, p)
    for i in np.flatnonzero(counts == 0):
        donor = int(np.argmax(counts))
        counts[donor] -= 1
        counts[i] += 1
    return counts


def split_examples(counts: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Indices of real examples per client: a seeded shuffle of range(sum(counts)) cut into the counts."""
    order = rng.permutation(int(np.sum(counts)))
    return np.split(order, np.cumsum(counts)[:-1])
