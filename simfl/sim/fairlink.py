"""One link shared max-min fairly by flows with their own caps: exact, O(log n) per change (GPS virtual time).

With capacity C and active flows of caps c_1 <= ... <= c_n, max-min fairness gives the k
smallest-capped flows their caps and every other flow the water level

    L = (C - (c_1 + ... + c_k)) / (n - k),   with c_k <= L < c_(k+1)

(L = infinity, k = n, when all caps fit in C). So:

- the flows are kept sorted by cap with a boundary k, moved only across the caps that L
  crosses when a flow starts or ends (a few positions, not a recount);
- a capped flow runs at its own cap until the boundary moves past it: its real finish
  time is fixed, and it sits in a heap of real finish times;
- the flows above the boundary all run at L(t): they advance together in virtual time
  V(t), the integral of L (GPS). A flow that joins the level with b bits left finishes
  when V reaches V(join) + b, whatever L does meanwhile: a heap of virtual finish times;
- one timer is armed for the earliest finish of either heap, or the earliest instant at
  which flows waiting out their latency start (a heap of instants, each with its flows):
  flows that start at the same instant, such as a round's downloads, start on one event.

Flows that start in the same instant with the same cap and the same bits are identical for
the rest of their lives: they share the level or their cap, and finish together. They are
kept as one cohort, one entry in the sorted caps and the heaps, counted n times in the level,
so a round of identical clients costs the link one entry per direction, not one per client.
A cohort member that is stopped leaves it; the others go on. Caps and counts are summed one
flow at a time, in the order single flows would be, so the numbers are the same to the bit.

A start or end costs O(log n) heap operations plus the boundary moves; a flow whose
remaining time is below the clock's resolution is done (see clock.due). The result is
the same as recomputing progressive filling at every change (tests/test_fairlink.py checks
this on thousands of random instances).
"""

from __future__ import annotations

import bisect
import heapq
import itertools

import simpy

from simfl.sim.clock import due

_INF = float("inf")


class LinkFlow:
    """One transfer on a FairLink. `done` fires with the bits moved when the last bit arrives."""

    __slots__ = ("bits", "cap_bps", "seq", "done", "link", "pending", "cohort")

    def __init__(self, bits: float, cap_bps: float, seq: int, done: simpy.Event, link: "FairLink"):
        self.bits = bits
        self.cap_bps = cap_bps
        self.seq = seq
        self.done = done
        self.link = link
        self.pending = False  # waiting out its start delay
        self.cohort: Cohort | None = None  # while it transfers


class Cohort:
    """Flows that started together with the same cap and bits: one entry in the caps and the heaps."""

    __slots__ = ("bits", "cap_bps", "key", "level", "finish", "version", "members")

    def __init__(self, first: LinkFlow):
        self.bits = first.bits
        self.cap_bps = first.cap_bps
        self.key = (first.cap_bps, first.seq)  # its place in the sorted caps: by cap, then by its first flow
        self.level = False  # True: runs at the water level L; False: at its own cap
        self.finish = 0.0  # real finish time (capped) or virtual finish (level)
        self.version = 0  # heap entries of an older version are stale
        self.members = [first]  # in start order


