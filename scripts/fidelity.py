"""simfl's prediction against real Flower runs on shaped links, for the documented cases (`make fidelity`,
needs root; docs/fidelity.md). Each case runs once for real and is compared with two predictions of the
same rounds and selections: the plain model (bits / rate, no `transport:`) and the model with the fixes
(the scenario's `transport:`). Prints the error table and writes each case's emulation.json.

    sudo .venv/bin/python scripts/fidelity.py [--rounds 5] [--out runs/fidelity]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from simfl import load_scenario
from simfl.config.load import REPO_ROOT
from simfl.emulate.run import compare, emulable, measure, plan_of, predict, result_of

CASES = [("dedicated LTE-like links, 40 / 10 Mbit/s", "lte-two-clients"),
         ("3 clients sharing a 20 / 10 Mbit/s cell, 2 a round", "lte-cell"),
         ("gigabit links, compute dominates", "gigabit-compute"),
         ("a deadline that cuts a client off", "lte-deadline")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("runs/fidelity"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, name in CASES:
        sc = load_scenario(REPO_ROOT / "scenarios" / "emulate" / f"{name}.yaml")
        emulable(sc)
        t0 = time.time()
        fixed = predict(sc, args.rounds)
        log = measure(fixed, plan_of(sc, fixed, "train"))
        plain = predict(sc.model_copy(update={"transport": None}), args.rounds)
        before, after = compare(log, plain), compare(log, fixed, fixed.inputs.framing_factor)
        (args.out / f"{name}.json").write_text(json.dumps(result_of(sc, "train", after), indent=2) + "\n")
        rows.append((label, before, after))
        print(f"{label}: measured {after['measured_total_s']:.2f} s over {args.rounds} rounds "
              f"({time.time() - t0:.0f} s wall)", flush=True)
    print("\n| case | round MAPE: plain / fixed | total: plain / fixed | download / compute / upload MAPE (fixed) "
          "| wire / model bytes |")
    print("|---|---:|---:|---:|---:|")
    for label, b, a in rows:
        ph = " / ".join(f"{a['phases'][p]['mape_pct']:.1f} %" if a["phases"][p]["n"] else "-"
                        for p in ("download", "compute", "upload"))
        print(f"| {label} | {b['mape_round_pct']:.1f} % / {a['mape_round_pct']:.1f} % | "
              f"{b['error_total_pct']:+.1f} % / {a['error_total_pct']:+.1f} % | {ph} | {a['wire_to_model']:.3f} |")
    worst_round = max(a["mape_round_pct"] for _, _, a in rows)
    worst_total = max(abs(a["error_total_pct"]) for _, _, a in rows)
    print(f"\nworst case with the fixes: round MAPE {worst_round:.1f} % (goal 10 %), total {worst_total:.1f} % (goal 5 %)")


if __name__ == "__main__":
    main()
