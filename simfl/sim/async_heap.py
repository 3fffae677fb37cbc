"""Buffered asynchronous aggregation (FedBuff) on a heap of plain events: async_rounds' rules without SimPy.

Where no shared link can bind, every transfer is one timeout (latency + bits / cap), so a job is
four timed steps: start, download end, compute end, upload end. This module runs them, and the
aggregations, the dropout timers and the stops, on one heap of (time, priority, sequence) entries
made exactly when SimPy would make its events, with SimPy's `now + delay` sums: SimPy orders events
by (time, priority, creation order) and so does the heap, so the same events run in the same order
and write the same records (tests/test_async_heap.py compares them). A SimPy process's first step
is an urgent event at its creation instant, and so is an interrupt; a timeout is a normal one. Events
nothing waits on (a process's end, the run's `done`) are not made: they change nothing, and the order
of the others stays the same.

It runs when the round policy is buffered (buffer_size), transfers are contention-free, every member
is always online, links are not drawn per job and downloads are not FLoRA stacks (arrays.unsupported
and `unsupported` below); the engine runs async_rounds on SimPy otherwise. The rules, the draws from
each stream and the records are async_rounds.AsyncRounds', step for step; its JobPolicy (selection,
speed draws, dropout probabilities, nominal work) is reused.
"""

from __future__ import annotations

import heapq

from simfl.sim.async_rounds import FRUITLESS_JOBS, IdlePool
from simfl.sim.availability import AlwaysSpec
from simfl.sim.inputs import AsyncSpec
from simfl.sim.job import COMPLETED, DROPPED, STALE, SURPLUS, Work
from simfl.sim.policy import aggregation_s
from simfl.sim.round_record import record_round

URGENT, NORMAL = 0, 1  # SimPy's priorities: a process's first step and an interrupt go before timeouts


def unsupported(engine) -> str | None:
    """Why this module cannot run `engine`'s inputs (None: it can)."""
    inputs = engine.inputs
    spec = inputs.round_policy
    if not isinstance(spec, AsyncSpec) or spec.buffer_size is None:
        return "not buffered asynchronous aggregation"
    if not engine.contention_free:
        return "a shared link may bind: transfers are flows"
    if engine.availability is not None or not all(isinstance(g.availability, AlwaysSpec) for g in inputs.groups):
        return "availability models"
    if any(g.link_round is not None for g in inputs.groups):
        return "links drawn per job"
    if inputs.stacked_download:
        return "FLoRA stacked downloads"
    return None