class FairLink:
    def __init__(self, env: simpy.Environment, capacity_bps: float):
        assert capacity_bps > 0
        self.env = env
        self.capacity_bps = capacity_bps
        self._keys: list[tuple] = []  # cohort keys (cap, seq), sorted
        self._cohorts: dict[tuple, Cohort] = {}
        self._k = 0  # the first k cohorts are capped
        self._n = 0  # flows transferring
        self._n_capped = 0  # of them, in the first k cohorts
        self._capped_sum = 0.0
        self._level_bps = _INF  # L
        self._v = 0.0  # virtual time V at self._t
        self._t = env.now
        self._capped_heap: list[tuple] = []  # (real finish, seq, version, cohort)
        self._level_heap: list[tuple] = []  # (virtual finish, seq, version, cohort)
        # Flows waiting out a delay, by the instant they start: a heap of distinct instants, and the flows
        # of each in start order (a round's downloads share one instant: one heap entry for all)
        self._start_heap: list[float] = []
        self._starting: dict[float, list[LinkFlow]] = {}
        self._seq = itertools.count()
        self._timer_token = 0
        self._timer_at = _INF  # when the live timer fires (inf: none)

    # -- public -----------------------------------------------------------------

    def start(self, bits: float, cap_bps: float, delay_s: float = 0.0) -> LinkFlow:
        """A flow of `bits` at most `cap_bps`, starting after `delay_s` (its latency)."""
        seq = next(self._seq)
        env = self.env
        flow = LinkFlow(bits, cap_bps, seq, env.event(), self)
        if bits <= 0:
            flow.done.succeed(0.0)
        elif delay_s > 0:
            flow.pending = True
            at_s = env.now + delay_s
            waiting = self._starting.get(at_s)
            if waiting is None:
                self._starting[at_s] = [flow]
                heapq.heappush(self._start_heap, at_s)
            else:
                waiting.append(flow)
            if at_s < self._timer_at:  # nothing else changed: only its start can be earlier
                self._set_timer(at_s)
        else:
            self._advance()
            self._insert([flow])
            self._rebalance()
        return flow

    def abort(self, flow: LinkFlow) -> float:
        """Stop a flow now; returns the bits it had moved."""
        if flow.pending:  # stopped during its start delay: nothing moved, and it never starts
            flow.pending = False
            return 0.0
        cohort = flow.cohort
        if cohort is None:
            return flow.bits if flow.done.triggered else 0.0
        self._advance()
        moved = flow.bits - self._remaining(cohort)
        cohort.members.remove(flow)
        flow.cohort = None
        self._n -= 1
        if self._index(cohort) < self._k:
            self._n_capped -= 1
            self._capped_sum -= cohort.cap_bps
        if not cohort.members:
            self._remove(cohort)
        self._rebalance()
        return max(0.0, min(flow.bits, moved))

    # -- internals ----------------------------------------------------------------

    def _insert(self, flows: list[LinkFlow]) -> None:
        """Flows starting now, in start order: identical ones (cap, bits) join one new cohort."""
        if len(flows) == 1:
            flow = flows[0]
            flow.pending = False
            cohorts = [Cohort(flow)]
            flow.cohort = cohorts[0]
        else:
            made: dict[tuple, Cohort] = {}
            for flow in flows:
                flow.pending = False
                cohort = made.get((flow.cap_bps, flow.bits))
                if cohort is None:
                    cohort = made[(flow.cap_bps, flow.bits)] = Cohort(flow)
                else:
                    cohort.members.append(flow)
                flow.cohort = cohort
            cohorts = made.values()
        for cohort in cohorts:
            m = len(cohort.members)
            i = bisect.bisect_left(self._keys, cohort.key)
            self._keys.insert(i, cohort.key)
            self._cohorts[cohort.key] = cohort
            self._n += m
            if i < self._k:  # among the capped caps: capped
                self._k += 1
                self._n_capped += m
                for _ in range(m):
                    self._capped_sum += cohort.cap_bps
                self._place(cohort, level=False, remaining=cohort.bits)
            else:
                self._place(cohort, level=True, remaining=cohort.bits)

    def _index(self, cohort: Cohort) -> int:
        return bisect.bisect_left(self._keys, cohort.key)

    def _advance(self) -> None:
        """Bring virtual time to now at the current level."""
        now = self.env.now
        if self._level_bps != _INF and now > self._t:
            self._v += self._level_bps * (now - self._t)
        self._t = now

    def _remaining(self, cohort: Cohort) -> float:
        if cohort.level:
            return max(0.0, cohort.finish - self._v)
        return max(0.0, cohort.cap_bps * (cohort.finish - self.env.now))

    def _place(self, cohort: Cohort, level: bool, remaining: float) -> None:
        cohort.level = level
        cohort.version += 1
        if level:
            cohort.finish = self._v + remaining
            heapq.heappush(self._level_heap, (cohort.finish, cohort.key[1], cohort.version, cohort))
        else:
            cohort.finish = self.env.now + remaining / cohort.cap_bps
            heapq.heappush(self._capped_heap, (cohort.finish, cohort.key[1], cohort.version, cohort))

    def _remove(self, cohort: Cohort) -> None:
        """Take out a cohort whose flows have all been counted out (or are about to be, when it finishes)."""
        i = bisect.bisect_left(self._keys, cohort.key)
        del self._keys[i]
        del self._cohorts[cohort.key]
        cohort.version += 1  # its heap entry is stale now
        if i < self._k:
            self._k -= 1
        if not self._keys:
            self._clear()

    def _clear(self) -> None:
        self._capped_sum = 0.0  # no float residue carried into the next busy period
        self._v = 0.0

    def _finish(self, cohort: Cohort) -> list[LinkFlow]:
        """A cohort's last bits arrived: its flows leave the link."""
        m = len(cohort.members)
        if self._index(cohort) < self._k:
            self._n_capped -= m
            for _ in range(m):
                self._capped_sum -= cohort.cap_bps
        self._n -= m
        self._remove(cohort)
        for f in cohort.members:
            f.cohort = None
        return cohort.members

    def _level_for(self, n_capped: int, capped_sum: float) -> float:
        """L with n_capped flows capped. With all capped: infinite if their caps fit, else below
        every cap (-inf), so that the boundary moves down."""
        if n_capped == self._n:
            return _INF if capped_sum <= self.capacity_bps else -_INF
        return (self.capacity_bps - capped_sum) / (self._n - n_capped)

    def _rebalance(self, arm: bool = True) -> None:
        """Move the boundary until c_k <= L < c_(k+1), converting the cohorts it passes; then re-arm.
        A cohort moves whole: if its cap is under the level, so it stays after each of its flows moves."""
        keys = self._keys
        k, nk, s = self._k, self._n_capped, self._capped_sum
        level = self._level_for(nk, s)
        while k < len(keys) and keys[k][0] <= level:  # the next cap is under the level: it becomes capped
            cohort = self._cohorts[keys[k]]
            remaining = self._remaining(cohort)
            for _ in range(len(cohort.members)):
                s += cohort.cap_bps
            k, nk = k + 1, nk + len(cohort.members)
            self._place(cohort, level=False, remaining=remaining)
            level = self._level_for(nk, s)
        while k > 0 and keys[k - 1][0] > level:  # the last capped cap is above the level: it joins it
            cohort = self._cohorts[keys[k - 1]]
            remaining = self._remaining(cohort)
            for _ in range(len(cohort.members)):
                s -= cohort.cap_bps
            k, nk = k - 1, nk - len(cohort.members)
            self._place(cohort, level=True, remaining=remaining)
            level = self._level_for(nk, s)
        self._k, self._n_capped, self._capped_sum, self._level_bps = k, nk, s, level
        if arm:
            self._arm()

    def _top(self, heap: list) -> Cohort | None:
        while heap and heap[0][2] != heap[0][3].version:
            heapq.heappop(heap)  # stale: the cohort moved, ended or was emptied
        return heap[0][3] if heap else None

    def _time_left(self, cohort: Cohort) -> float:
        if cohort.level:
            return (cohort.finish - self._v) / self._level_bps
        return cohort.finish - self.env.now

    def _arm(self) -> None:
        """Make sure a timer fires no later than the earliest finish. A live timer that fires earlier is
        kept: firing early costs one look at the heaps, while a new timer per start costs an event each."""
        now = self.env.now
        lefts = [self._time_left(c) for c in (self._top(self._capped_heap), self._top(self._level_heap)) if c]
        if self._start_heap:  # (an instant whose flows were all stopped while waiting fires for nothing)
            lefts.append(self._start_heap[0] - now)
        if not lefts:
            return
        left = max(0.0, min(lefts))
        if self._timer_at > now + left:
            self._set_timer(now + left)

    def _set_timer(self, at_s: float) -> None:
        self._timer_token += 1
        token = self._timer_token
        self._timer_at = at_s
        self.env.timeout(max(0.0, at_s - self.env.now)).callbacks.append(lambda _ev: self._on_timer(token))

    def _on_timer(self, token: int) -> None:
        if token != self._timer_token:
            return  # superseded by an earlier timer
        self._timer_at = _INF
        self._advance()
        now = self.env.now
        start_heap = self._start_heap
        if start_heap and start_heap[0] <= now:
            starting = []
            while start_heap and start_heap[0] <= now:
                at_s = heapq.heappop(start_heap)
                # instants in order, each one's flows in start order: the order of (start time, sequence)
                starting += [f for f in self._starting.pop(at_s) if f.pending]  # not stopped while waiting
            if starting:
                self._insert(starting)
                self._rebalance(arm=False)  # the level with the new flows, before anything is judged done
        finished = []
        heap = self._capped_heap  # capped cohorts: done when their real finish is due
        while heap:
            finish, _, version, cohort = heap[0]
            if version != cohort.version:
                heapq.heappop(heap)  # stale: the cohort moved, ended or was emptied
            elif due(now, finish - now):
                heapq.heappop(heap)
                finished += self._finish(cohort)
            else:
                break
        heap, v, level = self._level_heap, self._v, self._level_bps  # level cohorts: by virtual finish
        while heap:
            finish, _, version, cohort = heap[0]
            if version != cohort.version:
                heapq.heappop(heap)
            elif due(now, (finish - v) / level):
                heapq.heappop(heap)
                finished += self._finish(cohort)
            else:
                break
        self._rebalance()
        if len(finished) > 1:
            finished.sort(key=_start_order)  # in start order: deterministic
        for flow in finished:
            flow.done.succeed(flow.bits)


def _start_order(flow: LinkFlow) -> int:
    return flow.seq
