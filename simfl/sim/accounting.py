"""Energy over a client-round's spans and a round's server time: pure functions, joules out."""

from __future__ import annotations

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
