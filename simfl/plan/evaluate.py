"""One point of a sweep or plan: the scenario with its overrides, simulated (replicated), as one flat row.
A plain function of plain arguments, so a process pool or Ray can run it anywhere."""

from __future__ import annotations

from typing import Any

import numpy as np

from simfl.errors import ScenarioError

# Extra columns with replicates: the 95 % CI of the mean, and the 5th and 95th percentiles of the replicates
# (constraints of a plan hold at the percentile on their safe side).
SUFFIXES = ("ci_low", "ci_high", "p05", "p95")


STOPPED = "the run stopped after"  # how the engine's note on a run that ended early begins (simfl/sim)


def evaluate_point(scenario_path: str, overrides: dict[str, Any], replicates: int = 1) -> dict:
    """{"status": "ok", figure: value, ...}; {"status": "stopped", "error": the engine's note, figures...} when
    a run ended before its rounds (no client available ever again, no progress): it did not do what the
    scenario asked; {"status": "invalid", "error": one line} when the point cannot run (out of memory, too
    few clients, a bad value); {"status": "error", "error": "Type: message"} when it raised anything else
    (an overflow, memory, a bug): that point's row, and the sweep goes on."""
    try:
        return _evaluate(scenario_path, overrides, replicates)
    except ScenarioError as e:
        return {"status": "invalid", "error": ": ".join(p for p in (e.field, e.message) if p)}
    except Exception as e:  # noqa: BLE001: one point's failure, whatever it is, is that point's row
        lines = str(e).strip().splitlines()
        text = f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__
        return {"status": "error", "error": text if len(text) <= 300 else text[:297] + "..."}


def _evaluate(scenario_path: str, overrides: dict[str, Any], replicates: int) -> dict:
    from simfl.api import check_replicates, simulate
    from simfl.config.load import load_scenario
    from simfl.stats import mean_ci

    base = load_scenario(scenario_path, overrides)
    check_replicates(base, replicates, "replicates")
    rows, stopped = [], None
    for i in range(replicates):
        sc = base.model_copy(update={"seed": base.seed + i})
        summary = simulate(sc, client_sink=lambda _chunk: None).summary
        rows.append(summary.figures())
        if stopped is None and summary.rounds_completed < sc.federation.rounds:
            note = next((w for w in summary.warnings if w.startswith(STOPPED)),
                        f"{STOPPED} {summary.rounds_completed} of {sc.federation.rounds} rounds")
            stopped = note if replicates == 1 else f"seed {sc.seed}: {note}"
    out: dict[str, Any] = {"status": "ok", "error": None} if stopped is None else {"status": "stopped",
                                                                                 "error": stopped}
    for name in rows[0]:
        values = [r[name] for r in rows]
        if replicates == 1:
            out[name] = values[0]
            continue
        clean = [v for v in values if v is not None]
        if not clean:
            out.update({name: None, **{f"{name}_{s}": None for s in SUFFIXES}})
            continue
        ci = mean_ci(clean)
        out[name] = ci["mean"]
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = ci["ci95_low"], ci["ci95_high"]
        out[f"{name}_p05"], out[f"{name}_p95"] = (float(np.quantile(clean, q)) for q in (0.05, 0.95))
    return out
