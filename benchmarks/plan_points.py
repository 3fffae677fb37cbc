"""Plan throughput: points per second of a 1,000-point plan of small points with 20 replicates, today's code
against this tree's, in one run.

    python benchmarks/plan_points.py                     # 1,000 points, 2 workers, old then new
    python benchmarks/plan_points.py --points 100        # a short run (the first 2 clients_per_round values)
    python benchmarks/plan_points.py --side new          # this tree only
    python benchmarks/plan_points.py --parts 30          # where one point's time goes, old and new
    python benchmarks/plan_points.py --together --workers 1   # old and new at once, alike under others' load

The plan: the quickstart scenario cut to 24 rounds, choosing the device (5), the fleet size (10) and the
clients a round (1..20): 1,000 points, each 24 x K x 20 replicates = 480 to 9,600 client-rounds (5,040 on
average), minimising cost_total under sim_time_s <= 3,000 s, evaluated exhaustively. Each side runs
`run_plan` (points, plan.json, points.csv, the best point's drivers; no report.html) in a fresh process:
"old" imports simfl from a copy of `--old-ref` (the commit before plans loaded their base once and kept their
workers warm) taken with `git archive`, "new" from this tree. Both write their outputs, and the run says
whether points.csv and plan.json came out byte-identical, and if not, which of the columns both have differ
(the model itself may have changed since the old commit). The machine is shared: with --repeat N each side
runs N times, interleaved, and the best is kept; the CPU seconds each side used (its process and its pool's
workers) are printed too, a figure that other people's load on the machine moves far less than the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OLD_REF = "823c830"  # main before issue 23's plan work (t_quantile kept, warm workers, cached lookups)
DEVICES = ["jetson-agx-orin-64gb", "jetson-orin-nx-16gb", "rtx-4090-24gb", "l4-24gb", "a100-80gb"]
COUNTS = [20 + 20 * i for i in range(10)]  # at least 20 clients: K <= 20 always has them
ROUNDS, REPLICATES = 24, 20


def write_plan(folder: Path, points: int) -> Path:
    import yaml

    base = yaml.safe_load((ROOT / "scenarios/quickstart.yaml").read_text())
    base["federation"]["rounds"] = ROUNDS
    (folder / "base.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
    ks = list(range(1, points // (len(DEVICES) * len(COUNTS)) + 1))
    spec = {"scenario": "base.yaml", "replicates": REPLICATES,
            "choose": {"fleet[0].device": DEVICES, "fleet[0].count": COUNTS, "federation.clients_per_round": ks},
            "minimize": "cost_total", "subject_to": {"sim_time_s": {"max": 3000}},
            "search": {"method": "exhaustive"}}
    (folder / "plan.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder / "plan.yaml"


def cpu_s() -> float:
    """CPU seconds of this process and of its children that have ended (the pool's workers, once it shut down)."""
    import resource

    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def run_one(spec: Path, out: Path, workers: int) -> None:
    """In a fresh process whose simfl is the side's: the plan, timed; one JSON line on stdout."""
    t0 = time.perf_counter()
    from simfl.plan.search import run_plan  # (the import is part of what a user waits for: timed too)

    t1, c1 = time.perf_counter(), cpu_s()
    result = run_plan(spec, out, workers=workers)
    t2, c2 = time.perf_counter(), cpu_s()
    k = [p["federation.clients_per_round"] for p in result.space]
    print(json.dumps({"points": len(result.rows), "import_s": t1 - t0, "plan_s": t2 - t1, "cpu_s": c2 - c1,
                      "client_rounds": ROUNDS * REPLICATES * sum(k),
                      "ok": sum(r.get("status") == "ok" for r in result.rows.values()),
                      "best": result.plan["best"]["choices"] if result.plan["best"] else None}))


PART_POINT = {"fleet[0].device": "rtx-4090-24gb", "fleet[0].count": 60, "federation.clients_per_round": 5}


def run_parts(spec: Path, n: int) -> None:
    """In a fresh process whose simfl is the side's: where one point's time goes (PART_POINT, 20 replicates), in ms,
    the mean of n points; one JSON line on stdout. The parts are the steps evaluate_point takes, called one by one."""
    from simfl.api import simulate_replicates
    from simfl.build import build
    from simfl.config.load import ScenarioSource
    from simfl.plan.evaluate import evaluate_point
    from simfl.sim import run
    from simfl.sim.streams import Streams
    from simfl.summary import replicate_stats, summarize
    from simfl.uncertainty import Draws

    source = ScenarioSource.read(spec.parent / "base.yaml", lenient_patches=True)
    source.load()
    evaluate_point(source, PART_POINT, REPLICATES)  # warm: imports, the hardware model
    spent: dict[str, float] = {}

    def timed(name, f):
        t = time.perf_counter()
        out = f()
        spent[name] = spent.get(name, 0.0) + time.perf_counter() - t
        return out
    for _ in range(n):
        sc = timed("load", lambda: source.load(PART_POINT))
        summaries = []
        for i in range(REPLICATES):
            rep = sc.model_copy(update={"seed": sc.seed + i})
            streams = Streams.from_seed(rep.seed)
            built = timed("build", lambda: build(rep, streams, Draws(sc.seed, i)))
            records = timed("engine", lambda: run(built.inputs, streams, None, lambda _chunk: None))
            summaries.append(timed("summaries", lambda: summarize(rep, built, records)))
        timed("statistics", lambda: (replicate_stats(summaries), [s.figures() for s in summaries]))
    t = time.perf_counter()
    for _ in range(n):
        evaluate_point(source, PART_POINT, REPLICATES)
    spent["whole point"] = time.perf_counter() - t
    assert simulate_replicates  # (the path evaluate_point takes: imported to fail loudly if it moved)
    print(json.dumps({k: 1000 * v / n for k, v in spent.items()}))


def export(ref: str, into: Path) -> Path:
    """simfl and its data folders as they were at `ref`."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "simfl", "hardware_profiles",
                              "network_models", "scenarios", "model_configs"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def start(root: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONHASHSEED": "0"}
    return subprocess.Popen([sys.executable, __file__, *args], cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def result(root: Path, p: subprocess.Popen) -> dict:
    out, err = p.communicate()
    if p.returncode != 0:
        raise SystemExit(f"{root}: exit {p.returncode}\n{err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def side(root: Path, *args: str) -> dict:
    return result(root, start(root, *args))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=1000, help="a multiple of 50 (default 1000)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--side", choices=["old", "new", "both"], default="both")
    ap.add_argument("--old-ref", default=OLD_REF, help=f"the git commit whose simfl is 'old' (default {OLD_REF})")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--together", action="store_true",
                    help="run old and new at the same time (each with --workers; 1 each on a 2-core machine)")
    ap.add_argument("--parts", type=int, default=0, metavar="N",
                    help="instead of the plan: where one point's time goes, each side, the mean of N points")
    ap.add_argument("--run-one", nargs=3, metavar=("SPEC", "OUT", "WORKERS"), help=argparse.SUPPRESS)
    ap.add_argument("--run-parts", nargs=2, metavar=("SPEC", "N"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.run_one:
        run_one(Path(a.run_one[0]), Path(a.run_one[1]), int(a.run_one[2]))
        return
    if a.run_parts:
        run_parts(Path(a.run_parts[0]), int(a.run_parts[1]))
        return
    with tempfile.TemporaryDirectory(prefix="simfl-plan-bench-") as d:
        d = Path(d)
        spec = write_plan(d, a.points)
        roots = {}
        if a.side in ("old", "both"):
            roots["old"] = export(a.old_ref, d / "old")
        if a.side in ("new", "both"):
            roots["new"] = ROOT
        if a.parts:
            got = {name: side(root, "--run-parts", str(spec), str(a.parts)) for name, root in roots.items()}
            print(f"one point ({PART_POINT}, {ROUNDS} rounds, {REPLICATES} replicates), ms, mean of {a.parts}:")
            for part in next(iter(got.values())):
                print(f"  {part:12s} " + "  ".join(f"{name} {g[part]:7.2f}" for name, g in got.items()))
            return
        best: dict[str, dict] = {}
        for r in range(a.repeat):
            if a.together:  # both at once: whatever else loads the machine loads both alike
                running = {name: start(root, "--run-one", str(spec), str(d / f"out-{name}-{r}"), str(a.workers))
                           for name, root in roots.items()}
                runs = {name: result(roots[name], p) for name, p in running.items()}
            else:
                runs = {name: side(root, "--run-one", str(spec), str(d / f"out-{name}-{r}"), str(a.workers))
                        for name, root in roots.items()}
            for name, got in runs.items():
                if name not in best or got["plan_s"] < best[name]["plan_s"]:
                    best[name] = {**got, "run": r}
        print(f"cpus: {os.cpu_count()}, {a.workers} workers{' each, old and new at once' if a.together else ''}; "
              f"{a.points} points x {REPLICATES} replicates, "
              f"{ROUNDS} rounds, K 1..{a.points // 50}: {next(iter(best.values()))['client_rounds']:,} "
              f"client-rounds in all; best of {a.repeat}")
        for name, b in best.items():
            ref = a.old_ref if name == "old" else "this tree"
            print(f"  {name} ({ref}): plan {b['plan_s']:.1f} s (+ import {b['import_s']:.2f} s), "
                  f"{b['points'] / b['plan_s']:.2f} points/s; {b['cpu_s']:.1f} CPU s, "
                  f"{b['points'] / b['cpu_s']:.2f} points per CPU s; {b['ok']} ok, best {b['best']}")
        if len(best) == 2:
            print(f"  speed-up: {best['old']['plan_s'] / best['new']['plan_s']:.2f}x in time, "
                  f"{best['old']['cpu_s'] / best['new']['cpu_s']:.2f}x in CPU")
            out_old, out_new = d / f"out-old-{best['old']['run']}", d / f"out-new-{best['new']['run']}"
            same = all((out_old / f).read_bytes() == (out_new / f).read_bytes() for f in ("points.csv", "plan.json"))
            print(f"  points.csv and plan.json byte-identical: {'yes' if same else 'no'}")
            if not same:  # the model may have changed since the old commit: which of the shared columns differ
                import pandas as pd

                a, b = pd.read_csv(out_old / "points.csv"), pd.read_csv(out_new / "points.csv")
                common = [c for c in a.columns if c in b.columns]
                differ = [c for c in common if not a[c].equals(b[c])]
                print(f"  points.csv: {len(common) - len(differ)} of {len(common)} shared columns identical"
                      f"{'; differ: ' + ', '.join(differ) if differ else ''}; only new: "
                      f"{', '.join(c for c in b.columns if c not in a.columns) or 'none'}")


if __name__ == "__main__":
    main()
