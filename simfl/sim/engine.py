"""The round loop: select, download, compute, upload, aggregate; one SimPy process per client-round."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import simpy

from simfl.costs import energy_j, granularity, network_energy_j, transfer_time_s
from simfl.sim.flows import Flow, FlowNetwork
from simfl.sim.inputs import ClientSpec, SimInputs
from simfl.sim.records import NAN, ClientRound, RoundRecord, RunRecords

# A client-round ends in one of these. `late`: still working at the deadline. `surplus`: still
# working, or its upload landing in the same instant, when the round already had K uploads
# (over-selection). Only `completed` uploads are aggregated.
COMPLETED, DROPPED, LATE, SURPLUS = "completed", "dropped", "late", "surplus"
STATUSES = (COMPLETED, DROPPED, LATE, SURPLUS)


class _Work:
    """Mutable state of one client in one round; frozen into a ClientRound at the end."""

    __slots__ = ("spec", "proc", "flow", "phase", "t", "status", "end_s", "compute_s", "bits_down", "bits_up")

    def __init__(self, spec: ClientSpec):
        self.spec = spec
        self.proc: simpy.Process | None = None
        self.flow: Flow | None = None
        self.phase = "download"
        self.t = [NAN] * 6  # download start/end, compute start/end, upload start/end
        self.status = ""
        self.end_s = NAN
        self.compute_s = 0.0
        self.bits_down = 0.0
        self.bits_up = 0.0


class _Round:
    """Closes (fires `closed`) at the K-th upload, when every client has stopped, or at the deadline.

    `cut` is the status of clients still working when it closes: surplus after the K-th
    upload, late at the deadline.
    """

    def __init__(self, env: simpy.Environment, k: int, selected: int):
        self.closed = env.event()
        self.k = k
        self.selected = selected
        self.uploads = 0
        self.stopped = 0
        self.cut = SURPLUS

    def client_stopped(self, uploaded: bool) -> None:
        self.uploads += uploaded
        self.stopped += 1
        if not self.closed.triggered and (self.uploads >= self.k or self.stopped >= self.selected):
            self.closed.succeed()

    def deadline(self, _ev: simpy.Event) -> None:
        if not self.closed.triggered:
            self.cut = LATE
            self.closed.succeed()


class Engine:
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
        self.contention_free = _contention_free(inputs, capacity)
        # Per client, fixed for the run: transfer latency and the shared resources of each direction.
        server_latency_s = inputs.server.link.latency_s
        self._routes = [
            (c.link.latency_s + server_latency_s,
             (("server", "down"), ("cell-down", c.cell)) if c.cell else (("server", "down"),),
             (("server", "up"), ("cell-up", c.cell)) if c.cell else (("server", "up"),))
            for c in inputs.clients
        ]
        self.records = RunRecords()

    # -- one client's work in one round ----------------------------------

    def _client(self, w: _Work, rnd: _Round):
        spec, env = w.spec, self.env
        bits = self.inputs.bits_per_transfer
        latency_s, down_res, up_res = self._routes[spec.client_id]
        t = w.t
        try:
            t[0] = env.now
            w.bits_down = yield from self._transfer(w, bits, spec.link.downlink_bps, down_res, latency_s)
            t[1] = t[2] = env.now
            w.phase = "compute"
            yield env.timeout(spec.compute_s)
            w.compute_s = spec.compute_s
            t[3] = t[4] = env.now
            w.phase = "upload"
            w.bits_up = yield from self._transfer(w, bits, spec.link.uplink_bps, up_res, latency_s)
            t[5] = env.now
            # An upload that lands once the round has closed (a simultaneous K+1-th) is not aggregated.
            w.status = rnd.cut if rnd.closed.triggered else COMPLETED
        except simpy.Interrupt as stop:
            w.status = stop.cause
            now = env.now
            if w.phase == "download":
                t[1] = now
                w.bits_down = self._moved(w, spec.link.downlink_bps, latency_s, now - t[0])
            elif w.phase == "compute":
                t[3] = now
                w.compute_s = now - t[2]
            else:
                t[5] = now
                w.bits_up = self._moved(w, spec.link.uplink_bps, latency_s, now - t[4])
            w.flow = None
        w.end_s = env.now
        rnd.client_stopped(w.status == COMPLETED)

    def _transfer(self, w: _Work, bits: float, cap_bps: float, resources: tuple, latency_s: float):
        """Latency, then the bits as a flow; returns the bits moved."""
        env = self.env
        if self.contention_free:  # one exact timeout: no flow can ever be throttled (see _contention_free)
            return (yield env.timeout(latency_s + bits / cap_bps, bits))
        yield env.timeout(latency_s)
        w.flow = self.net.start(bits, cap_bps, resources)
        moved = yield w.flow.done
        w.flow = None
        return moved

    def _moved(self, w: _Work, cap_bps: float, latency_s: float, elapsed_s: float) -> float:
        """Bits a stopped transfer had moved: from its flow, or at its cap after the latency (fast path)."""
        if w.flow is not None:
            return self.net.abort(w.flow)
        if self.contention_free:
            return min(self.inputs.bits_per_transfer, max(0.0, elapsed_s - latency_s) * cap_bps)
        return 0.0  # stopped during the latency wait

    def _nominal_work_s(self, spec: ClientSpec) -> float:
        """The client's round work alone on its path: where a dropout's failure point is drawn.

        Each transfer runs at the slowest of its own link, its cell and the server link
        (every shared resource on its route at full capacity, as if no other client used it).
        """
        bits = self.inputs.bits_per_transfer
        latency_s, down_res, up_res = self._routes[spec.client_id]
        cap = self.net.capacity_bps
        down_bps = min(spec.link.downlink_bps, *(cap[r] for r in down_res))
        up_bps = min(spec.link.uplink_bps, *(cap[r] for r in up_res))
        return (transfer_time_s(bits, down_bps, latency_s) + spec.compute_s
                + transfer_time_s(bits, up_bps, latency_s))

    @staticmethod
    def _fail(w: _Work, _ev: simpy.Event) -> None:
        if w.proc is not None and w.proc.is_alive and not w.status:
            w.proc.interrupt(DROPPED)

    # -- the round --------------------------------------------------------

    def _round(self, index: int):
        env, inputs, rng = self.env, self.inputs, self.rng
        start_s = env.now
        chosen = rng.choice(len(inputs.clients), size=inputs.clients_selected, replace=False)
        rnd = _Round(env, inputs.clients_per_round, inputs.clients_selected)
        works = []
        for cid in chosen:
            w = _Work(inputs.clients[int(cid)])
            w.proc = env.process(self._client(w, rnd))
            if inputs.dropout_prob > 0 and rng.random() < inputs.dropout_prob:
                fail_after_s = rng.random() * self._nominal_work_s(w.spec)
                env.timeout(fail_after_s).callbacks.append(lambda ev, w=w: self._fail(w, ev))
            works.append(w)
        if inputs.deadline_s is not None:
            env.timeout(inputs.deadline_s).callbacks.append(rnd.deadline)
        yield rnd.closed
        for w in works:
            if w.proc.is_alive and not w.status:
                w.proc.interrupt(rnd.cut)
        server = inputs.server
        aggregation_s = rnd.uploads * inputs.trainable_params / server.aggregation_params_per_s
        # Always yield, even for 0 s: the interrupts above are urgent events and must be
        # handled (clients record where they stopped) before this round is written down.
        yield env.timeout(aggregation_s)
        self._record(index, start_s, env.now, aggregation_s, works)

    def _record(self, index: int, start_s: float, end_s: float, aggregation_s: float, works: list[_Work]) -> None:
        server = self.inputs.server
        totals = dict(bits_down=0.0, bits_up=0.0, net=0.0, compute=0.0, idle=0.0)
        counts = dict.fromkeys(STATUSES, 0)
        t_comp_s = 0.0  # the longest compute among the clients whose updates are aggregated
        for w in works:
            spec = w.spec
            e_compute = energy_j(spec.compute_power_w, w.compute_s)
            e_idle = energy_j(spec.idle_power_w, (w.end_s - start_s) - w.compute_s)
            e_net = network_energy_j(w.bits_down, w.bits_up, spec.link.energy_per_bit_down_j,
                                     spec.link.energy_per_bit_up_j)
            self.records.clients.append(ClientRound(
                index, spec.client_id, spec.device, spec.link.name, w.status, *w.t, w.end_s,
                w.compute_s, w.bits_down, w.bits_up, e_compute, e_idle, e_net,
            ))
            counts[w.status] += 1
            if w.status == COMPLETED:
                t_comp_s = max(t_comp_s, w.compute_s)
            totals["bits_down"] += w.bits_down
            totals["bits_up"] += w.bits_up
            totals["net"] += e_net
            totals["compute"] += e_compute
            totals["idle"] += e_idle
        duration_s = end_s - start_s
        t_comm_s = duration_s - t_comp_s
        # G is undefined for a round that aggregated nothing: no fine-tuning time was used.
        g = granularity(t_comp_s, t_comm_s) if counts[COMPLETED] else NAN
        e_server = energy_j(server.aggregation_power_w, aggregation_s) + energy_j(
            server.idle_power_w, duration_s - aggregation_s
        )
        self.records.rounds.append(RoundRecord(
            index, start_s, end_s, len(works), counts[COMPLETED], counts[DROPPED], counts[LATE], counts[SURPLUS],
            aggregation_s, t_comp_s, t_comm_s, g,
            totals["bits_down"], totals["bits_up"], totals["net"], totals["compute"], totals["idle"], e_server,
        ))

    def _main(self):
        for index in range(self.inputs.rounds):
            yield from self._round(index)
            if self.on_round is not None:
                self.on_round(index)

    def run(self) -> RunRecords:
        self.env.process(self._main())
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
