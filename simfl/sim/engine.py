"""The engine: a SimPy clock, the links and the records, with a round policy running client jobs on them."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import simpy

from simfl.sim.arrays import ArrayRounds, unsupported
from simfl.sim.async_heap import AsyncHeap
from simfl.sim.async_heap import unsupported as async_unsupported
from simfl.sim.async_rounds import AsyncRounds
from simfl.sim.availability import AlwaysSpec, PopulationAvailability
from simfl.sim.flows import FlowNetwork
from simfl.sim.inputs import AsyncSpec, SimInputs, SyncSpec
from simfl.sim.job import Transfers
from simfl.sim.records import CHUNK_ROWS, Chunk, ClientLog, RunRecords
from simfl.sim.streams import Streams
from simfl.sim.sync_rounds import SyncRounds


# The round policy of each kind of round-policy spec (inputs.SimInputs.round_policy)
ROUND_POLICIES = {SyncSpec: SyncRounds, AsyncSpec: AsyncRounds}
# Which engine runs the rounds: "auto" (where it is exact, the array kernel for synchronous rounds,
# arrays.unsupported, or the event heap for buffered asynchronous aggregation, async_heap.unsupported; SimPy
# elsewhere), "simpy" (always SimPy: tests and benchmarks compare them), "arrays" (the kernel or the heap, or an
# error saying why it cannot). The SIMFL_KERNEL environment variable sets the default.
KERNELS = ("auto", "simpy", "arrays")


class KernelError(ValueError):
    """The kernel asked for ($SIMFL_KERNEL or kernel=) is not one of KERNELS, or cannot run these inputs."""


def kernel_error(kernel: object) -> str | None:
    """Why `kernel` is not a kernel's name (None: it is one)."""
    if kernel in KERNELS:
        return None
    return f"{kernel!r} is not a kernel: use one of {', '.join(KERNELS)}"


class Engine:
    """Owns the clock, the flow network, each client's route and the records of one run."""

    def __init__(self, inputs: SimInputs, streams: Streams | int,
                 on_round: Callable[[int], None] | None = None, client_sink: Callable[[Chunk], None] | None = None,
                 chunk_rows: int = CHUNK_ROWS, kernel: str | None = None):
        kernel = kernel or os.environ.get("SIMFL_KERNEL") or "auto"
        if kernel_error(kernel):
            raise KernelError(kernel_error(kernel))
        self.kernel = kernel
        self.ran_on = ""  # "arrays", "heap", "simpy" or "arrays, then simpy", once run
        self.array_kernel: ArrayRounds | None = None  # the array kernel, when it ran
        self.inputs = inputs
        self.streams = streams if isinstance(streams, Streams) else Streams.from_seed(streams)
        self.on_round = on_round
        self.env = simpy.Environment()
        links = _shared_links(inputs)
        capacity = {r: cap_bps for r, (cap_bps, _, _) in links.items()}
        # Without cells, each direction's server link is the only resource its flows cross.
        alone = [] if any(g.cell for g in inputs.groups) else [("server", "down"), ("server", "up")]
        self.net = FlowNetwork(self.env, capacity, alone)
        self.transfers = Transfers(self.env, self.net, _contention_free(inputs, links), inputs.framing_factor)
        # Per group, fixed for the run: the server link's latency (added to the client's own), the shared
        # resources of each direction, and the function that starts a flow over them.
        server_latency_s = self.server_latency_s = inputs.server.link.latency_s + inputs.per_transfer_s
        self.routes = []
        for g in inputs.groups:
            down = (("server", "down"), ("cell-down", g.cell)) if g.cell else (("server", "down"),)
            up = (("server", "up"), ("cell-up", g.cell)) if g.cell else (("server", "up"),)
            self.routes.append((server_latency_s, down, up, self.net.starter(down), self.net.starter(up)))
        self.records = RunRecords(clients=ClientLog(client_sink, chunk_rows))
        self.availability = _availability(inputs, self.streams)
        self.policy = ROUND_POLICIES[type(inputs.round_policy)](self, self.streams, inputs.selection)

    @property
    def contention_free(self) -> bool:
        return self.transfers.contention_free

    @contention_free.setter
    def contention_free(self, value: bool) -> None:  # tests force the flow path to compare both
        self.transfers.contention_free = value

    def run(self) -> RunRecords:
        first = 0
        if self.kernel != "simpy" and self.inputs.asynchronous is not None:
            why = async_unsupported(self)
            if why is None:  # buffered aggregation on a heap of plain events (async_heap.py)
                with np.errstate(over="ignore", invalid="ignore"):  # inf as Python floats give it: check_finite says
                    AsyncHeap(self).run()
                self.records.clients.flush()
                self.ran_on = "heap"
                return self.records
            if self.kernel == "arrays":
                raise KernelError(f"the array kernel cannot run these inputs: {why}; use auto or simpy")
        elif self.kernel != "simpy":
            why = unsupported(self)
            if why is None:
                kernel = self.array_kernel = ArrayRounds(self)
                with np.errstate(over="ignore", invalid="ignore"):  # an overflow is inf, as SimPy's floats make it,
                    first = kernel.run()                           # and the summary names it in one line
                if first == self.inputs.rounds:
                    self.records.clients.flush()
                    self.ran_on = "arrays"
                    return self.records
                # a round the kernel cannot reproduce (a phase too short to move the clock): SimPy goes on from
                # its start, with the streams as they were then
                why = kernel.stopped_because
                if kernel.now > self.env.now:
                    self.env.run(until=kernel.now)
                self.policy.resume(kernel.stack_bits)
            if self.kernel == "arrays":
                raise KernelError(f"the array kernel cannot run these inputs: {why}; use auto or simpy")
        self.ran_on = "simpy" if first == 0 else "arrays, then simpy"
        self.env.process(self.policy.run(first) if first else self.policy.run())
        self.env.run()
        self.records.clients.flush()
        return self.records


