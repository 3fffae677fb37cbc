"""The Python entry points: load a scenario, simulate it, get tables and a summary back."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from simfl.build import build
from simfl.pricing import money
from simfl.config.scenario import Scenario
from simfl.errors import ScenarioError
from simfl.report.tables import clients_frame, rounds_frame, summarize, world_summary
from simfl.sim import SimInputs, run
from simfl.sim.streams import Streams
from simfl.sim.records import Chunk, RunRecords


@dataclass(frozen=True)
class SimResult:
    scenario: Scenario
    summary: dict
    rounds: pd.DataFrame
    clients: pd.DataFrame | None  # None when the rows were streamed to a client_sink
    records: RunRecords
    warnings: tuple[str, ...]  # as summary["warnings"]: estimates, missing power, rounds short of K
    inputs: SimInputs  # what the engine ran: clients with their steps, links, server


def simulate(scenario: Scenario, on_round: Callable[[int], None] | None = None,
             client_sink: Callable[[Chunk], None] | None = None) -> SimResult:
    """Run every round of a loaded scenario. One random stream per concern, all from scenario.seed.

    With `client_sink`, client-round rows are handed to it in column chunks as the run goes and
    are not kept (`result.clients` is None): memory stays flat however many client-rounds.
    """
    streams = Streams.from_seed(scenario.seed)
    built = build(scenario, streams)
    records = run(built.inputs, streams, on_round, client_sink)
    rounds = rounds_frame(records)
    clients = None if client_sink is not None else clients_frame(records)
    extra = {
        "population": built.inputs.population_size,
        "trainable_params": built.inputs.trainable_params,
        "bits_per_transfer": built.inputs.bits_per_transfer,
        "estimated_inputs": list(built.estimated_inputs),
    }
    summary = summarize(scenario, rounds, records.clients.status_counts, (*built.warnings, *records.notes), extra)
    summary.update(world_summary(scenario, records, summary["sim_time_s"], built.start_hours))
    figures_, price_warnings = money(scenario, summary["sim_time_s"], dict(records.group_bits), summary["kwh_total"])
    summary.update(figures_)
    summary["warnings"] += price_warnings
    check_finite(summary)
    return SimResult(scenario, summary, rounds, clients, records, tuple(summary["warnings"]), built.inputs)


# The inputs a figure is made of: what to look at when it comes out too large to hold.
_INPUTS_OF = {
    "sim_time_s": "rounds, step times, rates and latencies", "t_comp": "step times and local steps",
    "t_comm": "rates and latencies", "energy_j.client_compute": "the devices' training power and step times",
    "energy_j.client_idle": "the devices' idle power", "energy_j.network": "the networks' energy per bit",
    "energy_j.server": "the server's power", "kwh": "the power and energy per bit of devices and networks",
    "co2": "accounting.carbon_g_per_kwh or the carbon intensity file", "cost_energy": "accounting.price_per_kwh",
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


def check_finite(summary: dict) -> None:
    """Every figure of a summary is a finite number: one that overflowed to inf (or inf - inf = nan) from inputs
    such as 1e308 is bad input, said in one line naming the figure and its inputs, not a null in summary.json."""
    for path, v in _numbers({k: v for k, v in summary.items() if k != "warnings"}):
        if not math.isfinite(v):
            inputs = next((text for key, text in _INPUTS_OF.items() if path.startswith(key)), "the scenario's numbers")
            raise ScenarioError(f"{path} comes out {v} (too large to hold in a float); check {inputs}",
                                field="summary")


# The summary figures a replicated run reports (replicates.csv columns after `seed`, and summary["replicates"]).
REPLICATE_FIGURES = (
    "sim_time_s", "kwh_total", "co2_kg", "cost_energy", "cost_hardware", "cost_data", "cost_total", "capex",
    "rounds_completed", "rounds_without_update", "rounds_short_of_k",
    "granularity_mean", "granularity_total", "t_comp_total_s", "t_comm_total_s",
    "energy_j.client_compute", "energy_j.client_idle", "energy_j.network", "energy_j.server", "energy_j.total",
    "network_bits.down", "network_bits.up",
    "client_rounds.completed", "client_rounds.dropped", "client_rounds.late", "client_rounds.surplus",
    "client_rounds.offline",
)


def figures(summary: dict) -> dict:
    """The replicate figures of one summary, flat: {"sim_time_s": ..., "energy_j.total": ...}."""
    out = {}
    for name in REPLICATE_FIGURES:
        v = summary
        for part in name.split("."):
            v = v[part]
        out[name] = v
    return out


def replicate_stats(rows: list[dict]) -> dict:
    """Per figure: n, mean, sd and the 95 % Student-t interval of the mean over the replicates."""
    from simfl.stats import mean_ci

    return {name: mean_ci([r[name] for r in rows]) for name in REPLICATE_FIGURES}


def check_replicates(scenario: Scenario, replicates: int, field: str) -> None:
    """Replicates are whole runs, seeds seed..seed+N-1: at most MAX_POINTS of them, the last seed an int64."""
    from simfl.config.limits import INT64_MAX, MAX_POINTS, work_error

    if replicates > MAX_POINTS:
        raise ScenarioError(work_error("replicates", replicates, MAX_POINTS, "each is a whole run"), field=field)
    if scenario.seed + replicates - 1 > INT64_MAX:
        raise ScenarioError(f"seeds {scenario.seed}..{scenario.seed + replicates - 1} go past {INT64_MAX}, the largest "
                            "seed simfl holds; lower seed", field=field)


def simulate_replicates(scenario: Scenario, replicates: int, on_round: Callable[[int], None] | None = None,
                        client_sink: Callable[[Chunk], None] | None = None) -> tuple[SimResult, list[dict]]:
    """Replicate i runs with seed scenario.seed + i. Returns the first replicate's full result (its client rows
    to `client_sink` if given) and one row of figures per replicate, `seed` first. The other replicates keep
    no client rows."""
    assert replicates >= 1
    check_replicates(scenario, replicates, "--replicates")
    rows, first = [], None
    for i in range(replicates):
        sc = scenario.model_copy(update={"seed": scenario.seed + i})
        result = simulate(sc, on_round, client_sink if i == 0 else (lambda _chunk: None))
        first = first or result
        rows.append({"seed": sc.seed, **figures(result.summary)})
    return first, rows
