"""Transfer times of real Flower rounds on shaped links against simfl's bits / rate (issue 12's first
measurement; needs root). Prints the table in docs/fidelity.md.

    sudo .venv/bin/python scripts/fidelity_transfers.py
"""

from __future__ import annotations

import statistics

from simfl.emulate.netns import ClientLink, Topology
from simfl.emulate.rounds import flower_rounds, phases

CASES = [("LTE-like 40 / 10 Mbit/s, 1 client", [ClientLink(40e6, 10e6)], 1_000_000),
         ("LTE-like 40 / 10 Mbit/s, 1 client", [ClientLink(40e6, 10e6)], 4_000_000),
         ("LTE-like 40 / 10 Mbit/s, 2 clients, each its own link", [ClientLink(40e6, 10e6)] * 2, 1_000_000),
         ("2 clients sharing a 20 / 10 Mbit/s cell", [ClientLink(40e6, 10e6, "a")] * 2, 1_000_000),
         ("gigabit, 1 client", [ClientLink(1e9, 1e9)], 4_000_000)]


FRAMING = 1514 / 1448  # TCP/IP over Ethernet: a 1514-byte frame carries 1448 payload bytes
PER_TRANSFER_S = 0.011  # the gigabit case's excess after framing (docs/fidelity.md)


def main() -> None:
    print("| case | MB each way | download: measured / bits / rate / with transport | "
          "upload: measured / bits / rate / with transport |")
    print("|---|---:|---:|---:|")
    for name, links, nbytes in CASES:
        cells = {"a": (20e6, 10e6)} if any(c.cell for c in links) else {}
        with Topology(list(links), 1e9, 1e9, cells=cells) as t:
            log = flower_rounds(t, rounds=4, params=nbytes // 4, compute_s=0.2)
        rows = [p for p in phases(log) if p["round"] > 1]
        bits = nbytes * 8
        share = len(links) if cells else 1  # clients of a cell share it equally (max-min, same caps)
        down_bps = min(links[0].downlink_bps, cells["a"][0] / share if cells else float("inf"))
        up_bps = min(links[0].uplink_bps, cells["a"][1] / share if cells else float("inf"))
        d = statistics.median(p["download_s"] for p in rows)
        u = statistics.median(p["upload_s"] for p in rows)
        cells_ = []
        for measured, bps in ((d, down_bps), (u, up_bps)):
            plain, fixed = bits / bps, bits * FRAMING / bps + PER_TRANSFER_S
            cells_.append(f"{measured:.3f} s / {plain:.3f} s ({100 * (measured / plain - 1):+.0f} %) / "
                          f"{fixed:.3f} s ({100 * (measured / fixed - 1):+.0f} %)")
        print(f"| {name} | {nbytes / 1e6:g} | {cells_[0]} | {cells_[1]} |", flush=True)


if __name__ == "__main__":
    main()
