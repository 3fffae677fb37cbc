"""One random stream per concern, all spawned from SeedSequence(seed): common random numbers for sweeps.

The order of CONCERNS is part of the output contract: stream i is SeedSequence(seed).spawn(n)[i].
Each concern draws only from its own stream, so changing one concern's parameters (the dropout
probability, a speed or link spread, any accounting value) leaves every other concern's draws,
and so which clients are selected in each round, exactly as they were.

What each stream draws, in order:
- partition: the Dirichlet split of samples over the population (local_epochs), once, at build;
- selection: each round, the selected clients (Generator.choice without replacement);
- dropout: each round with dropout_prob > 0, two uniforms per selected client in selection
  order, (coin, failure fraction), drawn whether or not the coin fails the client;
- speed, links, availability: reserved for per-client speed and link draws and availability
  models, so that adding them later changes no existing draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONCERNS = ("partition", "selection", "dropout", "speed", "links", "availability")


@dataclass(frozen=True)
class Streams:
    partition: np.random.Generator
    selection: np.random.Generator
    dropout: np.random.Generator
    speed: np.random.Generator
    links: np.random.Generator
    availability: np.random.Generator

    @classmethod
    def from_seed(cls, seed: int) -> "Streams":
        children = np.random.SeedSequence(seed).spawn(len(CONCERNS))
        return cls(*(np.random.default_rng(c) for c in children))
