"""Plan throughput: points per second of a 1,000-point plan of small points with 20 replicates, today's code
against this tree's, in one run.

    python benchmarks/plan_points.py                     # 1,000 points, 2 workers, old then new
    python benchmarks/plan_points.py --points 100        # a short run (the first 2 clients_per_round values)
    python benchmarks/plan_points.py --side new          # this tree only

The plan: the quickstart scenario cut to 24 rounds, choosing the device (5), the fleet size (10) and the
clients a round (1..20): 1,000 points, each 24 x K x 20 replicates = 480 to 9,600 client-rounds (5,040 on
average), minimising cost_total under sim_time_s <= 3,000 s, evaluated exhaustively. Each side runs
`run_plan` (points, plan.json, points.csv, the best point's drivers; no report.html) in a fresh process:
"old" imports simfl from a copy of `--old-ref` (the commit before plans loaded their base once and kept their
workers warm) taken with `git archive`, "new" from this tree. Both write their outputs, and the run says
whether points.csv and plan.json came out byte-identical. The machine is shared: with --repeat N each side
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


def export(ref: str, into: Path) -> Path:
    """simfl and its data folders as they were at `ref`."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "simfl", "hardware_profiles",
                              "network_models", "scenarios", "model_configs"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def side(root: Path, spec: Path, out: Path, workers: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONHASHSEED": "0"}
    p = subprocess.run([sys.executable, __file__, "--run-one", str(spec), str(out), str(workers)], cwd=root,
                       env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{root}: exit {p.returncode}\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=1000, help="a multiple of 50 (default 1000)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--side", choices=["old", "new", "both"], default="both")
    ap.add_argument("--old-ref", default=OLD_REF, help=f"the git commit whose simfl is 'old' (default {OLD_REF})")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--run-one", nargs=3, metavar=("SPEC", "OUT", "WORKERS"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.run_one:
        run_one(Path(a.run_one[0]), Path(a.run_one[1]), int(a.run_one[2]))
        return
    with tempfile.TemporaryDirectory(prefix="simfl-plan-bench-") as d:
        d = Path(d)
        spec = write_plan(d, a.points)
        roots = {}
        if a.side in ("old", "both"):
            roots["old"] = export(a.old_ref, d / "old")
        if a.side in ("new", "both"):
            roots["new"] = ROOT
        best: dict[str, dict] = {}
        for r in range(a.repeat):
            for name, root in roots.items():
                got = side(root, spec, d / f"out-{name}-{r}", a.workers)
                if name not in best or got["plan_s"] < best[name]["plan_s"]:
                    best[name] = {**got, "run": r}
        print(f"cpus: {os.cpu_count()}, {a.workers} workers; {a.points} points x {REPLICATES} replicates, "
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
            same = all((d / f"out-old-{best['old']['run']}" / f).read_bytes()
                       == (d / f"out-new-{best['new']['run']}" / f).read_bytes() for f in ("points.csv", "plan.json"))
            print(f"  points.csv and plan.json byte-identical: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
