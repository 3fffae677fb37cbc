"""Sweep throughput: points per second for the quickstart scenario, local pool of 2 workers against 1.

    python benchmarks/sweep.py

Each point is the full quickstart (845 rounds) with a different fleet size; each side runs the same 8
points into a fresh folder, the two sides interleaved, best of 3 (this machine is shared and noisy).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
POINTS = 8


def once(spec: Path, out: Path, workers: int) -> float:
    from simfl.plan.sweep import run_sweep

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    table = run_sweep(spec, out, workers=workers).table
    elapsed = time.perf_counter() - t0
    assert (table["status"] == "ok").all()
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        spec = d / "sweep.yaml"
        spec.write_text(yaml.safe_dump({"scenario": str(ROOT / "scenarios/quickstart.yaml"),
                                        "axes": {"fleet[0].count": [50 + 10 * i for i in range(POINTS)]}}))
        best = {1: float("inf"), 2: float("inf")}
        for _ in range(3):
            for w in (1, 2):
                best[w] = min(best[w], once(spec, d / f"out{w}", w))
        print(f"cpus: {os.cpu_count()}, {POINTS} quickstart points (845 rounds each), best of 3")
        for w in (1, 2):
            print(f"  {w} worker(s): {best[w]:.2f} s, {POINTS / best[w]:.2f} points/s")
        print(f"  speed-up with 2 workers: {best[1] / best[2]:.2f}x")


if __name__ == "__main__":
    main()
