"""A population of 10,000,000, 1,000 a round, 1,000 rounds (a million client-rounds), end to end with outputs.

    python benchmarks/population.py [--population N] [--per-round K] [--rounds R]

Runs `simfl run` on the quickstart scenario scaled to that fleet, as a user would (outputs,
plots and all), in a child process, and prints its wall time and peak memory (max RSS).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", type=int, default=10_000_000)
    ap.add_argument("--per-round", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=1000)
    args = ap.parse_args()
    sc = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())
    sc["name"] = "population-benchmark"
    sc["fleet"][0]["count"] = args.population
    sc["federation"].update(clients_per_round=args.per_round, rounds=args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scenario.yaml"
        path.write_text(yaml.safe_dump(sc))
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "simfl", "run", str(path), "--out", str(Path(tmp) / "out"),
                            "--no-progress"], capture_output=True, text=True, cwd=tmp)
        wall_s = time.perf_counter() - t0
        if r.returncode:
            sys.exit(r.stderr)
        sizes = {p.name: p.stat().st_size for p in (Path(tmp) / "out").iterdir()}
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    cr = args.per_round * args.rounds
    print(f"population {args.population:,}, {args.per_round:,} a round, {args.rounds:,} rounds "
          f"({cr:,} client-rounds): {wall_s:.1f} s, peak memory {peak_mb:,.0f} MB")
    print("outputs: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(sizes.items()) if v > 1e5))


if __name__ == "__main__":
    main()
