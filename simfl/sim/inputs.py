"""Resolved engine inputs: plain frozen objects built from a scenario, nothing left to look up."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """A network attachment: its rates, latency and per-bit energy of the path behind it."""

    name: str
    downlink_bps: float
    uplink_bps: float
    latency_s: float
    energy_per_bit_down_j: float = 0.0
    energy_per_bit_up_j: float = 0.0

    def __post_init__(self) -> None:
        assert self.downlink_bps > 0 and self.uplink_bps > 0, "link rates must be positive"
        assert self.latency_s >= 0, "latency must not be negative"


@dataclass(frozen=True, slots=True)
class ClientSpec:
    client_id: int
    device: str
    link: LinkSpec
    steps: int
    step_time_s: float
    compute_power_w: float
    idle_power_w: float
    cell: str | None = None

    @property
    def compute_s(self) -> float:
        return self.steps * self.step_time_s


@dataclass(frozen=True, slots=True)
class ServerSpec:
    device: str
    link: LinkSpec
    idle_power_w: float
    aggregation_power_w: float
    aggregation_params_per_s: float


@dataclass(frozen=True)
class SimInputs:
    """Everything one run needs. Cells map a name to (downlink_bps, uplink_bps) capacity."""

    clients: tuple[ClientSpec, ...]
    server: ServerSpec
    trainable_params: int
    bits_per_transfer: int
    clients_per_round: int
    clients_selected: int
    rounds: int
    deadline_s: float | None = None
    dropout_prob: float = 0.0
    cells: dict[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert 0 < self.clients_per_round <= self.clients_selected <= len(self.clients)
        assert 0.0 <= self.dropout_prob <= 1.0
        for i, c in enumerate(self.clients):
            assert c.client_id == i, "client ids are their positions in `clients`"
            assert c.cell is None or c.cell in self.cells, f"client {c.client_id} names unknown cell {c.cell}"
