"""The typed figures of a run's summary: frozen dataclasses, each also readable as the mapping summary.json holds.

Readers (the console table, report.html, the plots, sweeps and plans) read the attributes and compute
nothing; `to_dict()` (and item access, `summary["energy_j"]["total"]`) gives the summary.json shape, in
its key order. Figures shown in other units than summary.json's (kWh per part, hours, GB) are held here
too, made with the rest in simfl/summary/make.py, so that no reader converts one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

# The figures a replicated run reports (replicates.csv columns after `seed`, summary.json's `replicates`) and
# that a sweep's table and a plan's objective and constraints read, as dotted names of summary.json keys.
FIGURES = (
    "sim_time_s", "kwh_total", "co2_kg", "co2_embodied_kg", "co2_total_kg", "cost_energy", "cost_hardware", "cost_data", "cost_total", "capex",
    "rounds_completed", "rounds_without_update", "rounds_short_of_k",
    "granularity_mean", "granularity_total", "t_comp_total_s", "t_comm_total_s",
    "energy_j.client_compute", "energy_j.client_idle", "energy_j.network", "energy_j.server", "energy_j.total",
    "network_bits.down", "network_bits.up",
    "client_rounds.completed", "client_rounds.dropped", "client_rounds.late", "client_rounds.surplus",
    "client_rounds.offline",
)


_SCALARS = (float, int, str, bool, type(None))


def plain(v: Any) -> Any:
    """A figure as summary.json holds it: typed parts as dicts, tuples as lists."""
    if isinstance(v, _SCALARS):  # most values, tested first: a Part is an ABC, whose check is slow (a plan makes
        return v  # a summary per replicate and turns it into a dict to check it is finite)
    if isinstance(v, Part):
        return v.to_dict()
    if isinstance(v, (tuple, list)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v


_KEYS: dict[type, tuple[str, ...]] = {}  # a Part class -> its summary.json keys


class Part(Mapping):
    """A typed part of the summary, read-only as a mapping of its summary.json keys (values as plain data)."""

    HIDDEN: ClassVar[frozenset[str]] = frozenset()  # fields summary.json does not hold (other units)

    def keys_present(self) -> tuple[str, ...]:
        keys = _KEYS.get(type(self))
        if keys is None:  # once per class: dataclasses.fields() walks the class each call
            keys = _KEYS[type(self)] = tuple(f.name for f in fields(self) if f.name not in self.HIDDEN)
        return keys

    def value(self, key: str) -> Any:
        return getattr(self, key)

    def to_dict(self) -> dict:
        return {k: plain(self.value(k)) for k in self.keys_present()}

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys_present():
            raise KeyError(key)
        return plain(self.value(key))

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys_present())

    def __len__(self) -> int:
        return len(self.keys_present())

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return all(getattr(self, f.name) == getattr(other, f.name) for f in fields(self))
        if isinstance(other, Mapping):
            return self.to_dict() == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # compared like the dict it reads as


@dataclass(frozen=True, eq=False)
class EnergyJ(Part):
    client_compute: float
    client_idle: float
    network: float
    server: float
    total: float


@dataclass(frozen=True, eq=False)
class EnergyKWh(Part):
    """energy_j in kWh, as the console, the report and energy.png show it."""
    client_compute: float
    client_idle: float
    network: float
    server: float
    total: float

    def parts(self) -> dict[str, float]:
        """The four parts, without the total."""
        return {k: v for k, v in self.to_dict().items() if k != "total"}


@dataclass(frozen=True, eq=False)
class NetworkBits(Part):
    down: float
    up: float


@dataclass(frozen=True, eq=False)
class NetworkGB(Part):
    """network_bits in GB (10^9 bytes)."""
    down: float
    up: float


@dataclass(frozen=True, eq=False)
class ClientRounds(Part):
    """Client-rounds by status (see simfl/sim/job.py STATUSES)."""
    completed: int
    dropped: int
    late: int
    surplus: int
    offline: int
    stale: int


@dataclass(frozen=True, eq=False)
class EstimatedInput(Part):
    field: str
    input: str
    reason: str
    log_sd: float | None = None  # a predicted step time's error as a lognormal log-sd: replicates draw it


@dataclass(frozen=True, eq=False)
class GroupFigures(Part):
    group: int
    device: str
    network: str
    count: int
    client_rounds: int
    aggregated: int
    participation: float | None  # share of all aggregated updates; None when nothing was aggregated


@dataclass(frozen=True, eq=False)
class CellDirection(Part):
    bits: float
    utilisation: float | None  # bits / (capacity x simulated time); None for a run of no time


@dataclass(frozen=True, eq=False)
class CellFigures(Part):
    HIDDEN = frozenset({"name"})
    name: str
    down: CellDirection
    up: CellDirection


@dataclass(frozen=True, eq=False)
class StartHour(Part):
    start_time: str
    co2_kg: float


@dataclass(frozen=True, eq=False)
class CarbonStartHours(Part):
    best: StartHour
    worst: StartHour
    hours: tuple[StartHour, ...]
    note: str


@dataclass(frozen=True, eq=False)
class HardwareCost(Part):
    field: str
    device: str
    count: int
    per_hour: float | None  # None where a purchase is charged whole
    cost: float
    bought: bool
    charge: str  # life_share, rental, purchase, or "purchase / N jobs"


@dataclass(frozen=True, eq=False)
class EmbodiedCO2(Part):
    """One held device's embodied carbon: its figure each, and what the job is charged (kg None: not counted, no
    source publishes one)."""

    field: str
    device: str
    count: int
    co2e_kg_each: float | None
    kg: float | None
    source: str | None


@dataclass(frozen=True, eq=False)
class DataCost(Part):
    field: str
    network: str
    gb: float
    per_gb: float
    cost: float


@dataclass(frozen=True, eq=False)
class Costs(Part):
    hardware: tuple[HardwareCost, ...]
    data: tuple[DataCost, ...]


@dataclass(frozen=True, eq=False)
class FigureStats(Part):
    """One figure over the replicates: mean, sd (n - 1), the 95 % Student-t interval of the mean, and the 5th
    and 95th percentiles of the replicates (what a plan's constraints are checked at)."""
    HIDDEN = frozenset({"p05", "p95"})
    n: int
    mean: float | None
    sd: float | None
    ci95_low: float | None
    ci95_high: float | None
    p05: float | None
    p95: float | None


@dataclass(frozen=True, eq=False)
class ReplicateStats(Part):
    """summary.json's `replicates`: count, seeds, then one FigureStats per name of FIGURES."""
    count: int
    seeds: tuple[int, ...]
    figures: tuple[tuple[str, FigureStats], ...]

    def keys_present(self) -> tuple[str, ...]:
        return ("count", "seeds", *(name for name, _ in self.figures))

    def value(self, key: str) -> Any:
        return dict(self.figures)[key] if key not in ("count", "seeds") else getattr(self, key)

    def of(self, name: str) -> FigureStats:
        return dict(self.figures)[name]


@dataclass(frozen=True, eq=False)
class Summary(Part):
    """Every figure of one run. Made by simfl.summary.summarize from the run's records; read, never re-derived."""
    scenario: str
    seed: int
    mode: str
    rounds_completed: int
    rounds_without_update: int
    rounds_short_of_k: int
    sim_time_s: float
    granularity_mean: float | None
    granularity_total: float | None
    t_comp_total_s: float
    t_comm_total_s: float
    network_bits: NetworkBits
    energy_j: EnergyJ
    energy_kwh: EnergyKWh  # summary.json holds only its total, as kwh_total
    kwh_network_per_round_mean: float
    co2_kg: float  # operational: each joule at the grid intensity of its instant
    co2_embodied_kg: float  # the held devices' embodied carbon charged to the job (those with a figure)
    cost_energy: float
    currency: str
    client_rounds: ClientRounds
    warnings: tuple[str, ...]
    population: int
    trainable_params: int
    bits_per_transfer: float
    estimated_inputs: tuple[EstimatedInput, ...]
    groups: tuple[GroupFigures, ...]
    cells: tuple[CellFigures, ...]
    carbon_start_hours: CarbonStartHours | None
    cost_hardware: float
    cost_data: float
    cost_total: float
    capex: float
    costs: Costs
    embodied: tuple[EmbodiedCO2, ...]
    sim_time_h: float  # sim_time_s in hours, as shown
    network_gb: NetworkGB  # network_bits in GB, as shown
    replicates: ReplicateStats | None = None

    JSON_KEYS: ClassVar[tuple[str, ...]] = (
        "scenario", "seed", "mode", "rounds_completed", "rounds_without_update", "rounds_short_of_k", "sim_time_s",
        "granularity_mean", "granularity_total", "t_comp_total_s", "t_comm_total_s", "network_bits", "energy_j",
        "kwh_total", "kwh_network_per_round_mean", "co2_kg", "co2_embodied_kg", "co2_total_kg", "cost_energy", "currency", "client_rounds", "warnings",
        "population", "trainable_params", "bits_per_transfer", "estimated_inputs", "groups", "cells",
        "carbon_start_hours", "cost_hardware", "cost_data", "cost_total", "capex", "costs", "embodied", "replicates",
    )

    @property
    def kwh_total(self) -> float:
        return self.energy_kwh.total

    @property
    def co2_total_kg(self) -> float:
        """Operational and embodied CO2 (the embodied of devices with a figure)."""
        return self.co2_kg + self.co2_embodied_kg

    @property
    def embodied_not_counted(self) -> tuple[str, ...]:
        """The held devices whose embodied carbon no source gives, so not in co2_embodied_kg."""
        return tuple(dict.fromkeys(e.device for e in self.embodied if e.kg is None))

    def keys_present(self) -> tuple[str, ...]:
        optional = ("carbon_start_hours", "replicates")  # only with a carbon file, only with replicates
        return tuple(k for k in self.JSON_KEYS if k not in optional or getattr(self, k) is not None)

    def value(self, key: str) -> Any:
        if key == "cells":
            return {c.name: c for c in self.cells}
        return getattr(self, key)

    def figure(self, name: str) -> Any:
        """One of FIGURES by its dotted name: figure("energy_j.total")."""
        v: Any = self
        for part in name.split("."):
            v = getattr(v, part)
        return v

    def figures(self) -> dict[str, Any]:
        """FIGURES of this run, flat: {"sim_time_s": ..., "energy_j.total": ...}."""
        return {name: self.figure(name) for name in FIGURES}

    def with_warnings(self, more: tuple[str, ...] | list[str]) -> "Summary":
        """This summary with `more` warnings after its own (the CLI's host warnings)."""
        return replace(self, warnings=(*self.warnings, *more))

    def with_replicates(self, stats: ReplicateStats) -> "Summary":
        """This run's summary with the statistics of the replicates it is the first of."""
        return replace(self, replicates=stats)
