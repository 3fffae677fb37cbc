"""Rounds to a target as a function of the federation: measured rounds-to-target (a CSV of real training
runs) and the law fitted to them, rounds = a x K^-b x s^-c (K clients a round, s local steps), optionally
levelled to an anchor (a published round count at one K and s).

A scenario asks for it with `federation.rounds: {convergence: FILE.csv}` (plus `anchor:` and
`server_optimizer:` when needed); the loader replaces that by the number of rounds, and says how it got it.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simfl.errors import ScenarioError, short
from simfl.safeio import TABLE_MAX_BYTES, read_text

COLUMNS = ("clients_per_round", "local_steps", "dirichlet_alpha", "server_optimizer", "rounds_to_target")


@dataclass(frozen=True)
class Law:
    """log rounds = log a - b log K - c log s, fitted by least squares to the measured rows."""

    a: float
    b: float
    c: float
    points: int
    max_abs_log_error: float  # the fit's worst point, as |log(predicted / measured)|
    k_range: tuple[int, int]
    s_range: tuple[int, int]

    def rounds(self, k: int, s: int) -> float:
        return self.a * k ** -self.b * s ** -self.c


def _at_least_one(text: str, name: str, where: str, field: str, whole: bool = True) -> float:
    """A count of clients or steps (whole) or of rounds (a mean of runs may be fractional): finite, >= 1."""
    try:
        x = float(text)
    except ValueError:
        x = math.nan
    if not (math.isfinite(x) and x >= 1 and (x == int(x) or not whole)):
        what = "a whole number >= 1" if whole else "a number of rounds >= 1"
        raise ScenarioError(f"{where}: {name} must be {what} (got {short(text)})", field=field)
    return x


def read_table(path: Path, field: str) -> tuple[list[dict], str]:
    """The rows and the `# source:` line of a convergence CSV; a row with an empty rounds_to_target is a
    run that did not reach the target (rounds_to_target None). Errors name the file's line and the value."""
    text = read_text(path, field=field, what="convergence table", max_bytes=TABLE_MAX_BYTES)
    lines = text.splitlines()
    comments = [ln[1:].strip() for ln in lines if ln.startswith("#")]
    source = next((c[len("source:"):].strip() for c in comments if c.startswith("source:")), None)
    if not source:
        raise ScenarioError(f"{path} has no '# source:' line saying where its rounds come from", field=field)
    body = [(n, ln) for n, ln in enumerate(lines, 1) if ln.strip() and not ln.startswith("#")]
    if not body:
        raise ScenarioError(f"{path} has no header row; it needs {', '.join(COLUMNS)}", field=field)
    header = [c.strip() for c in next(csv.reader([body[0][1]]))]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ScenarioError(f"{path} lacks column(s) {', '.join(missing)}; it needs {', '.join(COLUMNS)}",
                            field=field)
    rows = []
    for n, line in body[1:]:
        cells = [c.strip() for c in next(csv.reader([line]))]
        where = f"{path} line {n}"
        if len(cells) != len(header):
            raise ScenarioError(f"{where}: expected {len(header)} values, got {short(line)}", field=field)
        r = dict(zip(header, cells))
        try:
            alpha = float(r["dirichlet_alpha"])
        except ValueError:
            alpha = math.nan
        if not (math.isfinite(alpha) and alpha > 0):
            raise ScenarioError(f"{where}: dirichlet_alpha must be a positive number (got {short(r['dirichlet_alpha'])})",
                                field=field)
        reached = r["rounds_to_target"]
        rows.append({"clients_per_round": int(_at_least_one(r["clients_per_round"], "clients_per_round", where, field)),
                     "local_steps": int(_at_least_one(r["local_steps"], "local_steps", where, field)),
                     "dirichlet_alpha": alpha, "server_optimizer": r["server_optimizer"],
                     "rounds_to_target": _at_least_one(reached, "rounds_to_target", where, field, whole=False)
                     if reached else None})
    return rows, source


