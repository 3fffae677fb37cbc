"""One point of a sweep or plan: the scenario with its overrides, simulated (replicated), as one flat row.
A plain function of plain arguments, so a process pool or Ray can run it anywhere."""

from __future__ import annotations

from typing import Any

import numpy as np

from simfl.errors import ScenarioError

# Extra columns with replicates: the 95 % CI of the mean, and the 5th and 95th percentiles of the replicates
# (constraints of a plan hold at the percentile on their safe side).
SUFFIXES = ("ci_low", "ci_high", "p05", "p95")


def evaluate_point(scenario_path: str, overrides: dict[str, Any], replicates: int = 1) -> dict:
    """{"status": "ok", figure: value, ...}, or {"status": "invalid", "error": one line} when the point
    cannot run (out of memory, too few clients, a bad value)."""
    from simfl.api import figures, simulate
    from simfl.config.load import load_scenario
    from simfl.stats import mean_ci

    try:
        base = load_scenario(scenario_path, overrides)
        rows = []
        for i in range(replicates):
            sc = base.model_copy(update={"seed": base.seed + i})
            rows.append(figures(simulate(sc, client_sink=lambda _chunk: None).summary))
    except ScenarioError as e:
        return {"status": "invalid", "error": ": ".join(p for p in (e.field, e.message) if p)}
    out: dict[str, Any] = {"status": "ok", "error": None}
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
