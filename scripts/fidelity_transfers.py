"""What a Flower transfer costs beyond its wire bits / rate, measured and fitted (issue 12; needs root).

Real Flower rounds on a gigabit emulated link, where the time on the wire is small, with updates of several
sizes; a client sleeps 50 ms for its compute. Per transfer, the excess over wire bits / rate (wire bits =
payload x 1514/1448, TCP/IP over Ethernet) is fitted as a fixed part plus a byte rate:

    excess_s = per_transfer_s + payload_bytes / serialization_bytes_per_s

which is what a scenario's `transport:` says. Prints the measurements and the fit (docs/fidelity.md).

    sudo .venv/bin/python scripts/fidelity_transfers.py
"""

from __future__ import annotations

import statistics

import numpy as np

from simfl.emulate.netns import ClientLink, Topology
from simfl.emulate.rounds import Plan, flower_rounds, phases

FRAMING = 1514 / 1448  # TCP/IP over Ethernet: a 1514-byte frame carries 1448 payload bytes
RATE_BPS = 1e9
SIZES_BYTES = [100_000, 1_000_000, 4_000_000, 16_000_000]
ROUNDS = 5


def measure(nbytes: int) -> tuple[float, float]:
    """Median download and upload seconds of a client on a dedicated gigabit link, rounds 2 to ROUNDS."""
    plan = Plan(params=nbytes // 4, rounds=[{"selected": [0], "steps": [1], "compute_s": [0.05], "k": 1,
                                            "deadline_s": None}] * ROUNDS)
    with Topology([ClientLink(RATE_BPS, RATE_BPS)], RATE_BPS, RATE_BPS) as t:
        log = flower_rounds(t, plan)
    rows = [p for p in phases(log) if p["round"] > 1]
    return statistics.median(p["download_s"] for p in rows), statistics.median(p["upload_s"] for p in rows)


def main() -> None:
    print("| payload | download | upload | wire bits / rate | excess down | excess up |")
    print("|---:|---:|---:|---:|---:|---:|")
    xs, ys = [], []
    for nbytes in SIZES_BYTES:
        down, up = measure(nbytes)
        wire_s = nbytes * 8 * FRAMING / RATE_BPS
        print(f"| {nbytes / 1e6:g} MB | {down * 1e3:.1f} ms | {up * 1e3:.1f} ms | {wire_s * 1e3:.1f} ms | "
              f"{(down - wire_s) * 1e3:.1f} ms | {(up - wire_s) * 1e3:.1f} ms |", flush=True)
        xs += [nbytes, nbytes]
        ys += [down - wire_s, up - wire_s]
    slope, intercept = np.polyfit(xs, ys, 1)
    fit = np.polyval([slope, intercept], xs)
    print(f"\nfit over {len(xs)} transfers: per_transfer_s = {intercept:.4f}, serialization_bytes_per_s = "
          f"{1 / slope:.4g} (residuals up to {1e3 * max(abs(np.array(ys) - fit)):.1f} ms)")


if __name__ == "__main__":
    main()