def fit_law(rows: list[dict]) -> Law:
    rows = [r for r in rows if r["rounds_to_target"] is not None]  # runs that reached the target
    ks = np.array([r["clients_per_round"] for r in rows], dtype=float)
    ss = np.array([r["local_steps"] for r in rows], dtype=float)
    y = np.log([r["rounds_to_target"] for r in rows])
    cols = [np.ones_like(ks)]
    vary_k, vary_s = len(set(ks)) > 1, len(set(ss)) > 1
    if vary_k:
        cols.append(-np.log(ks))
    if vary_s:
        cols.append(-np.log(ss))
    coef = np.linalg.lstsq(np.column_stack(cols), y, rcond=None)[0]
    b = float(coef[1]) if vary_k else 0.0
    c = float(coef[-1]) if vary_s else 0.0
    law = Law(float(np.exp(coef[0])), b, c, len(rows), 0.0, (int(ks.min()), int(ks.max())),
              (int(ss.min()), int(ss.max())))
    err = max(abs(math.log(law.rounds(r["clients_per_round"], r["local_steps"]) / r["rounds_to_target"]))
              for r in rows)
    return Law(law.a, b, c, len(rows), err, law.k_range, law.s_range)


def held_out_log_errors(rows: list[dict]) -> list[float]:
    """|log(predicted / measured)| of each run that reached its target, predicted by the law fitted to the others
    (leave one out); a run whose others cannot fit a law (fewer than two) gives none."""
    out = []
    for i, r in enumerate(rows):
        others = rows[:i] + rows[i + 1:]
        if len(others) < 2:
            continue
        law = fit_law(others)
        out.append(abs(math.log(law.rounds(r["clients_per_round"], r["local_steps"]) / r["rounds_to_target"])))
    return out


def rounds_log_sd(exact: list[dict], reached: list[dict]) -> tuple[float | None, str]:
    """The log-sd of rounds-to-target as an uncertain input (simfl/uncertainty.py), and what it rests on: the
    spread of the runs measured at this very K and steps when there are several (seeds), else the law's held-out
    error stated as the hardware model's are: an 80 % interval, rounds x exp(±h), h the 80th percentile of the
    held-out |log errors| (simfl/stats.py), drawn with log-sd h / Z80."""
    from simfl.stats import interval_half_width, interval_text
    from simfl.uncertainty import log_sd_of

    if len(exact) >= 2:
        logs = np.log([r["rounds_to_target"] for r in exact])
        return float(np.std(logs, ddof=1)), f"the spread of the {len(exact)} runs measured there"
    errors = held_out_log_errors(reached)
    if not errors:
        return None, "too few runs to hold one out"
    h = interval_half_width(errors)
    return log_sd_of(h), f"the law's 80 % interval {interval_text(h)}, from {len(errors)} runs each held out"


