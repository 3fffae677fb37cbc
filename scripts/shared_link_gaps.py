"""How far the array kernel's records on a binding link are from SimPy's: the largest gaps over random runs.

    python scripts/shared_link_gaps.py [--runs 1500] [--seed 424242]

Runs tests/test_arrays.random_inputs(contended=True) (half of them scaled up to 20-300 members with their
own rates and speeds) on SimPy and on the default engine, checks every pair with the suite's
assert_close_records, and prints how many runs had a link that binds, the client-rounds compared, how many
were cut in the instant one of their phases ended (to residue, so written down in that phase on one side
and the next on the other), and the largest gaps: on instants in seconds, on other floats (bits, joules)
relative to the value. The README's figures come from the defaults.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simfl.sim.engine import Engine  # noqa: E402
from simfl.sim.records import CLIENT_FIELDS  # noqa: E402
from tests.test_arrays import _close, assert_close_records, random_inputs, scaled_up  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=424242)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    worst_t = worst_v = 0.0
    rows = shared = ties = 0
    for _ in range(args.runs):
        inp = random_inputs(rng, contended=True)
        if rng.random() < 0.5:  # scaled up: many members with their own rates and speeds, always online
            inp = scaled_up(inp, rng)
        seed = int(rng.integers(1000))
        a = Engine(inp, seed, kernel="simpy").run()
        fast = Engine(inp, seed)
        b = fast.run()
        assert fast.ran_on == "arrays", fast.ran_on
        assert_close_records(a, b)
        shared += not fast.contention_free
        for x, y in zip(a.clients, b.clients):
            rows += 1
            if any(not _close(getattr(x, f), getattr(y, f), f) for f in CLIENT_FIELDS):
                ties += 1  # (assert_close_records allowed it: cut on a tie)
                continue
            for f in CLIENT_FIELDS:
                u, v = getattr(x, f), getattr(y, f)
                if isinstance(u, float) and u != v and not (math.isnan(u) and math.isnan(v)):
                    if f.endswith("_s"):
                        worst_t = max(worst_t, abs(u - v))
                    elif abs(u) > 1e-6:
                        worst_v = max(worst_v, abs(u - v) / abs(u))
    print(f"{args.runs} runs ({shared} on a link that binds), {rows:,} client-rounds, {ties} cut on a tie; "
          f"largest gaps: instants {worst_t:.2g} s, bits and joules {worst_v:.2g} of the value")


if __name__ == "__main__":
    main()
