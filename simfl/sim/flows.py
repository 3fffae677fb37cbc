"""Transfers as fluid flows on SimPy's clock, rates max-min fair and recomputed on every change."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import simpy

from simfl.sim.clock import due
from simfl.sim.fairlink import FairLink, LinkFlow
from simfl.sim.fairshare import max_min_rates



class Flow:
    """One transfer in progress. `done` fires with the bits moved when the last bit arrives."""

    __slots__ = ("bits", "cap_bps", "resources", "remaining_bits", "rate_bps", "since_s", "done", "token",
                 "pending")

    def __init__(self, bits: float, cap_bps: float, resources: tuple, done: simpy.Event):
        self.bits = bits
        self.cap_bps = cap_bps
        self.resources = resources
        self.remaining_bits = bits
        self.rate_bps = 0.0
        self.since_s = 0.0
        self.done = done
        self.token = 0  # which scheduled completion is current; 0 = none
        self.pending = False  # waiting out its start delay


class FlowNetwork:
    """Flows over shared resources (cells, the server link) plus each flow's own link cap.

    Two modes, one result. While no shared resource is oversubscribed at the flows'
    own caps, max-min fairness gives every flow its own cap, so a starting or ending
    flow changes no other rate and each flow gets one exact completion timeout (the
    fast path: O(1) per event). Once a resource is oversubscribed, every change
    settles all flows, recomputes max-min rates and arms a single timer for the
    earliest completion; changes at the same instant are batched into one recompute.
    """

    def __init__(self, env: simpy.Environment, capacity_bps: Mapping[Hashable, float],
                 alone: Sequence[Hashable] = ()):
        """`alone`: resources that no flow crosses together with another. Their flows are shared by a
        FairLink each (exact, O(log n) a change); flows over several resources use the general path."""
        self.env = env
        self.capacity_bps = dict(capacity_bps)
        self._links = {r: FairLink(env, self.capacity_bps[r]) for r in alone}
        self._demand = {r: 0.0 for r in self.capacity_bps}
        self._over: set[Hashable] = set()
        self._flows: dict[Flow, None] = {}  # insertion-ordered set: deterministic iteration
        self._shared_mode = False  # rates come from max_min_rates, one timer for all
        self._next_token = 1
        self._shared_token = 0
        self._dirty = False

    def starter(self, resources: Sequence[Hashable]):
        """A function (bits, cap_bps, delay_s) -> flow over `resources`: the link's own start when a FairLink
        serves them (one call less per transfer), else this network's."""
        resources = tuple(resources)
        if len(resources) == 1 and resources[0] in self._links:
            return self._links[resources[0]].start
        return lambda bits, cap_bps, delay_s: self.start(bits, cap_bps, resources, delay_s)

    def start(self, bits: float, cap_bps: float, resources: Sequence[Hashable] = (),
              delay_s: float = 0.0) -> Flow | LinkFlow:
        """A flow over `resources`, starting after `delay_s` (its latency); wait on its `done`."""
        if len(resources) == 1 and resources[0] in self._links:
            return self._links[resources[0]].start(float(bits), float(cap_bps), delay_s)
        flow = Flow(float(bits), float(cap_bps), tuple(resources), self.env.event())
        if bits <= 0:
            flow.done.succeed(0.0)
        elif delay_s > 0:
            flow.pending = True
            self.env.timeout(delay_s).callbacks.append(lambda _ev: self._begin(flow))
        else:
            self._begin(flow)
        return flow

    def _begin(self, flow: Flow) -> None:
        if flow.token == -1:
            return  # aborted while it waited
        flow.pending = False
        flow.since_s = self.env.now
        self._flows[flow] = None
        self._add_demand(flow, +1)
        if self._shared_mode or self._over:
            self._mark_dirty()
        else:
            flow.rate_bps = flow.cap_bps
            self._arm(flow)

    def abort(self, flow: Flow | LinkFlow) -> float:
        """Stop a flow now; returns the bits it had moved."""
        if isinstance(flow, LinkFlow):
            return flow.link.abort(flow)
        if flow.pending:  # stopped during its start delay: nothing moved, and it never starts
            flow.pending, flow.token = False, -1
            return 0.0
        if flow not in self._flows:
            return flow.bits - flow.remaining_bits
        self._settle(flow)
        self._remove(flow)
        return flow.bits - flow.remaining_bits

    # -- internals -------------------------------------------------------

    def _add_demand(self, flow: Flow, sign: int) -> None:
        for r in flow.resources:
            d = self._demand[r] + sign * flow.cap_bps
            self._demand[r] = d
            if d > self.capacity_bps[r] * (1 + 1e-12):
                self._over.add(r)
            else:
                self._over.discard(r)

    def _remove(self, flow: Flow) -> None:
        del self._flows[flow]
        flow.token = 0
        self._add_demand(flow, -1)
        if self._shared_mode:
            self._mark_dirty()

    def _settle(self, flow: Flow) -> None:
        now = self.env.now
        flow.remaining_bits = max(0.0, flow.remaining_bits - flow.rate_bps * (now - flow.since_s))
        flow.since_s = now

    def _arm(self, flow: Flow) -> None:
        token = self._next_token
        self._next_token += 1
        flow.token = token
        ev = self.env.timeout(flow.remaining_bits / flow.rate_bps)
        ev.callbacks.append(lambda _ev, f=flow, t=token: self._on_flow_timer(f, t))

    def _on_flow_timer(self, flow: Flow, token: int) -> None:
        if flow.token != token:
            return  # superseded by a recompute or an abort
        flow.remaining_bits = 0.0
        self._finish(flow)

    def _finish(self, flow: Flow) -> None:
        self._remove(flow)
        flow.done.succeed(flow.bits)

    def _mark_dirty(self) -> None:
        # A zero-delay event runs after everything already queued for this instant,
        # so a burst of simultaneous starts and ends costs one recompute.
        if not self._dirty:
            self._dirty = True
            self.env.timeout(0).callbacks.append(self._recompute)

    def _recompute(self, _ev: simpy.Event | None = None) -> None:
        self._dirty = False
        flows = list(self._flows)
        for f in flows:
            self._settle(f)
        if not self._over:
            # Every flow runs at its own cap again: back to per-flow timers.
            self._shared_mode = False
            for f in flows:
                f.rate_bps = f.cap_bps
                self._arm(f)
            return
        self._shared_mode = True
        rates = max_min_rates([f.cap_bps for f in flows], [f.resources for f in flows], self.capacity_bps)
        for f, rate in zip(flows, rates):
            f.rate_bps = rate
            f.token = 0  # per-flow timers from the fast path no longer hold
        self._arm_shared(flows)

    def _arm_shared(self, flows: list[Flow]) -> None:
        if not flows:
            return
        delay = min(f.remaining_bits / f.rate_bps if f.rate_bps > 0 else float("inf") for f in flows)
        if delay == float("inf"):
            return  # every flow starved; a later change will recompute
        token = self._next_token
        self._next_token += 1
        self._shared_token = token
        self.env.timeout(delay).callbacks.append(lambda _ev, t=token: self._on_shared_timer(t))

    def _on_shared_timer(self, token: int) -> None:
        if token != self._shared_token or not self._shared_mode or self._dirty:
            return
        done = []
        now = self.env.now
        for f in list(self._flows):
            self._settle(f)
            if f.rate_bps > 0 and due(now, f.remaining_bits / f.rate_bps):
                done.append(f)
        for f in done:
            f.remaining_bits = 0.0
            self._finish(f)  # marks dirty: the survivors' rates are recomputed next
        if not done:
            self._arm_shared(list(self._flows))
