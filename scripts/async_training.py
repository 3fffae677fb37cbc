"""Synchronous against asynchronous federated training on one fleet and clock (issue 13; docs/async.md).

Trains scenarios/async/train-heterogeneous.yaml for real (t5-tiny on the generated dialogue task, priced as
FLAN-T5-small LoRA on 60 Orins and 40 Raspberry Pi 4s): synchronous K = 10; FedBuff with 20 jobs in flight,
buffer 10, max staleness 5, updates weighted (1 + s)^-0.5; and the same unweighted. 150 model versions each,
no early stop. Prints time, energy and CO2 to each target and writes the curves.

    .venv/bin/python scripts/async_training.py [--out docs/img/async-val-loss.png]      # about 2.5 minutes
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from simfl import load_scenario  # noqa: E402
from simfl.config.load import REPO_ROOT  # noqa: E402
from simfl.costs import J_PER_KWH  # noqa: E402
from simfl.fl.session import train_scenario  # noqa: E402

ASYNC = {"federation.mode": "async", "federation.concurrency": 20, "federation.buffer_size": 10,
         "federation.max_staleness": 5}
RUNS = {"synchronous, K = 10": {}, "async, weighted (1+s)^-0.5": ASYNC,
        "async, unweighted": {**ASYNC, "train.staleness_exponent": 0}}
TARGETS = (1.5, 1.0, 0.8, 0.7)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "img" / "async-val-loss.png")
    args = ap.parse_args()
    path = REPO_ROOT / "scenarios" / "async" / "train-heterogeneous.yaml"
    tables = {}
    for name, overrides in RUNS.items():
        result = train_scenario(load_scenario(path, overrides), stop_at_target=False)
        tables[name] = result.table.dropna(subset=["val_loss"])
        print(f"{name}: best val loss {tables[name]['val_loss'].min():.3f}", flush=True)
    print("\n| target val loss | run | versions | time | energy | CO2 |")
    print("|---:|---|---:|---:|---:|---:|")
    for target in TARGETS:
        for name, t in tables.items():
            hit = t[t["val_loss"] <= target]
            if len(hit):
                h = hit.iloc[0]
                print(f"| {target:g} | {name} | {int(h['round'])} | {h['sim_time_s'] / 3600:.2f} h | "
                      f"{h['energy_j'] / J_PER_KWH:.3f} kWh | {h['co2_g'] / 1000:.3f} kg |")
            else:
                print(f"| {target:g} | {name} | not reached in 150 (best {t['val_loss'].min():.3f}) | | | |")
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharey=True)
    for name, t in tables.items():
        for ax, x in zip(axes, (t["round"], t["sim_time_s"] / 3600, t["energy_j"] / J_PER_KWH)):
            ax.plot(x, t["val_loss"], marker=".", label=name)
    for ax, label in zip(axes, ("model versions", "simulated time (h)", "energy (kWh)")):
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
        ax.set_ylim(0.5, 2.5)
    axes[0].set_ylabel("validation loss")
    axes[2].legend(fontsize=8)
    fig.suptitle("60 Orins + 40 Pi 4s on LTE: t5-tiny trained, priced as FLAN-T5-small LoRA")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
