"""The synchronous K-of-N round policy: select, run the jobs, close at the K-th upload or the deadline,
aggregate, record."""

from __future__ import annotations

import simpy

from simfl.sim.job import COMPLETED, DROPPED, LATE, OFFLINE, SURPLUS, client_job
from simfl.sim.policy import JobPolicy, aggregation_s
from simfl.sim.round_record import record_round


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


class SyncRounds(JobPolicy):
    """Today's rounds: `rounds` of them, one after another, each K of `clients_selected`."""

    def run(self, first: int = 0):
        """The main SimPy process: rounds `first` on (the array kernel may have run those before)."""
        eng = self.engine
        for index in range(first, eng.inputs.rounds):
            ran = yield from self._round(index)
            if not ran:
                eng.records.notes.append(
                    f"the run stopped after {index} of {eng.inputs.rounds} rounds: at t = {eng.env.now:g} s no "
                    "client is available and none ever will be again (see the availability models)")
                return
            if eng.on_round is not None:
                eng.on_round(index)

    def _round(self, index: int):
        """One round; returns False when it could not start (no client will ever be available)."""
        eng = self.engine
        env, inputs = eng.env, eng.inputs
        ready_s = env.now
        if eng.availability is None:
            chosen = self.select(inputs.population_size, inputs.clients_selected)
        else:
            ids = yield from self._available()
            if ids is None:
                return False
            chosen = self.select(ids, inputs.clients_selected)
        yield from self.play(index, chosen, inputs.clients_per_round, inputs.deadline_s, ready_s)
        return True

    def play(self, index: int, chosen, k: int, deadline_s: float | None, ready_s: float):
        """Round `index` of the members `chosen` (online now), closing at the K-th upload (of at most
        len(chosen)) or at `deadline_s` after it starts; recorded as ready since `ready_s`. Returns the jobs
        aggregated. (simfl.flower plays a Flower strategy's rounds through it, its nodes chosen by the strategy.)"""
        eng = self.engine
        env, inputs = eng.env, eng.inputs
        until = None if eng.availability is None else eng.availability.until(chosen, env.now)
        start_s = env.now
        rnd = Round(env, min(k, len(chosen)), len(chosen))
        specs = self._clients(chosen)
        p = self._dropout_probs[inputs.population.group[chosen]] if self._dropout else None
        # (coin, failure fraction) for every selected client, drawn whatever p is (see streams.py)
        draws = self.streams.dropout.random((len(chosen), 2)) if p is not None else None
        works = []
        for i, spec in enumerate(specs):
            w = self.work(spec, index)
            w.proc = env.process(client_job(env, eng.transfers, w, eng.routes[spec.group], rnd))
            if draws is not None and draws[i, 0] < p[i]:
                fail_after_s = float(draws[i, 1]) * self._nominal_work_s(w)
                env.timeout(fail_after_s).callbacks.append(lambda _ev, w=w: self._stop(w, DROPPED))
            if until is not None and until[i] != float("inf"):
                env.timeout(float(until[i]) - start_s).callbacks.append(lambda _ev, w=w: self._stop(w, OFFLINE))
            works.append(w)
        if deadline_s is not None:
            env.timeout(deadline_s).callbacks.append(rnd.deadline)
        yield rnd.closed
        for w in works:
            if w.proc.is_alive and not w.status:
                w.proc.interrupt(rnd.cut)
        # the uploads that closed the round (a status, once COMPLETED, stays: a later one is cut)
        aggregated = [w for w in works if w.status == COMPLETED]
        agg_s = aggregation_s(inputs, aggregated)
        # Always yield, even for 0 s: the interrupts above are urgent events and must be
        # handled (clients record where they stopped) before this round is written down.
        yield env.timeout(agg_s)
        for w in aggregated:
            w.into, w.staleness = index + 1, 0.0  # version index + 1, trained from the current one
        self.published(aggregated, env.now)
        record_round(eng, index, start_s, env.now, agg_s, works, aggregated, start_s - ready_s)
        return aggregated
