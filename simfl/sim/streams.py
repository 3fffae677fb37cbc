"""One random stream per concern, all spawned from SeedSequence(seed): common random numbers for sweeps.

The order of CONCERNS is part of the output contract: stream i is SeedSequence(seed).spawn(n)[i].
Each concern draws only from its own stream, so changing one concern's parameters (the dropout
probability, a speed or link spread, any accounting value) leaves every other concern's draws,
and so which clients are selected in each round, exactly as they were.

What each stream draws, in order:
- partition: the Dirichlet split of samples over the population (local_epochs), once, at build;
- selection: each round, the selected clients (uniform: Generator.choice without replacement, or one
  integer when one client is chosen; speed: a choice of the explored positions, then a weighted choice of
  the exploited ones, selection.py). Asynchronous modes: at t = 0 the first `concurrency` clients the same
  way among the idle ones, then per job started the same draws among the idle clients (online ones, with
  availability models), in the idle pool's order (async_rounds.IdlePool). Changing the selection policy
  changes only this stream's draws;
- dropout: each round in which some group's dropout_prob > 0, two uniforms per selected client
  in selection order, (coin, failure fraction), drawn whether or not the coin fails the client
  (asynchronous modes: per job started);
- speed: at build, for each group (in fleet order) whose speed varies per client, one standard
  normal per member; then each round, if any group's speed varies per round, one standard normal
  per selected client in selection order;
- links: the same pattern, with one uniform and three standard normals per member or selected
  client (variation.draw_links), whichever law the group's link follows;
- availability: one generator per fleet group, spawned in fleet order when any group has an
  availability model; each model draws only from its own (availability.py).

How many numbers a concern draws never depends on a distribution's parameters, only on counts
(members, selected clients), so changing a sigma moves no later draw of the same stream.
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
