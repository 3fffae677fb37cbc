"""The Python entry points: load a scenario, simulate it, get tables and a summary back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from simfl.build import build
from simfl.config.scenario import Scenario
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
    return SimResult(scenario, summary, rounds, clients, records, tuple(summary["warnings"]), built.inputs)
