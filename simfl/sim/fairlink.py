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
- one timer is armed for the earliest finish of either heap, or the earliest start of a
  flow still waiting out its latency (a third heap): flows that start at the same instant,
  such as a round's downloads, start on one event.

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

    __slots__ = ("bits", "cap_bps", "key", "level", "finish", "version", "done", "link", "pending")

    def __init__(self, bits: float, cap_bps: float, key: tuple, done: simpy.Event, link: "FairLink"):
        self.bits = bits
        self.cap_bps = cap_bps
        self.key = key  # (cap, sequence): its place in the sorted caps
        self.level = False  # True: runs at the water level L; False: at its own cap
        self.finish = 0.0  # real finish time (capped) or virtual finish (level)
        self.version = 0  # heap entries of an older version are stale
        self.done = done
        self.link = link
        self.pending = False  # waiting out its start delay


class FairLink:
    def __init__(self, env: simpy.Environment, capacity_bps: float):
        assert capacity_bps > 0
        self.env = env
        self.capacity_bps = capacity_bps
        self._keys: list[tuple] = []  # (cap, seq), sorted
        self._flows: dict[tuple, LinkFlow] = {}
        self._k = 0  # the first k keys are capped
        self._capped_sum = 0.0
        self._level_bps = _INF  # L
        self._v = 0.0  # virtual time V at self._t
        self._t = env.now
        self._capped_heap: list[tuple] = []  # (real finish, seq, version, flow)
        self._level_heap: list[tuple] = []  # (virtual finish, seq, version, flow)
        self._start_heap: list[tuple] = []  # (start time, seq, version, flow): waiting out a delay
        self._seq = itertools.count()
        self._timer_token = 0
        self._timer_at = _INF  # when the live timer fires (inf: none)

    # -- public -----------------------------------------------------------------

    def start(self, bits: float, cap_bps: float, delay_s: float = 0.0) -> LinkFlow:
        """A flow of `bits` at most `cap_bps`, starting after `delay_s` (its latency)."""
        seq = next(self._seq)
        env = self.env
        flow = LinkFlow(bits, cap_bps, (cap_bps, seq), env.event(), self)
        if bits <= 0:
            flow.done.succeed(0.0)
        elif delay_s > 0:
            flow.pending = True
            at_s = flow.finish = env.now + delay_s
            heapq.heappush(self._start_heap, (at_s, seq, 0, flow))
            if at_s < self._timer_at:  # nothing else changed: only its start can be earlier
                self._set_timer(at_s)
        else:
            self._advance()
            self._insert(flow)
            self._rebalance()
        return flow

    def _insert(self, flow: LinkFlow) -> None:
        flow.pending = False
        i = bisect.bisect_left(self._keys, flow.key)
        self._keys.insert(i, flow.key)
        self._flows[flow.key] = flow
        if i < self._k:  # among the capped caps: capped
            self._k += 1
            self._capped_sum += flow.cap_bps
            self._place(flow, level=False, remaining=flow.bits)
        else:
            self._place(flow, level=True, remaining=flow.bits)

    def abort(self, flow: LinkFlow) -> float:
        """Stop a flow now; returns the bits it had moved."""
        if flow.pending:  # stopped during its start delay: nothing moved, and it never starts
            flow.pending = False
            flow.version += 1
            return 0.0
        if flow.key not in self._flows:
            return flow.bits if flow.done.triggered else 0.0
        self._advance()
        moved = flow.bits - self._remaining(flow)
        self._remove(flow)
        self._rebalance()
        return max(0.0, min(flow.bits, moved))

    # -- internals ----------------------------------------------------------------

    def _advance(self) -> None:
        """Bring virtual time to now at the current level."""
        now = self.env.now
        if self._level_bps != _INF and now > self._t:
            self._v += self._level_bps * (now - self._t)
        self._t = now

    def _remaining(self, flow: LinkFlow) -> float:
        if flow.level:
            return max(0.0, flow.finish - self._v)
        return max(0.0, flow.cap_bps * (flow.finish - self.env.now))

    def _place(self, flow: LinkFlow, level: bool, remaining: float) -> None:
        flow.level = level
        flow.version += 1
        if level:
            flow.finish = self._v + remaining
            heapq.heappush(self._level_heap, (flow.finish, flow.key[1], flow.version, flow))
        else:
            flow.finish = self.env.now + remaining / flow.cap_bps
            heapq.heappush(self._capped_heap, (flow.finish, flow.key[1], flow.version, flow))

    def _remove(self, flow: LinkFlow) -> None:
        i = bisect.bisect_left(self._keys, flow.key)
        del self._keys[i]
        del self._flows[flow.key]
        flow.version += 1  # its heap entry is stale now
        if i < self._k:
            self._k -= 1
            self._capped_sum -= flow.cap_bps
        if not self._keys:
            self._capped_sum = 0.0  # no float residue carried into the next busy period
            self._v = 0.0

    def _level_for(self, k: int, capped_sum: float) -> float:
        """L with the first k flows capped. With all capped: infinite if their caps fit, else below
        every cap (-inf), so that the boundary moves down."""
        n = len(self._keys)
        if k == n:
            return _INF if capped_sum <= self.capacity_bps else -_INF
        return (self.capacity_bps - capped_sum) / (n - k)

    def _rebalance(self, arm: bool = True) -> None:
        """Move the boundary until c_k <= L < c_(k+1), converting the flows it passes; then re-arm."""
        keys = self._keys
        k, s = self._k, self._capped_sum
        level = self._level_for(k, s)
        while k < len(keys) and keys[k][0] <= level:  # the next cap is under the level: it becomes capped
            flow = self._flows[keys[k]]
            remaining = self._remaining(flow)
            k, s = k + 1, s + flow.cap_bps
            self._place(flow, level=False, remaining=remaining)
            level = self._level_for(k, s)
        while k > 0 and keys[k - 1][0] > level:  # the last capped cap is above the level: it joins it
            flow = self._flows[keys[k - 1]]
            remaining = self._remaining(flow)
            k, s = k - 1, s - flow.cap_bps
            self._place(flow, level=True, remaining=remaining)
            level = self._level_for(k, s)
        self._k, self._capped_sum, self._level_bps = k, s, level
        if arm:
            self._arm()

    def _top(self, heap: list) -> LinkFlow | None:
        while heap and heap[0][2] != heap[0][3].version:
            heapq.heappop(heap)  # stale: the flow moved, ended or was aborted
        return heap[0][3] if heap else None

    def _time_left(self, flow: LinkFlow) -> float:
        if flow.level:
            return (flow.finish - self._v) / self._level_bps
        return flow.finish - self.env.now

    def _arm(self) -> None:
        """Make sure a timer fires no later than the earliest finish. A live timer that fires earlier is
        kept: firing early costs one look at the heaps, while a new timer per start costs an event each."""
        now = self.env.now
        lefts = [self._time_left(f) for f in (self._top(self._capped_heap), self._top(self._level_heap)) if f]
        if (waiting := self._top(self._start_heap)) is not None:
            lefts.append(waiting.finish - now)
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
        if start_heap and start_heap[0][0] <= now:
            while start_heap and start_heap[0][0] <= now:
                _, _, version, flow = heapq.heappop(start_heap)
                if version == flow.version:  # not aborted while it waited
                    self._insert(flow)
            self._rebalance(arm=False)  # the level with the new flows, before anything is judged done
        finished = []
        heap = self._capped_heap  # capped flows: done when their real finish is due
        while heap:
            finish, _, version, flow = heap[0]
            if version != flow.version:
                heapq.heappop(heap)  # stale: the flow moved, ended or was aborted
            elif due(now, finish - now):
                heapq.heappop(heap)
                self._remove(flow)
                finished.append(flow)
            else:
                break
        heap, v, level = self._level_heap, self._v, self._level_bps  # level flows: by virtual finish
        while heap:
            finish, _, version, flow = heap[0]
            if version != flow.version:
                heapq.heappop(heap)
            elif due(now, (finish - v) / level):
                heapq.heappop(heap)
                self._remove(flow)
                finished.append(flow)
            else:
                break
        self._rebalance()
        if len(finished) > 1:
            finished.sort(key=_start_order)  # in start order: deterministic
        for flow in finished:
            flow.done.succeed(flow.bits)


def _start_order(flow: LinkFlow) -> int:
    return flow.key[1]
