"""simfl plan: the configuration that minimises a figure under constraints, found by evaluating every
point of a small space or by Optuna's TPE sampler (seeded) on a large one; with the runners-up and the
Pareto front of the minimised figure against each constrained one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from simfl.errors import ScenarioError
from simfl.plan.executors import LocalPool, RayPool
from simfl.plan.evaluate import REPLICATE_VALUES
from simfl.plan.spec import P_TARGET, PlanSpec, fingerprint, load_spec, points
from simfl.plan.sweep import JOURNAL, claim_resumable, read_journal, run_points, table_of, write_atomic


@dataclass
class PlanResult:
    spec: PlanSpec
    space: list[dict]
    rows: dict[int, dict]  # evaluated points only
    plan: dict  # plan.json
    folder: Path


def with_p_target(row: dict, spec: PlanSpec) -> dict:
    """The row with p_target_by_deadline where the plan asks for it: the share of its replicates whose run reached
    the target (every round: the rounds are the rounds to the target, drawn with their error) within the deadline."""
    bound = spec.subject_to.get(P_TARGET)
    if bound is None or row.get("status") != "ok":
        return row
    times = row[REPLICATE_VALUES]["sim_time_s"] if REPLICATE_VALUES in row else [row["sim_time_s"]]
    limit_s = bound.deadline_h * 3600.0
    return {**row, P_TARGET: sum(t <= limit_s for t in times) / len(times)}


def constraint_value(row: dict, figure: str, side: str, replicates: int) -> float | None:
    """The figure a bound is checked against: with replicates, the 95th percentile for a max, the 5th for a
    min (the bound holds for 19 runs in 20); else the figure itself. p_target_by_deadline is a share of the
    replicates already."""
    if replicates > 1 and figure != P_TARGET:
        return row.get(f"{figure}_{'p95' if side == 'max' else 'p05'}")
    return row.get(figure)


def feasible(row: dict, spec: PlanSpec) -> bool:
    if row.get("status") != "ok" or row.get(spec.minimize) is None:
        return False
    for figure, bound in spec.subject_to.items():
        for side, limit in (("max", bound.max), ("min", bound.min)):
            if limit is None:
                continue
            v = constraint_value(row, figure, side, spec.replicates)
            if v is None or (v > limit if side == "max" else v < limit):
                return False
    return True


def pareto(items: list[tuple[int, dict]], spec: PlanSpec) -> list[int]:
    """Points no other point beats on every objective: the minimised figure, each max-bounded figure (lower
    is better) and each min-bounded one (higher is better)."""
    axes = [(spec.minimize, 1.0)]
    for figure, bound in spec.subject_to.items():
        if figure != spec.minimize:
            axes.append((figure, 1.0 if bound.max is not None else -1.0))
    vecs = {i: [sign * row[f] for f, sign in axes] for i, row in items
            if all(row.get(f) is not None for f, _ in axes)}

    def dominates(a, b):
        return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))
    return sorted(i for i, v in vecs.items() if not any(dominates(w, v) for j, w in vecs.items() if j != i))


def run_plan(spec_path: Path, out: Path, *, workers: int = 1, executor: str = "local", address: str | None = None,
             on_start: Callable[[int, int], None] | None = None,
             on_point: Callable[[int, dict], None] | None = None) -> PlanResult:
    from simfl.summary import FIGURES

    spec, scenario = load_spec(spec_path, PlanSpec)
    for figure, field in [(spec.minimize, "minimize"), *((f, f"subject_to.{f}") for f in spec.subject_to)]:
        if figure not in FIGURES and not (figure == P_TARGET and field != "minimize"):
            raise ScenarioError(f"{figure!r} is not a summary figure; figures: {', '.join(FIGURES)}"
                                + (f" (and {P_TARGET} under subject_to)" if field != "minimize" else ""),
                                file=spec_path, field=field)
    if P_TARGET in spec.subject_to and scenario.load().federation.rounds_from is None:
        raise ScenarioError(f"{P_TARGET} needs the rounds to the target: give the scenario federation.rounds: "
                            "{convergence: TABLE.csv} (docs/convergence.md)", file=spec_path,
                            field=f"subject_to.{P_TARGET}")
    space = points(spec.choose)
    method = spec.method
    fp = fingerprint(spec_path, scenario.file)
    claim_resumable(out, "plan", fp)
    if method == "exhaustive":
        if on_start:
            on_start(len(space), sum(1 for _ in read_journal(out / JOURNAL)))
        rows, _ = run_points(scenario, space, spec.replicates, out, workers=workers, executor=executor,
                             address=address, on_point=on_point)
        rows = {i: with_p_target(r, spec) for i, r in rows.items()}
    else:
        rows = _optuna(spec, scenario, space, out, workers, executor, address, on_start, on_point)
    plan = summarize_plan(spec, space, rows, method)
    # for the report's sentences: the currency of every cost figure, and what the recommendation rests on that
    # nobody measured (each with its error as a log-sd where replicates draw it)
    best = scenario.load(space[plan["best"]["point"]]) if plan["best"] is not None else scenario.load()
    plan["currency"] = best.accounting.currency
    plan["hardware_charge"] = {"charge": best.accounting.hardware_charge, "jobs": best.accounting.jobs}
    if plan["best"] is not None:
        from simfl.build import build
        from simfl.pricing import embodied

        built = build(best)
        plan["estimated_inputs"] = list(built.estimated_inputs)
        # what each replicate draws (a predicted step time, a ranged price, the rounds to the target): the spread
        # the percentiles cover, unless the plan turns the draws off
        plan["drawn_inputs"] = ([{"input": what, "log_sd": sd} for _, sd, what in built.uncertain]
                                if spec.replicates > 1 and spec.epistemic else [])
        plan["embodied_not_counted"] = list(dict.fromkeys(e["device"] for e in embodied(best, 0.0)[1]
                                                          if e["kg"] is None))
    if spec.replicates > 1 and plan["best"] is not None:  # what drives the recommendation's spread
        from simfl.report.plots import tornado
        from simfl.sensitivity import drivers

        # (what drives reaching the target in time is what drives the time)
        figures = tuple(dict.fromkeys([spec.minimize, *["sim_time_s" if f == P_TARGET else f
                                                        for f in spec.subject_to]]))
        plan["drivers"] = drivers(scenario.load(space[plan["best"]["point"]]), figures, min(spec.replicates, 20))
        from simfl.report.figure_units import label_of

        write_atomic(out / "drivers.png", lambda p: tornado(
            plan["drivers"], spec.minimize, p, f"What drives the spread of the best point's {label_of(spec.minimize)}",
            currency=plan["currency"]))
    import json

    write_atomic(out / "plan.json", lambda p: p.write_text(json.dumps(plan, indent=2, default=str) + "\n"))
    evaluated = table_of(space, rows)
    write_atomic(out / "points.csv", lambda p: evaluated.to_csv(p, index=False))
    return PlanResult(spec, space, rows, plan, out)


def _optuna(spec, scenario, space, out, workers, executor, address, on_start, on_point) -> dict[int, dict]:
    """TPE over the choices (each a categorical of its values' indices), seeded; a batch of `workers` trials
    at a time, each batch evaluated in parallel. A point asked twice is evaluated once. (Not journaled: a
    killed search starts again.)"""
    try:
        import optuna
    except ImportError:
        raise ScenarioError("this space needs a search library: pip install 'simfl[search]' (Optuna), or set "
                            "search.method: exhaustive", field="search.method") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = list(spec.choose)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=spec.search.seed), direction="minimize")
    rows: dict[int, dict] = {}
    if on_start:
        on_start(spec.search.trials, 0)
    told = 0
    # one pool (or one Ray session) for every batch: its workers start once and hold the base from then on
    pool = RayPool(address, workers) if executor == "ray" else LocalPool(workers, min(max(workers, 1),
                                                                                       spec.search.trials))
    try:
        while told < spec.search.trials:
            batch = [study.ask() for _ in range(min(max(workers, 1), spec.search.trials - told))]
            wanted = [space.point_of(tuple(t.suggest_categorical(n, list(range(len(spec.choose[n])))) for n in names))
                      for t in batch]
            jobs = [(i, scenario, space[i], spec.replicates) for i in sorted({i for i in wanted if i not in rows})]
            for i, row in pool.run(jobs):
                rows[i] = with_p_target(row, spec)
            for t, i in zip(batch, wanted):
                row = rows[i]
                value = row.get(spec.minimize) if feasible(row, spec) else None
                study.tell(t, float("inf") if value is None else float(value))
                told += 1
                if on_point:
                    on_point(i, row)
    except BaseException:
        pool.kill()
        raise
    pool.close()
    return rows


def meets(values: dict[str, list], r: int, spec: PlanSpec) -> bool:
    """Whether replicate r of a point (its per-replicate figures) meets every constraint."""
    for figure, bound in spec.subject_to.items():
        if figure == P_TARGET:  # in one draw: reached the target by the deadline, or not
            if values["sim_time_s"][r] > bound.deadline_h * 3600.0:
                return False
            continue
        v = values[figure][r]
        if v is None or (bound.max is not None and v > bound.max) or (bound.min is not None and v < bound.min):
            return False
    return True


def confidence(spec: PlanSpec, rows: dict[int, dict], best: int) -> dict | None:
    """How sure the recommendation is, over the replicates (each a draw of the seeds and of every predicted
    input, the same draw at every point): the share of draws in which the recommended point meets every
    constraint, the share in which it is the cheapest point that does (ties to the lower point number), and which
    points win the other draws (share each, most first). None without replicates."""
    values = {i: r[REPLICATE_VALUES] for i, r in rows.items() if r.get("status") == "ok" and REPLICATE_VALUES in r}
    if best not in values:
        return None
    n = len(values[best][spec.minimize])
    wins: dict[int | None, int] = {}
    for r in range(n):
        ok = [(values[i][spec.minimize][r], i) for i in sorted(values)
              if values[i][spec.minimize][r] is not None and meets(values[i], r, spec)]
        winner = min(ok)[1] if ok else None
        wins[winner] = wins.get(winner, 0) + 1
    others = sorted(((c, i) for i, c in wins.items() if i != best), key=lambda ci: (-ci[0], -1 if ci[1] is None
                                                                                   else ci[1]))
    return {"draws": n,
            "meets_constraints": sum(meets(values[best], r, spec) for r in range(n)) / n,
            "cheapest_feasible": wins.get(best, 0) / n,
            "other_winners": [{"point": i, "share": c / n} for c, i in others if i is not None],
            "no_point_feasible": wins.get(None, 0) / n}


def summarize_plan(spec: PlanSpec, space: list[dict], rows: dict[int, dict], method: str) -> dict:
    ok = [(i, rows[i]) for i in sorted(rows)]
    feas = [(i, r) for i, r in ok if feasible(r, spec)]
    ranked = sorted(feas, key=lambda ir: (ir[1][spec.minimize], ir[0]))

    def entry(i):
        r = rows[i]
        return {"point": i, "choices": space[i],
                "figures": {k: v for k, v in r.items() if k not in ("status", "error", REPLICATE_VALUES)}}
    invalid = sum(1 for _, r in ok if r.get("status") in ("invalid", "error"))
    # a run that ended before its rounds did not do what the scenario asked: never feasible, shown with why
    stopped = [{"point": i, "choices": space[i], "reason": r.get("error")} for i, r in ok if r.get("status") == "stopped"]
    return {
        "minimize": spec.minimize,
        "subject_to": {k: v.model_dump(exclude_none=True) for k, v in spec.subject_to.items()},
        "replicates": spec.replicates,
        "constraints_at": "95th percentile of replicates (5th for a min)" if spec.replicates > 1 else "the run",
        "method": method,
        "space": len(space),
        "evaluated": len(rows),
        "invalid": invalid,
        "feasible": len(feas),
        "excluded_stopped_early": len(stopped),
        "stopped_early": stopped,
        "best": entry(ranked[0][0]) if ranked else None,
        "confidence": confidence(spec, rows, ranked[0][0]) if ranked and spec.replicates > 1 else None,
        "runners_up": [entry(i) for i, _ in ranked[1:6]],
        "pareto": [entry(i) for i in pareto([(i, r) for i, r in ok if r.get("status") == "ok"], spec)],
        "feasible_points": [i for i, _ in ranked],
    }
