"""Summarize `mutmut results --all true`: counts by status, the kill rate, and survivors by function.

    python scripts/mutation_summary.py mutants/results.txt

Kill rate = (killed + timeout) / (all mutants - skipped): a mutant that makes the suite hang is caught.
"""

from __future__ import annotations

import re
import sys
from collections import Counter


def main(path: str) -> None:
    status: dict[str, str] = {}
    for line in open(path):
        m = re.match(r"\s*(\S+): (.+)$", line)
        if m:
            status[m.group(1)] = m.group(2).strip()
    counts = Counter(status.values())
    considered = sum(counts.values()) - counts.get("skipped", 0)
    caught = counts.get("killed", 0) + counts.get("timeout", 0)
    print("mutants by status: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"kill rate: {caught} / {considered} = {100 * caught / max(considered, 1):.1f} %")
    survivors = Counter(re.sub(r"__mutmut_\d+$", "", name) for name, s in status.items() if s == "survived")
    for fn, n in survivors.most_common():
        print(f"  {n:3d} survived in {fn}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "mutants/results.txt")
