"""Every shipped scenario's outputs, hashed: a restructure must leave them byte-identical.

    python scripts/golden.py --record runs/golden.json       # before the change
    python scripts/golden.py --check runs/golden.json        # after it: lists every file that differs

Each scenario under scenarios/ is run with `simfl run` (plots and report included), each plan or sweep
spec with `simfl plan` / `simfl sweep`; the console output is kept as stdout.txt beside the files. Files
whose bytes legitimately change from run to run (the Parquet writer's metadata is deterministic; the HTML
report embeds the PNGs) are compared as they are: nothing is masked. `--keep DIR` leaves the outputs there
to diff by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIMFL = [sys.executable, "-m", "simfl"]


def jobs() -> list[tuple[str, list[str]]]:
    """(name, simfl arguments before --out) for every shipped scenario and plan."""
    out = []
    for path in sorted((ROOT / "scenarios").rglob("*.yaml")):
        rel = path.relative_to(ROOT).as_posix()
        head = path.read_text()
        if any(line.startswith("choose:") for line in head.splitlines()):
            out.append((rel, ["plan", rel, "--workers", "1"]))
        elif any(line.startswith("axes:") for line in head.splitlines()):
            out.append((rel, ["sweep", rel, "--workers", "1"]))
        else:
            out.append((rel, ["run", rel, "--no-progress"]))
    return out


def run_one(name: str, args: list[str], base: Path) -> dict[str, str]:
    target = base / name.replace("/", "__")
    env = {**os.environ, "COLUMNS": "160", "PYTHONHASHSEED": "0"}
    p = subprocess.run([*SIMFL, *args, "--out", str(target)], cwd=ROOT, env=env, capture_output=True, text=True)
    hashes = {"exit": str(p.returncode),
              "stdout": hashlib.sha256(p.stdout.replace(str(target), "OUT").encode()).hexdigest(),
              "stderr": hashlib.sha256(p.stderr.replace(str(target), "OUT").encode()).hexdigest()}
    if target.is_dir():
        (target / "stdout.txt").write_text(p.stdout + "\n--- stderr\n" + p.stderr)
        for f in sorted(target.rglob("*")):
            if f.is_file() and f.name != "stdout.txt":
                hashes[f.relative_to(target).as_posix()] = hashlib.sha256(f.read_bytes()).hexdigest()
    return hashes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--record", type=Path)
    g.add_argument("--check", type=Path)
    ap.add_argument("--keep", type=Path, help="leave the outputs in this folder")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", default="", help="substring of the scenario paths to run")
    a = ap.parse_args()
    base = a.keep or Path(tempfile.mkdtemp(prefix="simfl-golden-"))
    base.mkdir(parents=True, exist_ok=True)
    todo = [j for j in jobs() if a.only in j[0]]
    with ThreadPoolExecutor(a.workers) as ex:
        got = dict(zip([n for n, _ in todo], ex.map(lambda j: run_one(j[0], j[1], base), todo)))
    if a.record:
        a.record.parent.mkdir(parents=True, exist_ok=True)
        a.record.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        print(f"recorded {len(got)} scenarios, {sum(len(v) for v in got.values())} hashes: {a.record}")
        return 0
    want = json.loads(a.check.read_text())
    bad = 0
    for name, hashes in got.items():
        ref = want.get(name)
        if ref is None:
            print(f"NEW   {name}")
            continue
        for f in sorted(set(ref) | set(hashes)):
            if ref.get(f) != hashes.get(f):
                bad += 1
                print(f"DIFF  {name}: {f}")
    print(f"{len(got)} scenarios checked, {bad} files differ" + (f" (outputs in {base})" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
