"""Removes an emulation's namespaces when the process that made them dies, however it died (SIGKILL too).

    python -m simfl.emulate.reaper PARENT_PID RUN_ID
"""

from __future__ import annotations

import sys
import time

from simfl.emulate.netns import remove_namespaces


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by its parent, counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def main() -> None:
    parent, run_id = int(sys.argv[1]), sys.argv[2]
    while alive(parent):
        time.sleep(0.2)
    remove_namespaces(run_id)


if __name__ == "__main__":
    main()
