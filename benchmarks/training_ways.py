"""Measure how the ways of training change a real LoRA step on this machine: fp32 against bf16 autocast, SGD
against AdamW, gradient checkpointing off and on (every combination), with `simfl calibrate`, into one profile.

    python benchmarks/training_ways.py --out hardware_profiles/cpu-2core-epyc-zen4-ways.yaml

Each combination is a `simfl calibrate` run merged into the same file (its points keep how they trained), then
the ratios against fp32 + SGD + no checkpointing are printed per batch size. Run it on a quiet machine: the
combinations run one after another, so load that comes and goes moves the ratios.
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
from pathlib import Path

import yaml

WAYS = list(itertools.product(("fp32", "bf16"), ("sgd", "adamw"), (False, True)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--name", default="cpu-2core-epyc-zen4-ways")
    ap.add_argument("--model", default="flan-t5-small")
    ap.add_argument("--batch-sizes", default="1,4")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()
    for precision, optimizer, ckpt in WAYS:
        cmd = [sys.executable, "-m", "simfl", "calibrate", "--name", a.name, "--models", a.model,
               "--batch-sizes", a.batch_sizes, "--steps", str(a.steps), "--warmup", str(a.warmup), "--device", "cpu",
               "--power", "none", "--idle-s", "0", "--precision", precision, "--optimizer", optimizer,
               "--gradient-checkpointing" if ckpt else "--no-gradient-checkpointing", "--out", str(a.out)]
        print(" ".join(cmd[3:]), flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    points = yaml.safe_load(a.out.read_text())["training"]
    base = {p["batch_size"]: p for p in points if not (p.get("precision") or p.get("optimizer")
                                                       or p.get("gradient_checkpointing"))}
    print(f"{'precision':9s} {'optimizer':9s} {'ckpt':5s} {'batch':>5s} {'step s':>8s} {'x base':>7s} "
          f"{'peak GB':>8s} {'x base':>7s}")
    for p in points:
        b = base.get(p["batch_size"])
        if b is None or p.get("oom"):
            continue
        mem = p.get("peak_memory_bytes")
        print(f"{p.get('precision', 'fp32'):9s} {p.get('optimizer', 'sgd'):9s} "
              f"{str(p.get('gradient_checkpointing', False)):5s} {p['batch_size']:5d} {p['step_time_s']:8.3f} "
              f"{p['step_time_s'] / b['step_time_s']:7.3f} {(mem or 0) / 1e9:8.3f} "
              f"{(mem or 0) / (b.get('peak_memory_bytes') or 1):7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
