"""The one place a run's Summary is made: from its round records and counters, with numpy, money from pricing."""

from __future__ import annotations

import math

import numpy as np

from simfl.config.scenario import Scenario
from simfl.costs import kwh
from simfl.errors import ScenarioError
from simfl.pricing import embodied, money
from simfl.sim.job import STATUSES
from simfl.sim.records import RunRecords
from simfl.summary.figures import (
    CarbonStartHours, CellDirection, CellFigures, ClientRounds, Costs, DataCost, EmbodiedCO2, EnergyJ, EnergyKWh,
    EstimatedInput, GroupFigures, HardwareCost, NetworkBits, NetworkGB, Part, StartHour, Summary,
)
from simfl.summary.shortfall import Columns, run_warnings

SECONDS_PER_HOUR = 3600
BITS_PER_GB = 8e9  # 10^9 bytes, as data is priced
G_PER_KG = 1000.0

_COLUMNS = ("round", "end_s", "clients_selected", "clients_completed", "clients_dropped", "clients_late",
            "clients_offline", "clients_stale", "granularity", "t_comp_s", "t_comm_s", "bits_down", "bits_up",
            "energy_network_j", "energy_client_compute_j", "energy_client_idle_j", "energy_server_j", "co2_g")


def round_columns(records: RunRecords) -> Columns:
    """The round-record fields the summary reads, one array each (numpy infers the dtypes as pandas does)."""
    return {name: np.array([getattr(r, name) for r in records.rounds]) for name in _COLUMNS}


def total(values: np.ndarray) -> float:
    """The sum with NaN counted as 0: the same pairwise sum, bit for bit, as a pandas column's sum()."""
    if values.dtype.kind == "f":
        values = np.where(np.isnan(values), 0.0, values)
    return float(values.sum())


def summarize(scenario: Scenario, built, records: RunRecords) -> Summary:
    """Every figure of a run from what it built (`simfl.build.Built`) and what it recorded."""
    rounds = round_columns(records)
    n = len(records.rounds)
    k = scenario.federation.clients_per_round
    parts = [total(rounds[c]) for c in ("energy_client_compute_j", "energy_client_idle_j", "energy_network_j",
                                         "energy_server_j")]
    e = EnergyJ(*parts, total=parts[0] + parts[1] + parts[2] + parts[3])
    g = rounds["granularity"]
    g_finite = g[np.isfinite(g)] if g.dtype.kind == "f" else g
    t_comp, t_comm = total(rounds["t_comp_s"]), total(rounds["t_comm_s"])
    done = rounds["clients_completed"]
    sim_time_s = float(rounds["end_s"].max()) if n else 0.0
    bits = NetworkBits(total(rounds["bits_down"]), total(rounds["bits_up"]))
    price, price_warnings = money(scenario, sim_time_s, dict(records.group_bits), kwh(e.total), dict(built.price_factors))
    embodied_kg, embodied_rows = embodied(scenario, sim_time_s)
    warnings = (*built.warnings, *records.notes, *run_warnings(rounds, scenario), *price_warnings)
    summary = Summary(
        scenario=scenario.name, seed=scenario.seed, mode=scenario.federation.mode, rounds_completed=n,
        rounds_without_update=int((done == 0).sum()), rounds_short_of_k=int((done < k).sum()),
        sim_time_s=sim_time_s,
        granularity_mean=float(g_finite.sum() / len(g_finite)) if len(g_finite) else None,
        granularity_total=t_comp / t_comm if t_comm > 0 and done.any() else None,
        t_comp_total_s=t_comp, t_comm_total_s=t_comm, network_bits=bits, energy_j=e,
        energy_kwh=EnergyKWh(kwh(e.client_compute), kwh(e.client_idle), kwh(e.network), kwh(e.server), kwh(e.total)),
        kwh_network_per_round_mean=kwh(e.network) / n if n else 0.0,
        # each joule at the grid intensity of the instant it was spent (a flat intensity without a file)
        co2_kg=total(rounds["co2_g"]) / G_PER_KG,
        co2_embodied_kg=embodied_kg,
        cost_energy=price["cost_energy"], currency=price["currency"],
        client_rounds=ClientRounds(**{s: int(records.clients.status_counts.get(s, 0)) for s in STATUSES}),
        warnings=warnings, population=built.inputs.population_size,
        trainable_params=built.inputs.trainable_params, bits_per_transfer=built.inputs.bits_per_transfer,
        estimated_inputs=tuple(EstimatedInput(**x) for x in built.estimated_inputs),
        groups=_groups(scenario, records), cells=_cells(scenario, records, sim_time_s),
        carbon_start_hours=_start_hours(scenario, records, built.start_hours),
        cost_hardware=price["cost_hardware"], cost_data=price["cost_data"], cost_total=price["cost_total"],
        capex=price["capex"],
        costs=Costs(tuple(HardwareCost(**r) for r in price["costs"]["hardware"]),
                    tuple(DataCost(**r) for r in price["costs"]["data"])),
        embodied=tuple(EmbodiedCO2(**r) for r in embodied_rows),
        sim_time_h=sim_time_s / SECONDS_PER_HOUR,
        network_gb=NetworkGB(bits.down / BITS_PER_GB, bits.up / BITS_PER_GB),
    )
    check_finite(summary)
    return summary


