"""Resolved engine inputs: the population as arrays over a few groups, plain frozen objects, nothing to look up."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from simfl.sim.availability import AlwaysSpec
from simfl.sim.carbon import CarbonCurve
from simfl.sim.selection import SpeedSelection, UniformSelection
from simfl.sim.variation import LinkMix, Spread


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """A network attachment: its rates, latency and per-bit energy of the path behind it."""

    name: str
    downlink_bps: float
    uplink_bps: float
    latency_s: float
    energy_per_bit_down_j: float = 0.0
    energy_per_bit_up_j: float = 0.0

    def __post_init__(self) -> None:
        assert self.downlink_bps > 0 and self.uplink_bps > 0, "link rates must be positive"
        assert self.latency_s >= 0, "latency must not be negative"


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """What the members of one fleet group share: device, link, step cost, power, cell, the adapter they
    train (its parameters, and the bits of one upload of it); and how its members vary from round to round
    (per-member draws for the whole run are in Population)."""

    device: str
    link: LinkSpec
    step_time_s: float
    compute_power_w: float
    idle_power_w: float
    cell: str | None = None
    # the group's own update: what the server aggregates per upload (aggregation work) and what crosses the
    # link each way (a round policy may download another size: JobPolicy.download_bits)
    trainable_params: int = field(kw_only=True)
    bits_per_transfer: int = field(kw_only=True)
    speed_round: Spread | None = None  # a step-time multiplier drawn anew each client-round
    link_round: Spread | LinkMix | None = None  # a rate multiplier, or (rates, latency), each client-round
    dropout_prob: float | None = None  # None: the run's dropout_prob
    availability: object = AlwaysSpec()  # an availability spec (see availability.py)

    def __post_init__(self) -> None:
        assert self.trainable_params > 0 and self.bits_per_transfer > 0, "a group trains and sends an update"


@dataclass(frozen=True, slots=True)
class ClientSpec:
    """One member as the engine sees it while it works in a round (built only for selected clients)."""

    client_id: int
    device: str
    link: LinkSpec
    steps: int
    step_time_s: float
    compute_power_w: float
    idle_power_w: float
    cell: str | None = None
    group: int = 0

    @property
    def compute_s(self) -> float:
        return self.steps * self.step_time_s


@dataclass(frozen=True)
class Population:
    """One row per member, as arrays: no Python object per member (10 million members fit in 80 MB).

    `speed` (a step-time multiplier), `downlink_bps` / `uplink_bps` and `latency_s` (one-way, of the
    member's own link) are per member when given; None means every member has its group's value
    (no array is spent on it).
    """

    group: np.ndarray  # int32: index into SimInputs.groups
    steps: np.ndarray  # int32: local steps per round
    speed: np.ndarray | None = None  # float64 step-time multiplier
    downlink_bps: np.ndarray | None = None  # float64, per member
    uplink_bps: np.ndarray | None = None
    latency_s: np.ndarray | None = None

    def __post_init__(self) -> None:
        assert self.group.shape == self.steps.shape and self.group.ndim == 1, "one row per member"
        for name in ("speed", "downlink_bps", "uplink_bps"):
            a = getattr(self, name)
            assert a is None or (a.shape == self.group.shape and bool(np.all(a > 0))), f"{name}: positive, per member"
        assert self.latency_s is None or (self.latency_s.shape == self.group.shape
                                          and bool(np.all(self.latency_s >= 0))), "latency_s: >= 0, per member"

    def __len__(self) -> int:
        return len(self.group)


@dataclass(frozen=True, slots=True)
class ServerSpec:
    device: str
    link: LinkSpec
    idle_power_w: float
    aggregation_power_w: float
    aggregation_params_per_s: float


@dataclass(frozen=True, slots=True)
class SyncSpec:
    """Synchronous rounds (sync_rounds.py): each selects clients_selected clients and closes at the K-th upload,
    or at `deadline_s` after it starts when that comes first."""

    deadline_s: float | None = None

    def __post_init__(self) -> None:
        assert self.deadline_s is None or self.deadline_s > 0


@dataclass(frozen=True, slots=True)
class AsyncSpec:
    """Asynchronous aggregation (async_rounds.py): `concurrency` jobs in flight; aggregate the oldest
    `buffer_size` updates (buffered mode), or, with buffer_size None, every buffered update when a window of
    `window_s` ends or once `min_updates` have arrived (window mode); discard updates older than max_staleness."""

    concurrency: int
    buffer_size: int | None = None
    max_staleness: int | None = None
    window_s: float | None = None
    min_updates: int | None = None

    def __post_init__(self) -> None:
        assert self.concurrency > 0
        assert (self.buffer_size is not None) != (self.window_s is not None or self.min_updates is not None), \
            "buffered (buffer_size) or windowed (window_s, min_updates), one of them"


@dataclass(frozen=True)
class SimInputs:
    """Everything one run needs. Cells map a name to (downlink_bps, uplink_bps) capacity."""

    groups: tuple[GroupSpec, ...]
    population: Population
    server: ServerSpec
    clients_per_round: int
    clients_selected: int
    rounds: int
    dropout_prob: float = 0.0
    cells: dict[str, tuple[float, float]] = field(default_factory=dict)
    carbon: CarbonCurve | None = None  # grid intensity over the run; None: CO2 is not priced (NaN)
    carbon_shifts_s: tuple[float, ...] = ()  # other start times to price the same schedule at (start hours)
    # Transport overheads (a scenario's `transport:`): bytes on the wire per payload byte, and a fixed time
    # every transfer adds (serialization, the framework's hand-off). 1 and 0: bits / rate, as before.
    framing_factor: float = 1.0
    per_transfer_s: float = 0.0
    # The round policy, chosen by its type (engine.ROUND_POLICIES): synchronous rounds, or asynchronous
    # aggregation, whose `rounds` are aggregations and whose clients_selected is its concurrency (the most
    # jobs transferring at once)
    round_policy: SyncSpec | AsyncSpec = SyncSpec()
    # FLoRA stacking (model.rank_aggregation: stack): after an aggregation, a download carries the stack of the
    # adapters it aggregated (the sum of their ranks: the sum of their uploads' bits), not the group's own adapter
    stacked_download: bool = False
    # Who works: asked by either round policy (selection.py)
    selection: UniformSelection | SpeedSelection = UniformSelection()

    def __post_init__(self) -> None:
        assert self.framing_factor >= 1.0 and self.per_transfer_s >= 0.0
        assert 0 < self.clients_selected <= len(self.population)
        assert 0 < self.clients_per_round <= self.clients_selected or self.asynchronous is not None
        assert self.asynchronous is None or self.asynchronous.concurrency == self.clients_selected
        assert 0.0 <= self.dropout_prob <= 1.0
        assert len(self.population) == 0 or 0 <= int(self.population.group.min()) <= int(
            self.population.group.max()) < len(self.groups), "every member belongs to a group"
        for g in self.groups:
            assert g.cell is None or g.cell in self.cells, f"group of {g.device} names unknown cell {g.cell}"

    @property
    def population_size(self) -> int:
        return len(self.population)

    @property
    def asynchronous(self) -> AsyncSpec | None:
        """The asynchronous round policy, or None for synchronous rounds."""
        return self.round_policy if isinstance(self.round_policy, AsyncSpec) else None

    @property
    def deadline_s(self) -> float | None:
        """A synchronous round's deadline (None: none, and always None for asynchronous aggregation)."""
        return self.round_policy.deadline_s if isinstance(self.round_policy, SyncSpec) else None

    def expected_round_s(self, ids: np.ndarray) -> np.ndarray:
        """What the server can know of members `ids` before a round: each one's round alone on its path, with
        its own speed and link but no per-round draw and no other client: download and upload of its group's
        update (framed) at the slowest of its link, its cell's and the server's (the server sends downloads on its
        uplink and receives uploads on its downlink), each after both latencies and the per-transfer time, plus its
        steps at its step time. The speed-aware selection weighs clients by it."""
        ids = np.asarray(ids, dtype=np.int64)
        pop, group = self.population, self.population.group[ids]
        step_s = np.array([g.step_time_s for g in self.groups])[group]
        if pop.speed is not None:
            step_s = step_s * pop.speed[ids]
        bits = np.array([g.bits_per_transfer for g in self.groups], dtype=float)[group] * self.framing_factor
        down_bps, up_bps, latency_s = self.links_of(ids)
        srv = self.server.link
        inf = float("inf")
        cell_down = np.array([self.cells[g.cell][0] if g.cell else inf for g in self.groups])[group]
        cell_up = np.array([self.cells[g.cell][1] if g.cell else inf for g in self.groups])[group]
        latency_s = latency_s + srv.latency_s + self.per_transfer_s
        return (2 * latency_s + bits / np.minimum(np.minimum(down_bps, cell_down), srv.uplink_bps)
                + pop.steps[ids] * step_s + bits / np.minimum(np.minimum(up_bps, cell_up), srv.downlink_bps))

    # Run-level views of the groups' updates, for what describes a run (summary, console, emulation): the
    # largest group's, which is every group's when they agree. The engine itself reads each group's own.
    @property
    def trainable_params(self) -> int:
        return max(g.trainable_params for g in self.groups)

    @property
    def bits_per_transfer(self) -> int:
        return max(g.bits_per_transfer for g in self.groups)

    def client(self, i: int, speed: float = 1.0, link: tuple[float, float, float] | None = None) -> ClientSpec:
        """Member i as a working client: its group's values, with its own speed and link if it has them,
        times this round's `speed` multiplier; `link` (downlink bps, uplink bps, latency s) replaces
        its link's rates and latency for this round."""
        pop = self.population
        gi = int(pop.group[i])
        g = self.groups[gi]
        spec_link = g.link
        if link is not None:
            spec_link = replace(spec_link, downlink_bps=link[0], uplink_bps=link[1], latency_s=link[2])
        elif pop.downlink_bps is not None or pop.uplink_bps is not None or pop.latency_s is not None:
            spec_link = replace(
                spec_link,
                downlink_bps=float(pop.downlink_bps[i]) if pop.downlink_bps is not None else spec_link.downlink_bps,
                uplink_bps=float(pop.uplink_bps[i]) if pop.uplink_bps is not None else spec_link.uplink_bps,
                latency_s=float(pop.latency_s[i]) if pop.latency_s is not None else spec_link.latency_s)
        step_s = g.step_time_s if pop.speed is None else g.step_time_s * float(pop.speed[i])
        if speed != 1.0:
            step_s *= speed
        return ClientSpec(i, g.device, spec_link, int(pop.steps[i]), step_s, g.compute_power_w, g.idle_power_w,
                          g.cell, gi)

    def links_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(downlink bps, uplink bps, latency s) of members `ids`, their own or their group's: new arrays."""
        pop, group = self.population, self.population.group[ids]

        def pick(per_member, attr):
            if per_member is not None:
                return per_member[ids].astype(float)
            return np.array([getattr(g.link, attr) for g in self.groups], dtype=float)[group]
        return (pick(pop.downlink_bps, "downlink_bps"), pick(pop.uplink_bps, "uplink_bps"),
                pick(pop.latency_s, "latency_s"))

    def caps_bps(self, direction: str, members: np.ndarray | None = None) -> np.ndarray:
        """Each member's own link rate in one direction ("down" or "up"), as an array."""
        down = direction == "down"
        per_member = self.population.downlink_bps if down else self.population.uplink_bps
        if per_member is None:  # the group's rate, member by member
            per_member = np.array([g.link.downlink_bps if down else g.link.uplink_bps for g in self.groups])[
                self.population.group]
        return per_member if members is None else per_member[members]

    @classmethod
    def from_clients(cls, clients, server: ServerSpec, trainable_params: int, bits_per_transfer: int,
                     clients_per_round: int, clients_selected: int, rounds: int, **kw) -> "SimInputs":
        """Inputs from one ClientSpec per member, in order (tests and benchmarks build them by hand):
        members that share device, link, step time, power and cell share a group; every group trains
        `trainable_params` and sends `bits_per_transfer`."""
        keys: dict[tuple, int] = {}
        groups: list[GroupSpec] = []
        index = np.empty(len(clients), dtype=np.int32)
        steps = np.empty(len(clients), dtype=np.int32)
        for i, c in enumerate(clients):
            assert c.client_id == i, "client ids are their positions in `clients`"
            key = (c.device, c.link, c.step_time_s, c.compute_power_w, c.idle_power_w, c.cell)
            if key not in keys:
                keys[key] = len(groups)
                groups.append(GroupSpec(*key, trainable_params=trainable_params,
                                        bits_per_transfer=bits_per_transfer))
            index[i], steps[i] = keys[key], c.steps
        return cls(tuple(groups), Population(index, steps), server, clients_per_round, clients_selected, rounds,
                   **kw)
