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
# A job's timestamps, in the order of the client-round record's columns (records.ClientRound)
TIMES = ("download_start_s", "download_end_s", "compute_start_s", "compute_end_s", "upload_start_s",
         "upload_end_s")


class Work:
    """Mutable state of one client job (a client in a round); frozen into a record when it is written down."""

    __slots__ = ("spec", "proc", "flow", "phase", "status", "end_s", "compute_s", "bits_down", "bits_up",
                 "version", "into", "staleness", "download_payload_bits", "upload_payload_bits", *TIMES)

    def __init__(self, spec: ClientSpec, version: int, download_payload_bits: float, upload_payload_bits: float):
        self.spec = spec
        self.version = version  # the model version it downloads
        # what it is to move, before framing (the round policy sets them: JobPolicy.work)
        self.download_payload_bits = download_payload_bits
        self.upload_payload_bits = upload_payload_bits
        self.into = -1  # the version its update went into; -1: none
        self.staleness = NAN  # set when its upload arrives
        self.proc: simpy.Process | None = None
        self.flow: Flow | None = None
        self.phase = "download"
        # when each phase started and ended (NaN: never reached); a phase stopped early ends where it stopped
        self.download_start_s = self.download_end_s = NAN
        self.compute_start_s = self.compute_end_s = NAN
        self.upload_start_s = self.upload_end_s = NAN
        self.status = ""
        self.end_s = NAN
        self.compute_s = 0.0
        self.bits_down = 0.0  # payload bits moved
        self.bits_up = 0.0


class Transfers:
    """Moves a client's bits to or from the server over its route.

    When no shared link can be oversubscribed (`contention_free`, proved once per run), a
    transfer is one exact timeout; otherwise it is a fluid flow on the max-min network.
    """

    def __init__(self, env: simpy.Environment, net: FlowNetwork, contention_free: bool, framing: float = 1.0):
        self.env = env
        self.net = net
        self.contention_free = contention_free
        self.framing = framing  # wire bits per payload bit

    def start(self, w: Work, wire_bits: float, cap_bps: float, starter, latency_s: float) -> simpy.Event:
        """Latency, then `wire_bits` (payload x framing): an event that fires with the bits moved on the wire
        (an event, not a sub-generator: the job yields it directly, which saves a generator per transfer).
        `starter` starts a flow over the route's shared resources (FlowNetwork.starter)."""
        if self.contention_free:
            return self.env.timeout(latency_s + wire_bits / cap_bps, wire_bits)
        w.flow = starter(wire_bits, cap_bps, latency_s)  # begins after the latency
        return w.flow.done

    def moved_so_far(self, w: Work, wire_bits: float, cap_bps: float, latency_s: float, elapsed_s: float) -> float:
        """Bits a stopped transfer had moved: from its flow, or at its cap after the latency (fast path)."""
        if w.flow is not None:
            return self.net.abort(w.flow)
        if self.contention_free:
            return min(wire_bits, max(0.0, elapsed_s - latency_s) * cap_bps)
        return 0.0


def client_job(env: simpy.Environment, transfers: Transfers, w: Work, route: tuple, rnd):
    """The SimPy process of one client-round. `rnd` is told when the client stops (`client_stopped`)
    and says, once closed, what a client still working is (`closed`, `cut`)."""
    spec = w.spec
    server_latency_s, _, _, down_start, up_start = route
    latency_s = spec.link.latency_s + server_latency_s
    framing = transfers.framing
    # what crosses the links (fractional when stopped: always float)
    down_bits, up_bits = float(w.download_payload_bits) * framing, float(w.upload_payload_bits) * framing
    try:
        w.download_start_s = env.now
        w.bits_down = (yield transfers.start(w, down_bits, spec.link.downlink_bps, down_start, latency_s)) / framing
        w.flow = None
        w.download_end_s = w.compute_start_s = env.now
        w.phase = "compute"
        yield env.timeout(spec.compute_s)
        w.compute_s = spec.compute_s
        w.compute_end_s = w.upload_start_s = env.now
        w.phase = "upload"
        w.bits_up = (yield transfers.start(w, up_bits, spec.link.uplink_bps, up_start, latency_s)) / framing
        w.flow = None
        w.upload_end_s = env.now
        # An upload that lands once the round has closed (a simultaneous K+1-th) is not aggregated.
        w.status = rnd.cut if rnd.closed.triggered else COMPLETED
    except simpy.Interrupt as stop:
        w.status = stop.cause
        now = env.now
        if w.phase == "download":
            w.download_end_s = now
            w.bits_down = transfers.moved_so_far(w, down_bits, spec.link.downlink_bps, latency_s,
                                                 now - w.download_start_s) / framing
        elif w.phase == "compute":
            w.compute_end_s = now
            w.compute_s = now - w.compute_start_s
        else:
            w.upload_end_s = now
            w.bits_up = transfers.moved_so_far(w, up_bits, spec.link.uplink_bps, latency_s,
                                               now - w.upload_start_s) / framing
        w.flow = None
    w.end_s = env.now
    rnd.client_stopped(w.status == COMPLETED)