def resolve_rounds(ref: dict, federation: dict, local_steps: int | None, file: Path) -> tuple[int, str, float | None]:
    """federation.rounds: {convergence: FILE, server_optimizer?, anchor?: {rounds, clients_per_round,
    local_steps}} -> (rounds, how they were found, their log-sd as an uncertain input or None)."""
    field = "federation.rounds"
    unknown = set(ref) - {"convergence", "server_optimizer", "anchor"}
    if unknown:
        raise ScenarioError(f"unknown key(s) {sorted(unknown)}; give convergence, and optionally server_optimizer "
                            "and anchor", field=field)
    if local_steps is None:
        raise ScenarioError("a convergence table is indexed by local steps: give training.local_steps", field=field)
    if isinstance(local_steps, bool) or not isinstance(local_steps, int) or local_steps < 1:
        raise ScenarioError(f"training.local_steps must be a whole number >= 1 (got {short(local_steps)})",
                            field=field)
    if not isinstance(ref["convergence"], str) or not ref["convergence"]:
        raise ScenarioError(f"convergence must be a file name (got {short(ref['convergence'])})", field=field)
    path = Path(ref["convergence"])
    path = path if path.is_absolute() else file.parent / path
    rows, source = read_table(path, field)
    k = federation.get("clients_per_round")
    partition = federation.get("partition")
    alpha = partition.get("dirichlet_alpha", 1.0) if isinstance(partition, dict) else 1.0
    rows = [r for r in rows if r["dirichlet_alpha"] == alpha]
    opts = sorted({r["server_optimizer"] for r in rows})
    opt = ref.get("server_optimizer") or (opts[0] if len(opts) == 1 else None)
    if opt is None:
        raise ScenarioError(f"{path} has rows for {', '.join(opts) or 'no'} server optimizer(s) at dirichlet_alpha "
                            f"{alpha}: name one with server_optimizer", field=field)
    rows = [r for r in rows if r["server_optimizer"] == opt]
    if not rows:
        raise ScenarioError(f"{path} has no rows for {opt} at dirichlet_alpha {alpha}", field=field)
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise ScenarioError("needs federation.clients_per_round", field=field)
    exact = [r for r in rows if (r["clients_per_round"], r["local_steps"]) == (k, local_steps)]
    if exact and all(r["rounds_to_target"] is None for r in exact):
        raise ScenarioError(f"the run {path.name} measured at K {k} with {local_steps} local steps did not reach its "
                            f"target, so it gives no rounds ({source})", field=field)
    exact = [r for r in exact if r["rounds_to_target"] is not None]
    reached = [r for r in rows if r["rounds_to_target"] is not None]
    if not reached:
        raise ScenarioError(f"no run in {path.name} for {opt} reached its target", field=field)
    law = fit_law(reached)
    anchor = ref.get("anchor")
    law_text = (f"rounds = {law.a:.4g} x K^-{law.b:.3f} x steps^-{law.c:.3f}, fitted to {law.points} runs "
                f"(worst fit {100 * (math.exp(law.max_abs_log_error) - 1):.0f} %)")
    outside = not (law.k_range[0] <= k <= law.k_range[1] and law.s_range[0] <= local_steps <= law.s_range[1])
    where = (f"; K {k} and {local_steps} local steps are outside the measured K {law.k_range[0]}-{law.k_range[1]}, "
             f"steps {law.s_range[0]}-{law.s_range[1]}: extrapolated") if outside else ""
    if anchor is not None:
        try:
            r0, k0, s0 = float(anchor["rounds"]), int(anchor["clients_per_round"]), int(anchor["local_steps"])
        except (KeyError, TypeError, ValueError, OverflowError):
            raise ScenarioError("anchor needs rounds, clients_per_round and local_steps", field=field) from None
        if not (math.isfinite(r0) and r0 > 0 and k0 > 0 and s0 > 0):
            raise ScenarioError(f"anchor rounds, clients_per_round and local_steps must be positive (got "
                                f"{short(anchor['rounds'])}, {short(anchor['clients_per_round'])}, "
                                f"{short(anchor['local_steps'])})", field=field)
        rounds = r0 * (k / k0) ** -law.b * (local_steps / s0) ** -law.c
        how = (f"{anchor.get('source', 'anchor')}: {r0:g} rounds at K {k0}, {s0} "
               f"local steps, scaled by the exponents of {path.name} ({law_text}; {source}){where}")
    elif exact:
        rounds = float(np.mean([r["rounds_to_target"] for r in exact]))
        how = f"measured in {path.name} at K {k}, {local_steps} local steps ({source})"
    else:
        rounds = law.rounds(k, local_steps)
        how = f"predicted by {path.name}'s law ({law_text}; {source}){where}"
    sd, basis = rounds_log_sd(exact if anchor is None else [], reached)
    if sd is not None:
        how += f"; drawn with a log-sd of {sd:.3f}, {basis}"
    return max(1, math.ceil(rounds - 1e-9)), how, sd
