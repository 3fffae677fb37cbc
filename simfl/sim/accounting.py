"""Energy over a client-round's spans and a round's server time: pure functions, joules out."""

from __future__ import annotations

import numpy as np

from simfl.costs import energy_j, network_energy_j
from simfl.sim.inputs import ClientSpec, ServerSpec


def client_round_energy_j(spec: ClientSpec, compute_s: float, busy_s: float, bits_down: float,
                          bits_up: float) -> tuple[float, float, float]:
    """(compute, idle, network) joules of one client-round.

    compute: its power while computing; idle: its idle power for the rest of the time it
    worked this round (`busy_s`, from the round's start to its stop: latency waits and
    transfers); network: the bits it moved times the per-bit energy of its path.
    """
    return (energy_j(spec.compute_power_w, compute_s),
            energy_j(spec.idle_power_w, busy_s - compute_s),
            network_energy_j(bits_down, bits_up, spec.link.energy_per_bit_down_j, spec.link.energy_per_bit_up_j))


def server_round_energy_j(server: ServerSpec, duration_s: float, aggregation_s: float) -> float:
    """Aggregation power while aggregating, idle power for the rest of the round."""
    return energy_j(server.aggregation_power_w, aggregation_s) + energy_j(server.idle_power_w,
                                                                         duration_s - aggregation_s)


def round_spans(works, start_s: float, end_s: float, aggregation_s: float, wait_s: float, server: ServerSpec,
                server_latency_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every joule of one round with the interval it was spent over: (joules, from, to) arrays.

    The same joules as client_round_energy_j and server_round_energy_j, placed in time:
    compute power over the compute span; idle power over the rest of the client's work (from its
    start, download_start_s, which is the round's in synchronous rounds, to its compute and after it); a
    transfer's network energy evenly over its active span (after the latency, until its last bit
    or its stop); server idle power over the wait and the round up to the aggregation, aggregation
    power over the aggregation.
    """
    e, a, b = [], [], []

    def put(j, t0, t1):
        if j > 0:
            e.append(j), a.append(t0), b.append(t1)

    for w in works:
        spec, job_start_s = w.spec, w.download_start_s
        latency_s = spec.link.latency_s + server_latency_s
        if w.compute_s > 0:
            put(spec.compute_power_w * w.compute_s, w.compute_start_s, w.compute_end_s)
            put(spec.idle_power_w * (w.compute_start_s - job_start_s), job_start_s, w.compute_start_s)
            put(spec.idle_power_w * (w.end_s - w.compute_end_s), w.compute_end_s, w.end_s)
        else:
            put(spec.idle_power_w * (w.end_s - job_start_s), job_start_s, w.end_s)
        down_end_s, up_end_s = w.download_end_s, w.upload_end_s
        put(w.bits_down * spec.link.energy_per_bit_down_j, min(job_start_s + latency_s, down_end_s), down_end_s)
        put(w.bits_up * spec.link.energy_per_bit_up_j, min(w.upload_start_s + latency_s, up_end_s), up_end_s)
    agg_start_s = end_s - aggregation_s
    put(server.idle_power_w * (agg_start_s - (start_s - wait_s)), start_s - wait_s, agg_start_s)
    put(server.aggregation_power_w * aggregation_s, agg_start_s, end_s)
    return np.array(e, dtype=float), np.array(a, dtype=float), np.array(b, dtype=float)
