"""Frozen rows the engine appends while it runs: one per client-round and one per round."""

from __future__ import annotations

from dataclasses import dataclass, field

NAN = float("nan")


@dataclass(frozen=True, slots=True)
class ClientRound:
    round: int
    client: int
    device: str
    network: str
    status: str  # completed | dropped | late | surplus (see engine.STATUSES)
    download_start_s: float
    download_end_s: float
    compute_start_s: float
    compute_end_s: float
    upload_start_s: float
    upload_end_s: float
    end_s: float  # when the client stopped working for this round
    compute_s: float
    bits_down: float
    bits_up: float
    energy_compute_j: float
    energy_idle_j: float
    energy_network_j: float


@dataclass(frozen=True, slots=True)
class RoundRecord:
    round: int
    start_s: float
    end_s: float
    clients_selected: int
    clients_completed: int
    clients_dropped: int
    clients_late: int
    clients_surplus: int
    aggregation_s: float
    t_comp_s: float  # longest compute among the aggregated (completed) clients; 0 when none
    t_comm_s: float  # the rest of the round: duration - t_comp_s
    granularity: float  # t_comp_s / t_comm_s; NaN when the round aggregated nothing
    bits_down: float
    bits_up: float
    energy_network_j: float
    energy_client_compute_j: float
    energy_client_idle_j: float
    energy_server_j: float


@dataclass
class RunRecords:
    rounds: list[RoundRecord] = field(default_factory=list)
    clients: list[ClientRound] = field(default_factory=list)