def _availability(inputs: SimInputs, streams: Streams) -> PopulationAvailability | None:
    """The groups' availability models, or None when every member is always online (no draws at all).
    Each group's model draws from its own generator spawned from the availability stream in fleet order."""
    if all(isinstance(g.availability, AlwaysSpec) for g in inputs.groups):
        return None
    counts = np.bincount(inputs.population.group, minlength=len(inputs.groups))
    assert np.all(np.diff(inputs.population.group) >= 0), "availability needs members ordered by group"
    rngs = streams.availability.spawn(len(inputs.groups))
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).tolist()
    models = [g.availability.model(int(n), rng) for g, n, rng in zip(inputs.groups, counts, rngs)]
    return PopulationAvailability(models, offsets)


def _shared_links(inputs: SimInputs) -> dict[tuple[str, str], tuple[float, str, str | None]]:
    """Every shared resource: (capacity, the direction of the flows that cross it, its cell or None)."""
    links = {("server", "down"): (inputs.server.link.uplink_bps, "down", None),  # the server sends downloads
             ("server", "up"): (inputs.server.link.downlink_bps, "up", None)}
    for name, (down_bps, up_bps) in inputs.cells.items():
        links[("cell-down", name)] = (down_bps, "down", name)
        links[("cell-up", name)] = (up_bps, "up", name)
    return links


def _contention_free(inputs: SimInputs, links: dict) -> bool:
    """True when no shared resource can ever be oversubscribed, so every flow runs at its own cap.

    At most `clients_selected` clients transfer at once (rounds do not overlap and
    stopped clients abort their transfers; asynchronous jobs number `concurrency`), each with one flow. If for every shared
    resource the largest `clients_selected` caps among its users fit its capacity,
    max-min fairness gives every flow its own cap throughout: a transfer is then
    exactly latency + bits / cap, one timeout, with no flow bookkeeping.
    """
    if any(g.link_round is not None for g in inputs.groups):
        return False  # rates drawn each round have no bound to check against
    group = inputs.population.group
    n = inputs.clients_selected
    for cap_bps, direction, cell in links.values():
        if cell is None:  # the server link: every member uses it
            caps = inputs.caps_bps(direction)
        else:
            in_cell = np.array([g.cell == cell for g in inputs.groups])
            caps = inputs.caps_bps(direction, np.flatnonzero(in_cell[group]))
        if len(caps) > n:
            caps = np.partition(caps, len(caps) - n)[len(caps) - n:]
        # the n largest caps among the resource's users, summed largest first
        if sum(sorted(caps.tolist(), reverse=True)) > cap_bps:
            return False
    return True


def run(inputs: SimInputs, streams: Streams | int, on_round: Callable[[int], None] | None = None,
        client_sink: Callable[[Chunk], None] | None = None, kernel: str | None = None) -> RunRecords:
    """Simulate every round of `inputs`. All randomness comes from `streams` (or a seed's streams).
    Client-round rows go to `client_sink` in chunks as the run goes, if given (see records.ClientLog).
    `kernel` (KERNELS; default: $SIMFL_KERNEL, else "auto") picks the array kernel or SimPy."""
    return Engine(inputs, streams, on_round, client_sink, kernel=kernel).run()
