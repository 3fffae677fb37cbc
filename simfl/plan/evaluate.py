"""One point of a sweep or plan: the scenario with its overrides, simulated (replicated), as one flat row.
A plain function of plain, picklable arguments (the base scenario as read once, or its path, or the key of a base
the worker holds), so a process pool or Ray can run it anywhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simfl.errors import ScenarioError

# Extra columns with replicates: the 95 % CI of the mean, and the 5th and 95th percentiles of the replicates
# (constraints of a plan hold at the percentile on their safe side).
SUFFIXES = {"ci_low": "ci95_low", "ci_high": "ci95_high", "p05": "p05", "p95": "p95"}  # -> FigureStats


STOPPED = "the run stopped after"  # how the engine's note on a run that ended early begins (simfl/sim)


@dataclass(frozen=True)
class Held:
    """A base scenario this process holds already, by key: a pool worker is given its plan's base once, when it
    starts, and a Ray worker keeps it from its first point, so a point's job carries only its overrides and the
    base's lookups (where each data file was found, config.load.ScenarioSource.found) stay warm from point to
    point."""
    key: str


_HELD: dict[str, Any] = {}  # key -> the base (a config.load.ScenarioSource) this process holds
_HELD_MAX = 8  # a long-lived Ray worker serves plan after plan: the oldest base goes first


def hold(key: str, base: Any) -> None:
    while len(_HELD) >= _HELD_MAX:
        del _HELD[next(iter(_HELD))]
    _HELD[key] = base


def is_held(key: str) -> bool:
    return key in _HELD


def evaluate_point(scenario, overrides: dict[str, Any], replicates: int = 1) -> dict:
    """{"status": "ok", figure: value, ...}; {"status": "stopped", "error": the engine's note, figures...} when
    a run ended before its rounds (no client available ever again, no progress): it did not do what the
    scenario asked; {"status": "invalid", "error": one line} when the point cannot run (out of memory, too
    few clients, a bad value); {"status": "error", "error": "Type: message"} when it raised anything else
    (an overflow, memory, a bug): that point's row, and the sweep goes on."""
    try:
        return _evaluate(_HELD[scenario.key] if isinstance(scenario, Held) else scenario, overrides, replicates)
    except ScenarioError as e:
        return {"status": "invalid", "error": ": ".join(p for p in (e.field, e.message) if p)}
    except Exception as e:  # noqa: BLE001: one point's failure, whatever it is, is that point's row
        lines = str(e).strip().splitlines()
        text = f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__
        return {"status": "error", "error": text if len(text) <= 300 else text[:297] + "..."}


REPLICATE_VALUES = "replicate_values"  # a row's per-replicate figures (kept in the journal and plan.json only)


def _evaluate(scenario, overrides: dict[str, Any], replicates: int) -> dict:
    from simfl.api import simulate_replicates
    from simfl.config.load import ScenarioSource
    from simfl.summary import replicate_stats

    source = scenario if isinstance(scenario, ScenarioSource) else ScenarioSource.read(scenario)
    base = source.load(overrides)
    _, summaries = simulate_replicates(base, replicates, client_sink=lambda _chunk: None, field="replicates",
                                       epistemic=source.epistemic)
    stopped = None
    for s in summaries:  # (a replicate may draw its rounds to the target: the engine's note says it stopped short)
        note = next((w for w in s.warnings if w.startswith(STOPPED)), None)
        if note is not None:
            stopped = note if replicates == 1 else f"seed {s.seed}: {note}"
            break
    out: dict[str, Any] = {"status": "ok", "error": None} if stopped is None else {"status": "stopped",
                                                                                 "error": stopped}
    if replicates == 1:
        return {**out, **summaries[0].figures()}
    for name, f in replicate_stats(summaries).figures:
        out[name] = f.mean
        out.update({f"{name}_{suffix}": getattr(f, attr) for suffix, attr in SUFFIXES.items()})
    # each replicate's figures, in replicate order: replicate i of every point drew the same inputs (common random
    # numbers), so a plan can say in how many draws its recommendation wins (search.confidence); not a table column
    figures = [s.figures() for s in summaries]
    out[REPLICATE_VALUES] = {name: [f[name] for f in figures] for name in figures[0]}
    return out
