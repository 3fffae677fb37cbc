"""One client's job in one round: download, compute, upload; stopped where it is when interrupted."""

from __future__ import annotations

import simpy

from simfl.sim.flows import Flow, FlowNetwork
from simfl.sim.inputs import ClientSpec
from simfl.sim.records import NAN

# How a client-round ends. `late`: still working at the deadline. `surplus`: still working, or
# its upload landing in the same instant, when the round already had K uploads (over-selection).
# Only `completed` uploads are aggregated.
# `offline`: its availability interval ended before its upload did.
# `stale` (asynchronous aggregation): its upload arrived more than max_staleness versions late: discarded.
COMPLETED, DROPPED, LATE, SURPLUS, OFFLINE, STALE = "completed", "dropped", "late", "surplus", "offline", "stale"
STATUSES = (COMPLETED, DROPPED, LATE, SURPLUS, OFFLINE, STALE)


class Work:
    """Mutable state of one client job (a client in a round); frozen into a record when it is written down."""

    __slots__ = ("spec", "proc", "flow", "phase", "t", "status", "end_s", "compute_s", "bits_down", "bits_up",
                 "version", "into", "staleness")

    def __init__(self, spec: ClientSpec, version: int = 0):
        self.spec = spec
        self.version = version  # the model version it downloads
        self.into = -1  # the version its update went into; -1: none
        self.staleness = NAN  # set when its upload arrives
        self.proc: simpy.Process | None = None
        self.flow: Flow | None = None
        self.phase = "download"
        self.t = [NAN] * 6  # download start/end, compute start/end, upload start/end
        self.status = ""
        self.end_s = NAN
        self.compute_s = 0.0
        self.bits_down = 0.0
        self.bits_up = 0.0


class Transfers:
    """Moves a client's bits to or from the server over its route.

    When no shared link can be oversubscribed (`contention_free`, proved once per run), a
    transfer is one exact timeout; otherwise it is a fluid flow on the max-min network.
    """

    def __init__(self, env: simpy.Environment, net: FlowNetwork, contention_free: bool, bits: int,
                 framing: float = 1.0):
        self.env = env
        self.net = net
        self.contention_free = contention_free
        self.framing = framing  # wire bits per payload bit
        self.bits = float(bits) * framing  # what crosses the links (fractional when stopped: always float)

    def start(self, w: Work, cap_bps: float, starter, latency_s: float) -> simpy.Event:
        """Latency, then the bits: an event that fires with the bits moved on the wire (an event, not a
        sub-generator: the job yields it directly, which saves a generator per transfer). `starter` starts a
        flow over the route's shared resources (FlowNetwork.starter)."""
        if self.contention_free:
            return self.env.timeout(latency_s + self.bits / cap_bps, self.bits)
        w.flow = starter(self.bits, cap_bps, latency_s)  # begins after the latency
        return w.flow.done

    def moved_so_far(self, w: Work, cap_bps: float, latency_s: float, elapsed_s: float) -> float:
        """Bits a stopped transfer had moved: from its flow, or at its cap after the latency (fast path)."""
        if w.flow is not None:
            return self.net.abort(w.flow)
        if self.contention_free:
            return min(self.bits, max(0.0, elapsed_s - latency_s) * cap_bps)
        return 0.0


def client_job(env: simpy.Environment, transfers: Transfers, w: Work, route: tuple, rnd):
    """The SimPy process of one client-round. `rnd` is told when the client stops (`client_stopped`)
    and says, once closed, what a client still working is (`closed`, `cut`)."""
    spec = w.spec
    server_latency_s, _, _, down_start, up_start = route
    latency_s = spec.link.latency_s + server_latency_s
    t = w.t
    try:
        t[0] = env.now
        w.bits_down = (yield transfers.start(w, spec.link.downlink_bps, down_start, latency_s)) / transfers.framing
        w.flow = None
        t[1] = t[2] = env.now
        w.phase = "compute"
        yield env.timeout(spec.compute_s)
        w.compute_s = spec.compute_s
        t[3] = t[4] = env.now
        w.phase = "upload"
        w.bits_up = (yield transfers.start(w, spec.link.uplink_bps, up_start, latency_s)) / transfers.framing
        w.flow = None
        t[5] = env.now
        # An upload that lands once the round has closed (a simultaneous K+1-th) is not aggregated.
        w.status = rnd.cut if rnd.closed.triggered else COMPLETED
    except simpy.Interrupt as stop:
        w.status = stop.cause
        now = env.now
        if w.phase == "download":
            t[1] = now
            w.bits_down = transfers.moved_so_far(w, spec.link.downlink_bps, latency_s, now - t[0]) / transfers.framing
        elif w.phase == "compute":
            t[3] = now
            w.compute_s = now - t[2]
        else:
            t[5] = now
            w.bits_up = transfers.moved_so_far(w, spec.link.uplink_bps, latency_s, now - t[4]) / transfers.framing
        w.flow = None
    w.end_s = env.now
    rnd.client_stopped(w.status == COMPLETED)
