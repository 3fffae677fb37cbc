"""Asynchronous aggregation: buffered (FedBuff) or by time window (APPFL). `concurrency` client jobs stay
in flight; their updates are buffered as they arrive and aggregated, one aggregation at a time, into the next
model version; the run ends when the `rounds`-th aggregation ends.

The rules, in the order they apply:
- At t = 0 the server starts `concurrency` jobs on clients chosen among the available idle ones by the
  selection policy (uniformly by default; selection.py).
  A job is a synchronous client-round's: download the current version, compute, upload.
- When a job ends, however it ends, the server at once starts one new job (the client that just finished
  is idle again and may be chosen). While no idle client is online, the jobs owed start as clients come
  online.
- An upload's staleness is the number of aggregations completed when it arrives minus the version its job
  downloaded. Above `max_staleness` it is discarded (`stale`); otherwise it joins the buffer.
- Buffered mode: when the buffer holds `buffer_size` updates and the server is not aggregating, it
  aggregates the oldest `buffer_size`. Window mode: when a window of `window_s` ends, it aggregates every
  buffered update (none: the next window starts), or sooner once `min_updates` have arrived. Windows start at
  t = 0 and at the end of each aggregation.
- An aggregation takes the sum of its updates' groups' trainable params / params_per_s (n x params when the
  groups agree); the version increases when it ends.
  Updates that arrive meanwhile wait; jobs that start meanwhile download the version before it.
- Ties: an aggregation that ends at t is complete for everything else at t (an upload arriving then sees the
  new version, a job starting then downloads it). Uploads arriving at the same instant are buffered in the
  order the clock delivers them (the order their transfers were started).
- When the `rounds`-th aggregation ends, jobs still in flight stop (`surplus`, their work counted) and so do
  updates still buffered.
- A run that cannot go on stops early, with a note: no client will ever be online again, or FRUITLESS_JOBS x
  concurrency jobs in a row ended without an update reaching the buffer (every client drops, goes offline or
  is stale: synchronous rounds would end empty; these jobs would restart forever).

Records: one round row per aggregation, from the previous aggregation's end to its own, with the energy of
the jobs written down in it; a job is written down when its fate is known: with the aggregation that takes
its update, or at its end when it has no update to give (stale, dropped, offline, surplus).
"""

from __future__ import annotations

import numpy as np

from simfl.sim.job import COMPLETED, DROPPED, OFFLINE, STALE, SURPLUS, Work, client_job
from simfl.sim.policy import JobPolicy, aggregation_s
from simfl.sim.round_record import record_round


FRUITLESS_JOBS = 100  # per job slot: jobs in a row that end without a buffered update before the run stops


class IdlePool:
    """The members not working now, as an array: listing them is a view and a removal costs O(1) (the taken
    member swaps places with the last idle one), so starting a job does not scan the population."""

    def __init__(self, population: int):
        self.ids = np.arange(population)
        self.pos = np.arange(population)  # where each member stands in ids
        self.n = population  # ids[:n] are idle

    def candidates(self, online: np.ndarray | None = None) -> np.ndarray:
        """The idle members (and online, when `online` is given), in pool order: what a selection draws from."""
        idle = self.ids[:self.n]
        return idle if online is None else np.intersect1d(idle, online, assume_unique=True)

    def remove(self, chosen: np.ndarray) -> None:
        """`chosen` (idle members) start working: they are no longer idle."""
        for c in chosen.tolist():
            i, last = self.pos[c], self.ids[self.n - 1]
            self.ids[i], self.pos[last] = last, i
            self.ids[self.n - 1], self.pos[c] = c, self.n - 1
            self.n -= 1

    def put(self, member: int) -> None:
        """`member` is idle again: it swaps places with the first busy member."""
        j, first_busy = self.pos[member], self.ids[self.n]
        self.ids[j], self.pos[first_busy] = first_busy, j
        self.ids[self.n], self.pos[member] = member, self.n
        self.n += 1


