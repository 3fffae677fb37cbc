"""The synchronous K-of-N round policy: select, run the jobs, close at the K-th upload or the deadline,
aggregate, record."""

from __future__ import annotations

import simpy

from simfl.costs import granularity, transfer_time_s
from simfl.sim.accounting import client_round_energy_j, server_round_energy_j
from simfl.sim.inputs import ClientSpec
from simfl.sim.job import COMPLETED, DROPPED, LATE, STATUSES, SURPLUS, Work, client_job
from simfl.sim.records import NAN, RoundRecord
from simfl.sim.selection import UniformSelection
from simfl.sim.streams import Streams


class Round:
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


class SyncRounds:
    """Today's rounds: `rounds` of them, one after another, each K of `clients_selected`."""

    def __init__(self, engine, streams: Streams, selection=None):
        self.engine = engine
        self.streams = streams
        self.selection = selection or UniformSelection()

    def run(self):
        """The main SimPy process."""
        eng = self.engine
        for index in range(eng.inputs.rounds):
            yield from self._round(index)
            if eng.on_round is not None:
                eng.on_round(index)

    def _nominal_work_s(self, spec: ClientSpec) -> float:
        """The client's round work alone on its path: where a dropout's failure point is drawn.

        Each transfer runs at the slowest of its own link, its cell and the server link
        (every shared resource on its route at full capacity, as if no other client used it).
        """
        eng = self.engine
        bits = eng.inputs.bits_per_transfer
        latency_s, down_res, up_res = eng.routes[spec.group]
        cap = eng.net.capacity_bps
        down_bps = min(spec.link.downlink_bps, *(cap[r] for r in down_res))
        up_bps = min(spec.link.uplink_bps, *(cap[r] for r in up_res))
        return (transfer_time_s(bits, down_bps, latency_s) + spec.compute_s
                + transfer_time_s(bits, up_bps, latency_s))

    @staticmethod
    def _fail(w: Work, _ev: simpy.Event) -> None:
        if w.proc is not None and w.proc.is_alive and not w.status:
            w.proc.interrupt(DROPPED)

    def _round(self, index: int):
        eng = self.engine
        env, inputs = eng.env, eng.inputs
        start_s = env.now
        chosen = self.selection.select(self.streams.selection, inputs.population_size, inputs.clients_selected)
        rnd = Round(env, inputs.clients_per_round, inputs.clients_selected)
        p = inputs.dropout_prob
        # (coin, failure fraction) for every selected client, drawn whatever p is (see streams.py)
        draws = self.streams.dropout.random((len(chosen), 2)) if p > 0 else None
        works = []
        for i, cid in enumerate(chosen):
            w = Work(inputs.client(int(cid)))
            w.proc = env.process(client_job(env, eng.transfers, w, eng.routes[w.spec.group], rnd))
            if draws is not None and draws[i, 0] < p:
                fail_after_s = float(draws[i, 1]) * self._nominal_work_s(w.spec)
                env.timeout(fail_after_s).callbacks.append(lambda ev, w=w: self._fail(w, ev))
            works.append(w)
        if inputs.deadline_s is not None:
            env.timeout(inputs.deadline_s).callbacks.append(rnd.deadline)
        yield rnd.closed
        for w in works:
            if w.proc.is_alive and not w.status:
                w.proc.interrupt(rnd.cut)
        aggregation_s = rnd.uploads * inputs.trainable_params / inputs.server.aggregation_params_per_s
        # Always yield, even for 0 s: the interrupts above are urgent events and must be
        # handled (clients record where they stopped) before this round is written down.
        yield env.timeout(aggregation_s)
        self._record(index, start_s, env.now, aggregation_s, works)

    def _record(self, index: int, start_s: float, end_s: float, aggregation_s: float, works: list[Work]) -> None:
        records = self.engine.records
        totals = dict(bits_down=0.0, bits_up=0.0, net=0.0, compute=0.0, idle=0.0)
        counts = dict.fromkeys(STATUSES, 0)
        t_comp_s = 0.0  # the longest compute among the clients whose updates are aggregated
        for w in works:
            spec = w.spec
            e_compute, e_idle, e_net = client_round_energy_j(spec, w.compute_s, w.end_s - start_s,
                                                             w.bits_down, w.bits_up)
            records.clients.append((  # the fields of ClientRound, in order
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
        e_server = server_round_energy_j(self.engine.inputs.server, duration_s, aggregation_s)
        records.rounds.append(RoundRecord(
            index, start_s, end_s, len(works), counts[COMPLETED], counts[DROPPED], counts[LATE], counts[SURPLUS],
            aggregation_s, t_comp_s, t_comm_s, g,
            totals["bits_down"], totals["bits_up"], totals["net"], totals["compute"], totals["idle"], e_server,
        ))
