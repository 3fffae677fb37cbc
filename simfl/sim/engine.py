"""The engine: a SimPy clock, the links and the records, with a round policy running client jobs on them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import simpy

from simfl.sim.flows import FlowNetwork
from simfl.sim.inputs import SimInputs
from simfl.sim.job import Transfers
from simfl.sim.records import RunRecords
from simfl.sim.sync_rounds import SyncRounds


class Engine:
    """Owns the clock, the flow network, each client's route and the records of one run."""

    def __init__(self, inputs: SimInputs, rng: np.random.Generator,
                 on_round: Callable[[int], None] | None = None):
        self.inputs = inputs
        self.rng = rng
        self.on_round = on_round
        self.env = simpy.Environment()
        capacity: dict[tuple[str, str], float] = {
            ("server", "down"): inputs.server.link.uplink_bps,  # server sends what clients download
            ("server", "up"): inputs.server.link.downlink_bps,
        }
        for name, (down_bps, up_bps) in inputs.cells.items():
            capacity[("cell-down", name)] = down_bps
            capacity[("cell-up", name)] = up_bps
        self.net = FlowNetwork(self.env, capacity)
        self.transfers = Transfers(self.env, self.net, _contention_free(inputs, capacity), inputs.bits_per_transfer)
        # Per client, fixed for the run: transfer latency and the shared resources of each direction.
        server_latency_s = inputs.server.link.latency_s
        self.routes = [
            (c.link.latency_s + server_latency_s,
             (("server", "down"), ("cell-down", c.cell)) if c.cell else (("server", "down"),),
             (("server", "up"), ("cell-up", c.cell)) if c.cell else (("server", "up"),))
            for c in inputs.clients
        ]
        self.records = RunRecords()
        self.policy = SyncRounds(self, rng)

    @property
    def contention_free(self) -> bool:
        return self.transfers.contention_free

    @contention_free.setter
    def contention_free(self, value: bool) -> None:  # tests force the flow path to compare both
        self.transfers.contention_free = value

    def run(self) -> RunRecords:
        self.env.process(self.policy.run())
        self.env.run()
        return self.records


def _contention_free(inputs: SimInputs, capacity: dict) -> bool:
    """True when no shared resource can ever be oversubscribed, so every flow runs at its own cap.

    At most `clients_selected` clients transfer at once (rounds do not overlap and
    stopped clients abort their transfers), each with one flow. If for every shared
    resource the largest `clients_selected` caps among its users fit its capacity,
    max-min fairness gives every flow its own cap throughout: a transfer is then
    exactly latency + bits / cap, one timeout, with no flow bookkeeping.
    """
    users: dict[tuple[str, str], list[float]] = {r: [] for r in capacity}
    for c in inputs.clients:
        users[("server", "down")].append(c.link.downlink_bps)
        users[("server", "up")].append(c.link.uplink_bps)
        if c.cell is not None:
            users[("cell-down", c.cell)].append(c.link.downlink_bps)
            users[("cell-up", c.cell)].append(c.link.uplink_bps)
    n = inputs.clients_selected
    return all(sum(sorted(caps, reverse=True)[:n]) <= capacity[r] for r, caps in users.items())


def run(inputs: SimInputs, rng: np.random.Generator,
        on_round: Callable[[int], None] | None = None) -> RunRecords:
    """Simulate every round of `inputs`; the only randomness is `rng` (selection, dropouts)."""
    return Engine(inputs, rng, on_round).run()
