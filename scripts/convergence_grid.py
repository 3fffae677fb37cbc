"""Measure rounds-to-target for real: `simfl train`'s task (scenarios/train/tiny-dialogsum.yaml), FedAdamW,
over K in {5, 10, 20} and local steps in {1, 2, 4}, each run stopped at val loss 1.0.

    python scripts/convergence_grid.py      # about 20 minutes on 2 cores

The same as
    simfl train scenarios/train/tiny-dialogsum.yaml --optimizers fedadamw --target-val-loss 1.0 --rounds 300 \\
        --grid federation.clients_per_round=5,10,20 --grid training.local_steps=1,2,4
written to scenarios/convergence/tiny-dialogsum-fedadamw.csv, the table a scenario's
`federation.rounds: {convergence: FILE}` reads (simfl/convergence.py).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios/train/tiny-dialogsum.yaml"
OUT = ROOT / "scenarios/convergence/tiny-dialogsum-fedadamw.csv"
GRID = {"federation.clients_per_round": [5, 10, 20], "training.local_steps": [1, 2, 4]}
MAX_ROUNDS = 300
TARGET = 1.0  # FedAdamW reaches it in about 60 rounds at K 10 (docs/convergence.md); 5.6 is reached by round 5


def main() -> None:
    import torch

    from simfl.fl.grid import convergence_grid, write_table

    torch.set_num_threads(2)
    rows = convergence_grid(SCENARIO, GRID, only=["fedadamw"], target=TARGET, max_rounds=MAX_ROUNDS,
                            on_run=lambda point, row: print(point, row["rounds_to_target"], flush=True))
    write_table(rows, OUT, SCENARIO.relative_to(ROOT), TARGET, MAX_ROUNDS, eval_every=5)


if __name__ == "__main__":
    main()