def _groups(scenario: Scenario, records: RunRecords) -> tuple[GroupFigures, ...]:
    """Per fleet group: its client-rounds, its aggregated updates and their share of all aggregated."""
    aggregated = sum(records.aggregated_by_group.values())
    out = []
    for gi, g in enumerate(scenario.fleet):
        done = records.aggregated_by_group.get(gi, 0)
        out.append(GroupFigures(gi, g.device, g.network, g.count, records.selected_by_group.get(gi, 0), done,
                                done / aggregated if aggregated else None))
    return tuple(out)


def _cells(scenario: Scenario, records: RunRecords, sim_time_s: float) -> tuple[CellFigures, ...]:
    """Per radio cell and direction: bits moved and the share of its capacity over the run."""
    out = []
    for name, cell in scenario.cells.items():
        cap = {"down": cell.downlink_bps, "up": cell.uplink_bps}
        way = {d: CellDirection(records.cell_bits.get((name, d), 0.0),
                                records.cell_bits.get((name, d), 0.0) / (cap[d] * sim_time_s)
                                if sim_time_s > 0 else None) for d in ("down", "up")}
        out.append(CellFigures(name, way["down"], way["up"]))
    return tuple(out)


def _start_hours(scenario: Scenario, records: RunRecords, start_hours: tuple[str, ...]) -> CarbonStartHours | None:
    """With a carbon file: the run's CO2 had it started at each hour of the day, the best and the worst."""
    if not start_hours:
        return None
    kg = [g / G_PER_KG for g in records.co2_g_by_shift] or [0.0] * len(start_hours)
    hours = tuple(StartHour(h, c) for h, c in zip(start_hours, kg))
    best, worst = min(hours, key=lambda h: h.co2_kg), max(hours, key=lambda h: h.co2_kg)
    note = "the same schedule repriced at each start hour"
    if any(g.availability.kind == "diurnal" for g in scenario.fleet):
        note += ("; availability here is diurnal, so starting at another hour would also change the "
                 "schedule: indicative only")
    return CarbonStartHours(best, worst, hours, note)


# The inputs a figure is made of: what to look at when it comes out too large to hold.
_INPUTS_OF = {
    "sim_time_s": "rounds, step times, rates and latencies", "t_comp": "step times and local steps",
    "t_comm": "rates and latencies", "energy_j.client_compute": "the devices' training power and step times",
    "energy_j.client_idle": "the devices' idle power", "energy_j.network": "the networks' energy per bit",
    "energy_j.server": "the server's power", "kwh": "the power and energy per bit of devices and networks",
    "co2_embodied": "the devices' embodied carbon", "co2_total": "every power, carbon intensity and embodied figure",
    "embodied": "the devices' embodied carbon", "co2": "accounting.carbon_g_per_kwh or the carbon intensity file", "cost_energy": "accounting.price_per_kwh",
    "cost_hardware": "the devices' prices (and the simulated time)", "cost_data": "the networks' data prices",
    "capex": "the devices' purchase prices", "costs": "prices and exchange rates", "cost_total": "every price",
}


def _numbers(x, path=""):
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _numbers(v, f"{path}.{k}" if path else str(k))
    elif isinstance(x, (list, tuple)):
        for i, v in enumerate(x):
            yield from _numbers(v, f"{path}[{i}]")
    elif isinstance(x, float):
        yield path, x


def _floats(x, out: list) -> None:
    """Every float in x (a Part, mapping, list or tuple, nested), in no particular order."""
    if isinstance(x, float):
        out.append(x)
    elif isinstance(x, (str, int)) or x is None:
        return
    elif isinstance(x, dict):
        for v in x.values():
            _floats(v, out)
    elif isinstance(x, (list, tuple)):
        for v in x:
            _floats(v, out)
    elif isinstance(x, Part):
        for k in x.keys_present():
            _floats(x.value(k), out)


def check_finite(summary: Summary | dict) -> None:
    """Every figure of a summary is a finite number: one that overflowed to inf (or inf - inf = nan) from inputs
    such as 1e308 is bad input, said in one line naming the figure and its inputs, not a null in summary.json.
    A Summary is checked as it is first (a plan checks one per replicate: walking its summary.json with paths
    was a third of making it) and walked with paths only to name a figure that is not finite."""
    if isinstance(summary, Summary):
        floats: list[float] = []
        for k in summary.keys_present():
            if k != "warnings":
                _floats(summary.value(k), floats)
        if all(map(math.isfinite, floats)):
            return
        summary = summary.to_dict()
    for path, v in _numbers({k: v for k, v in summary.items() if k != "warnings"}):
        if not math.isfinite(v):
            inputs = next((text for key, text in _INPUTS_OF.items() if path.startswith(key)), "the scenario's numbers")
            raise ScenarioError(f"{path} comes out {v} (too large to hold in a float); check {inputs}",
                                field="summary")