class _JobEnd:
    """What client_job asks of its round: whether the run has ended (closed), what a job still working then
    is (cut), and whom to tell when it stops."""

    __slots__ = ("policy", "work")
    cut = SURPLUS

    def __init__(self, policy: "AsyncRounds", work: Work):
        self.policy = policy
        self.work = work

    @property
    def closed(self):
        return self.policy.done

    def client_stopped(self, uploaded: bool) -> None:
        self.policy._ended(self.work, uploaded)


class AsyncRounds(JobPolicy):
    """Buffered or windowed asynchronous aggregation (see the module's rules)."""

    def __init__(self, engine, streams, selection):
        super().__init__(engine, streams, selection)
        self.spec = engine.inputs.asynchronous
        env = engine.env
        self.idle = IdlePool(engine.inputs.population_size)
        self.version = 0  # aggregations completed
        self.agg_end_s: float | None = None  # when the running aggregation ends; None: not aggregating
        self.buffer: list[Work] = []  # uploads waiting to be aggregated, oldest first
        self.settled: list[Work] = []  # jobs whose fate is known, to write down with the next aggregation
        # in the order they started: a set would order them by memory address, so the surplus rows of a run's
        # end came out in an order that changed with unrelated code (same seed, other bytes)
        self.working: dict[Work, None] = {}
        self.owed = 0  # jobs to start as soon as an idle client is online
        self.fruitless = 0  # jobs in a row that ended without an update reaching the buffer
        self.waiting = False  # a process waits for clients to come online
        self.window = 0  # the current window's number (a window timer that fires for an older one is stale)
        self.since_s = 0.0  # the previous aggregation's end: where the next round row starts
        self.done = env.event()

    def versions_now(self) -> int:
        """Aggregations complete at this instant: one ending now counts (the tie rule)."""
        ending = self.agg_end_s is not None and self.agg_end_s <= self.engine.env.now
        return self.version + ending

    # -- the run -------------------------------------------------------------------------------------------

    def run(self):
        """The main SimPy process."""
        self._start(self.spec.concurrency)
        if self.spec.window_s is not None:
            self._open_window()
        yield self.done

    def _start(self, count: int) -> None:
        """Start `count` jobs on idle clients online now, chosen by the selection policy; owe the ones that
        cannot start."""
        eng = self.engine
        env, inputs = eng.env, eng.inputs
        online = eng.availability.available_ids(env.now) if eng.availability is not None else None
        chosen = self.select(self.idle.candidates(online), count)
        self.idle.remove(chosen)
        self.owed += count - len(chosen)
        if self.owed and not self.waiting:
            self.waiting = True
            env.process(self._wait_for_clients())
        if not len(chosen):
            return
        until = eng.availability.until(chosen, env.now) if eng.availability is not None else None
        p = self._dropout_probs[inputs.population.group[chosen]] if self._dropout else None
        draws = self.streams.dropout.random((len(chosen), 2)) if p is not None else None
        version = self.versions_now()
        for i, spec in enumerate(self._clients(chosen)):
            w = self.work(spec, version)
            self.working[w] = None
            w.proc = env.process(client_job(env, eng.transfers, w, eng.routes[spec.group], _JobEnd(self, w)))
            if draws is not None and draws[i, 0] < p[i]:
                fail_after_s = float(draws[i, 1]) * self._nominal_work_s(w)
                env.timeout(fail_after_s).callbacks.append(lambda _ev, w=w: self._stop(w, DROPPED))
            if until is not None and until[i] != float("inf"):
                env.timeout(float(until[i]) - env.now).callbacks.append(lambda _ev, w=w: self._stop(w, OFFLINE))

    def _wait_for_clients(self):
        """Start the jobs owed as clients come online; note it if none ever will again."""
        eng = self.engine
        env = eng.env
        while self.owed and not self.done.triggered:
            t_next = eng.availability.next_start(env.now)
            if t_next == float("inf"):
                if not self.working:  # nothing in flight either: the run cannot go on
                    self._stop_run(f"the run stopped after {self.version} of {eng.inputs.rounds} aggregations: at "
                                   f"t = {env.now:g} s no client is available and none ever will be again "
                                   "(see the availability models)")
                break
            yield env.timeout(t_next - env.now)
            owed, self.owed = self.owed, 0
            self._start(owed)
        self.waiting = False

    def _ended(self, w: Work, uploaded: bool) -> None:
        """A job stopped (client_job tells its _JobEnd): buffer or discard its update, start the next job."""
        self.working.pop(w, None)
        self.idle.put(w.spec.client_id)
        if uploaded:
            w.staleness = float(self.versions_now() - w.version)
        if self.done.triggered or self.versions_now() >= self.engine.inputs.rounds:
            # the run is over, or ends at this instant (the tie rule): nothing more is buffered or started
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
            self._stop_run(f"the run stopped after {self.version} of {self.engine.inputs.rounds} aggregations: "
                           f"{self.fruitless} jobs in a row ended without an update (dropped, offline or stale; "
                           "see dropout_prob, the availability models and max_staleness)")
            return
        owed, self.owed = self.owed, 0
        self._start(1 + owed)
        self._maybe_aggregate()

    # -- aggregation ---------------------------------------------------------------------------------------

    def _maybe_aggregate(self, window_ended: bool = False) -> None:
        if self.agg_end_s is not None or self.done.triggered:
            return
        a, n = self.spec, len(self.buffer)
        if a.buffer_size is not None:
            take = a.buffer_size if n >= a.buffer_size else 0
        else:
            take = n if (window_ended and n) or (a.min_updates is not None and n >= a.min_updates) else 0
        if take:
            updates, self.buffer = self.buffer[:take], self.buffer[take:]
            self.engine.env.process(self._aggregate(updates))
        elif window_ended:
            self._open_window()  # nothing to aggregate: the next window

    def _open_window(self) -> None:
        self.window += 1
        number = self.window
        timer = self.engine.env.timeout(self.spec.window_s)
        timer.callbacks.append(lambda _ev: number == self.window and self._maybe_aggregate(window_ended=True))

    def _aggregate(self, updates: list[Work]):
        eng = self.engine
        env, inputs = eng.env, eng.inputs
        index = self.version
        agg_s = aggregation_s(inputs, updates)
        self.window += 1  # the window open now ends with this aggregation
        self.agg_end_s = env.now + agg_s
        for w in updates:
            w.into = index + 1
        self.published(updates, self.agg_end_s)
        yield env.timeout(agg_s)
        self.version += 1
        self.agg_end_s = None
        last = self.version >= inputs.rounds or self.done.triggered  # (stopped early while it ran: the last)
        if last and not self.done.triggered:
            self._stop_run()
            yield env.timeout(0)  # the interrupts are urgent: every job records where it stopped first
        self.settled.extend(updates)
        self._write(index, agg_s, updates)
        if not last:
            if self.spec.window_s is not None:
                self._open_window()
            self._maybe_aggregate()

    def _stop_run(self, note: str | None = None) -> None:
        """End the run: jobs still working stop as surplus, updates still buffered are surplus too."""
        self.done.succeed()
        for w in list(self.working):
            self._stop(w, SURPLUS)
        for w in self.buffer:
            w.status = SURPLUS
        self.settled.extend(self.buffer)
        self.buffer = []
        if note is not None:
            self.engine.records.notes.append(note)
            if self.agg_end_s is None:  # no aggregation will write the jobs settled since the last: a row of their own
                self.engine.env.process(self._write_rest())

    def _write_rest(self):
        yield self.engine.env.timeout(0)  # after the stopped jobs have recorded where they stopped
        self._write(self.version, 0.0, [])

    def _write(self, index: int, agg_s: float, updates: list[Work]) -> None:
        eng = self.engine
        now = eng.env.now
        settled, self.settled = self.settled, []
        record_round(eng, index, self.since_s, now, agg_s, settled, updates, synchronous=False)
        self.since_s = now
        if eng.on_round is not None:
            eng.on_round(index)

