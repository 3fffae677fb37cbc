"""The Python entry points: load a scenario, simulate it (replicated or not), get its Summary and tables back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from simfl.build import build
from simfl.config.scenario import Scenario
from simfl.errors import ScenarioError
from simfl.sim import SimInputs, run
from simfl.sim.engine import KernelError
from simfl.sim.records import Chunk, RunRecords
from simfl.uncertainty import Draws
from simfl.sim.streams import Streams
from simfl.summary import Summary, summarize

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class SimResult:
    """A run: its typed Summary (every figure), its records, and the tables made from them when first asked for."""
    scenario: Scenario
    summary: Summary  # summary.to_dict() is summary.json; summary["energy_j"]["total"] reads it as a mapping
    records: RunRecords
    inputs: SimInputs  # what the engine ran: clients with their steps, links, server

    @property
    def warnings(self) -> tuple[str, ...]:
        """As summary.warnings: estimates, missing power, rounds short of K, what has no price."""
        return self.summary.warnings

    @cached_property
    def rounds(self) -> pd.DataFrame:
        from simfl.report.tables import rounds_frame

        return rounds_frame(self.records)

    @cached_property
    def clients(self) -> pd.DataFrame | None:
        """None when the rows were streamed to a client_sink."""
        from simfl.report.tables import clients_frame

        return None if self.records.clients.sink is not None else clients_frame(self.records)


def simulate(scenario: Scenario, on_round: Callable[[int], None] | None = None,
             client_sink: Callable[[Chunk], None] | None = None, draws: Draws | None = None) -> SimResult:
    """Run every round of a loaded scenario. One random stream per concern, all from scenario.seed.

    With `client_sink`, client-round rows are handed to it in column chunks as the run goes and
    are not kept (`result.clients` is None): memory stays flat however many client-rounds.
    """
    streams = Streams.from_seed(scenario.seed)
    built = build(scenario, streams, draws)
    try:
        records = run(built.inputs, streams, on_round, client_sink)
    except KernelError as e:  # the environment asked for a kernel these inputs cannot have: bad input
        raise ScenarioError(str(e), field="SIMFL_KERNEL") from None
    return SimResult(scenario, summarize(scenario, built, records), records, built.inputs)


def check_replicates(scenario: Scenario, replicates: int, field: str) -> None:
    """Replicates are whole runs, seeds seed..seed+N-1: at most MAX_POINTS of them, the last seed an int64."""
    from simfl.config.limits import INT64_MAX, MAX_POINTS, work_error

    if replicates > MAX_POINTS:
        raise ScenarioError(work_error("replicates", replicates, MAX_POINTS, "each is a whole run"), field=field)
    if scenario.seed + replicates - 1 > INT64_MAX:
        raise ScenarioError(f"seeds {scenario.seed}..{scenario.seed + replicates - 1} go past {INT64_MAX}, the largest "
                            "seed simfl holds; lower seed", field=field)


def simulate_replicates(scenario: Scenario, replicates: int, on_round: Callable[[int], None] | None = None,
                        client_sink: Callable[[Chunk], None] | None = None,
                        field: str = "--replicates", epistemic: bool = True) -> tuple[SimResult, tuple[Summary, ...]]:
    """Replicate i runs with seed scenario.seed + i (`simfl run --replicates` and every sweep or plan point) and,
    with more than one replicate and `epistemic`, draw i of every predicted step time's error
    (simfl/uncertainty.py: the same draw for the same device in replicate i of every run of this base seed).
    Returns the first replicate's full result (its client rows to `client_sink` if given) and every
    replicate's Summary, in seed order; the other replicates keep no client rows. `field` names the option
    or key that asked for the replicates in an error."""
    assert replicates >= 1
    check_replicates(scenario, replicates, field)
    summaries, first = [], None
    for i in range(replicates):
        sc = scenario.model_copy(update={"seed": scenario.seed + i})
        draws = Draws(scenario.seed, i) if epistemic and replicates > 1 else None
        result = simulate(sc, on_round, client_sink if i == 0 else (lambda _chunk: None), draws)
        first = first or result
        summaries.append(result.summary)
    return first, tuple(summaries)
