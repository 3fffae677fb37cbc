"""Rounds, simulated hours and kWh to several validation-loss targets, from a simfl train run.

    python scripts/convergence_table.py runs/tiny-full 5.6 3.0 2.0 1.0
"""

import json
import sys
from pathlib import Path

import pandas as pd

from simfl.fl.train import to_target


def main() -> None:
    run_dir, targets = Path(sys.argv[1]), [float(t) for t in sys.argv[2:]]
    table = pd.read_csv(run_dir / "training.csv")
    summary = json.loads((run_dir / "summary.json").read_text())
    print("| run | best val loss | " + " | ".join(f"to {t:g}: rounds / h / kWh" for t in targets) + " |")
    print("|---|---:|" + "---:|" * len(targets))
    results = {t: to_target(table, t) for t in targets}
    for name, info in summary["runs"].items():
        cells = []
        for t in targets:
            r = results[t][name]
            cells.append("not reached" if r["rounds_to_target"] is None else
                         f"{r['rounds_to_target']} / {r['sim_hours_to_target']:.2f} / {r['kwh_to_target']:.3f}")
        print(f"| {name} | {info['best_val_loss']:.3f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
