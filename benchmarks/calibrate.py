"""Calibration's measurement overhead and run-to-run spread, measured.

    python benchmarks/calibrate.py [--model flan-t5-small] [--batch 1] [--warmup 2] [--steps 5]

Runs the same calibration point twice in fresh model instances and prints:
- overhead: calibration wall time (model build, warm-up, the steps, power and
  memory sampling) against steps x median step time;
- spread: the relative difference of the two median step times.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore", category=FutureWarning)

import torch  # noqa: E402

from simfl.lm.model import KernelSpec  # noqa: E402
from simfl.calibrate.power import PowerMonitor, open_backend  # noqa: E402
from simfl.calibrate.runner import calibrate  # noqa: E402


def one_run(model: str, batch: int, warmup: int, steps: int, seq_len: int) -> tuple[float, float]:
    monitor = PowerMonitor(open_backend("auto"), rate_hz=10)
    t0 = time.perf_counter()
    points, _ = calibrate([model], [batch], KernelSpec(seq_len=seq_len), warmup=warmup, steps=steps,
                          device=torch.device("cpu"), monitor=monitor, idle_s=0)
    wall = time.perf_counter() - t0
    monitor.close()
    return wall, points[0].median_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="flan-t5-small")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--seq-len", type=int, default=512)
    args = ap.parse_args()
    runs = [one_run(args.model, args.batch, args.warmup, args.steps, args.seq_len) for _ in range(2)]
    print(f"{args.model} batch {args.batch} seq {args.seq_len}, {args.warmup} warm-up + {args.steps} measured "
          f"steps, {torch.get_num_threads()} threads")
    for i, (wall, median) in enumerate(runs, 1):
        measured = args.steps * median
        print(f"run {i}: wall {wall:.2f} s, steps x median {measured:.2f} s, overhead {wall / measured:.2f}x "
              f"(median step {median:.4f} s)")
    a, b = runs[0][1], runs[1][1]
    print(f"run-to-run spread of the median step time: {100 * abs(a - b) / min(a, b):.1f} %")


if __name__ == "__main__":
    main()