class AsyncHeap:
    """async_rounds.AsyncRounds in buffered mode, on a heap (see the module docstring)."""

    def __init__(self, engine):
        self.engine = engine
        self.inputs = engine.inputs
        self.policy = engine.policy  # the engine's AsyncRounds: its selection and per-group draws
        self.spec = engine.inputs.asynchronous
        self.idle = IdlePool(engine.inputs.population_size)
        self.framing = engine.inputs.framing_factor
        self.server_latency_s = engine.server_latency_s
        self.now = 0  # SimPy's clock starts at the int 0
        self.queue: list[tuple] = []
        self.seq = 0
        self.version = 0
        self.agg_end_s: float | None = None
        self.buffer: list[Work] = []
        self.settled: list[Work] = []
        self.working: dict[Work, None] = {}
        self.fruitless = 0
        self.done = False
        self.since_s = 0.0
        # members' specs, made once each when nothing varies per job (JobPolicy._clients makes the same)
        nothing_drawn = self.policy._speed_sigma is None and not self.policy._link_groups
        self.fixed_specs: dict[int, object] | None = {} if nothing_drawn else None

    # -- the heap ----------------------------------------------------------------------------------------

    def _at(self, delay: float, priority: int, fn, *args) -> int:
        """An event `delay` from now (SimPy's now + delay), after every event made before it at that instant."""
        self.seq += 1
        heapq.heappush(self.queue, (self.now + delay, priority, self.seq, fn, args))
        return self.seq

    def run(self) -> None:
        self._start(self.spec.concurrency)
        queue = self.queue
        while queue:
            self.now, _, _, fn, args = heapq.heappop(queue)
            fn(*args)

    # -- a job: client_job's steps ----------------------------------------------------------------------

    def _job_begin(self, w: Work) -> None:
        spec = w.spec
        w.phase = "download"
        w.download_start_s = self.now
        latency_s = spec.link.latency_s + self.server_latency_s
        bits = float(w.download_payload_bits) * self.framing
        w.flow = self._at(latency_s + bits / spec.link.downlink_bps, NORMAL, self._job_downloaded, w, bits)

    def _job_downloaded(self, w: Work, bits: float) -> None:
        if w.end_s == w.end_s:
            return  # stopped meanwhile: the timer no longer resumes it
        w.bits_down = bits / self.framing
        w.download_end_s = w.compute_start_s = self.now
        w.phase = "compute"
        w.flow = self._at(w.spec.compute_s, NORMAL, self._job_computed, w)

    def _job_computed(self, w: Work) -> None:
        if w.end_s == w.end_s:
            return
        spec = w.spec
        w.compute_s = spec.compute_s
        w.compute_end_s = w.upload_start_s = self.now
        w.phase = "upload"
        bits = float(w.upload_payload_bits) * self.framing
        latency_s = spec.link.latency_s + self.server_latency_s
        w.flow = self._at(latency_s + bits / spec.link.uplink_bps, NORMAL, self._job_uploaded, w, bits)

    def _job_uploaded(self, w: Work, bits: float) -> None:
        if w.end_s == w.end_s:
            return
        w.bits_up = bits / self.framing
        w.upload_end_s = self.now
        w.status = SURPLUS if self.done else COMPLETED
        self._job_end(w)

    def _job_interrupted(self, w: Work, cause: str) -> None:
        if w.end_s == w.end_s:
            return  # it had ended already (SimPy ignores an interrupt of a dead process)
        assert w.flow is not None, "an interrupt before the job's first step"
        w.status = cause
        now, spec, framing = self.now, w.spec, self.framing
        latency_s = spec.link.latency_s + self.server_latency_s
        if w.phase == "download":
            w.download_end_s = now
            wire = float(w.download_payload_bits) * framing
            w.bits_down = min(wire, max(0.0, (now - w.download_start_s) - latency_s) * spec.link.downlink_bps) / framing
        elif w.phase == "compute":
            w.compute_end_s = now
            w.compute_s = now - w.compute_start_s
        else:
            w.upload_end_s = now
            wire = float(w.upload_payload_bits) * framing
            w.bits_up = min(wire, max(0.0, (now - w.upload_start_s) - latency_s) * spec.link.uplink_bps) / framing
        w.flow = None
        self._job_end(w)

    def _job_end(self, w: Work) -> None:
        w.flow = None
        w.end_s = self.now
        self._ended(w, w.status == COMPLETED)

    def _stop(self, w: Work, cause: str) -> None:
        """JobPolicy._stop: interrupt a job still working (an urgent event, as SimPy's interrupt)."""
        if w.end_s != w.end_s and not w.status:
            self._at(0, URGENT, self._job_interrupted, w, cause)

    # -- AsyncRounds' rules ------------------------------------------------------------------------------

    def versions_now(self) -> int:
        ending = self.agg_end_s is not None and self.agg_end_s <= self.now
        return self.version + ending

    def _start(self, count: int) -> None:
        policy, inputs = self.policy, self.inputs
        chosen = policy.select(self.idle.candidates(None), count)
        self.idle.remove(chosen)
        if not len(chosen):
            return
        p = policy._dropout_probs[inputs.population.group[chosen]] if policy._dropout else None
        draws = policy.streams.dropout.random((len(chosen), 2)) if p is not None else None
        version = self.versions_now()
        if self.fixed_specs is not None:  # nothing drawn per job: a member's spec is the same every time
            specs = []
            for cid in chosen.tolist():
                spec = self.fixed_specs.get(cid)
                if spec is None:
                    spec = self.fixed_specs[cid] = inputs.client(cid)
                specs.append(spec)
        else:
            specs = policy._clients(chosen)
        for i, spec in enumerate(specs):
            w = policy.work(spec, version)
            self.working[w] = None
            w.flow = None  # no step taken yet
            self._at(0, URGENT, self._job_begin, w)
            if draws is not None and draws[i, 0] < p[i]:
                fail_after_s = float(draws[i, 1]) * self._nominal_work_s(w)
                self._at(fail_after_s, NORMAL, self._stop, w, DROPPED)

    def _nominal_work_s(self, w: Work) -> float:
        return self.policy._nominal_work_s(w)

    def _ended(self, w: Work, uploaded: bool) -> None:
        self.working.pop(w, None)
        self.idle.put(w.spec.client_id)
        if uploaded:
            w.staleness = float(self.versions_now() - w.version)
        if self.done or self.versions_now() >= self.inputs.rounds:
            if w.status == COMPLETED:
                w.status = SURPLUS
            self.settled.append(w)
            return
        if uploaded:
            if self.spec.max_staleness is not None and w.staleness > self.spec.max_staleness:
                w.status = STALE
                self.settled.append(w)
            else:
                self.buffer.append(w)
        else:
            self.settled.append(w)
        self.fruitless = 0 if w in self.buffer[-1:] else self.fruitless + 1
        if self.fruitless >= FRUITLESS_JOBS * self.spec.concurrency:
            self._stop_run(f"the run stopped after {self.version} of {self.inputs.rounds} aggregations: "
                           f"{self.fruitless} jobs in a row ended without an update (dropped, offline or stale; "
                           "see dropout_prob, the availability models and max_staleness)")
            return
        self._start(1)
        self._maybe_aggregate()

    def _maybe_aggregate(self) -> None:
        if self.agg_end_s is not None or self.done:
            return
        size = self.spec.buffer_size
        if len(self.buffer) >= size:
            updates, self.buffer = self.buffer[:size], self.buffer[size:]
            self._at(0, URGENT, self._aggregate, updates)  # a SimPy process: its first step

    def _aggregate(self, updates: list[Work]) -> None:
        index = self.version
        agg_s = aggregation_s(self.inputs, updates)
        self.agg_end_s = self.now + agg_s
        for w in updates:
            w.into = index + 1
        self._at(agg_s, NORMAL, self._aggregated, index, agg_s, updates)

    def _aggregated(self, index: int, agg_s: float, updates: list[Work]) -> None:
        self.version += 1
        self.agg_end_s = None
        last = self.version >= self.inputs.rounds or self.done
        if last and not self.done:
            self._stop_run()
            # the interrupts are urgent: every job records where it stopped before the row is written
            self._at(0, NORMAL, self._aggregated_last, index, agg_s, updates)
            return
        self.settled.extend(updates)
        self._write(index, agg_s, updates)
        if not last:
            self._maybe_aggregate()

    def _aggregated_last(self, index: int, agg_s: float, updates: list[Work]) -> None:
        self.settled.extend(updates)
        self._write(index, agg_s, updates)

    def _stop_run(self, note: str | None = None) -> None:
        self.done = True
        for w in list(self.working):
            self._stop(w, SURPLUS)
        for w in self.buffer:
            w.status = SURPLUS
        self.settled.extend(self.buffer)
        self.buffer = []
        if note is not None:
            self.engine.records.notes.append(note)
            if self.agg_end_s is None:
                self._at(0, URGENT, self._write_rest_begin)

    def _write_rest_begin(self) -> None:
        self._at(0, NORMAL, self._write, self.version, 0.0, [])

    def _write(self, index: int, agg_s: float, updates: list[Work]) -> None:
        eng = self.engine
        settled, self.settled = self.settled, []
        record_round(eng, index, self.since_s, self.now, agg_s, settled, updates, synchronous=False)
        self.since_s = self.now
        if eng.on_round is not None:
            eng.on_round(index)
