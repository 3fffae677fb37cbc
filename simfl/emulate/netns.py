"""A small network for emulation: the server and each client in its own network namespace, joined by veth
pairs to a bridge in a switch namespace, links shaped with tc (HTB; this kernel has no netem, so no delay).

    server ns  [eth0 10.77.0.1] --veth-- [s0]  switch ns (bridge br0)  [c0] --veth-- [eth0 10.77.1.1] client 0 ns
                                                                       [c1] --veth-- [eth0 10.77.1.2] client 1 ns
Shaping (each an HTB class, so rates are what a transfer gets, not a policer's drops):
- a client's uplink: the egress of its own eth0;
- a client's downlink: the egress of its switch port c<i>;
- the server link: the egress of the server's eth0 (downloads) and of switch port s0 (uploads);
- a cell: one class under the server link on each side, its members' packets sent to it by u32 filters on
  their addresses, so the cell's clients share its capacity.

Nothing is touched outside the run's own namespaces (named `<run id>-...`) and its run folder. They are
removed on exit and on an exception; a reaper process started with the topology removes them, killing what
runs in them, if this process dies any other way (a signal, SIGKILL included).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from simfl.errors import RunFailed, ScenarioError

SERVER_IP = "10.77.0.1"
_counter = itertools.count()


def client_ip(i: int) -> str:
    return f"10.77.{1 + i // 250}.{1 + i % 250}"


@dataclass(frozen=True)
class ClientLink:
    downlink_bps: float
    uplink_bps: float
    cell: str | None = None


@dataclass
class Topology:
    clients: list[ClientLink]
    server_down_bps: float  # what the server can send (its link's uplink, as the engine reads it)
    server_up_bps: float  # what it can receive
    cells: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (downlink, uplink) bps
    run_id: str = ""
    created: list[str] = field(default_factory=list)
    reaper: subprocess.Popen | None = None

    # -- names -----------------------------------------------------------------

    @property
    def server_ns(self) -> str:
        return f"{self.run_id}-srv"

    @property
    def switch_ns(self) -> str:
        return f"{self.run_id}-sw"

    def client_ns(self, i: int) -> str:
        return f"{self.run_id}-c{i}"

    # -- life cycle ------------------------------------------------------------

    def __enter__(self) -> "Topology":
        self.build()
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def build(self) -> None:
        check_can_emulate()
        self.run_id = self.run_id or f"sf{os.getpid()}n{next(_counter)}"
        self.reaper = subprocess.Popen([sys.executable, "-m", "simfl.emulate.reaper", str(os.getpid()), self.run_id],
                                       start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        try:
            self._build()
        except BaseException:
            self.remove()
            raise

    def _build(self) -> None:
        sw, srv = self.switch_ns, self.server_ns
        for ns in (sw, srv, *(self.client_ns(i) for i in range(len(self.clients)))):
            run(["ip", "netns", "add", ns])
            self.created.append(ns)
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", sw, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", sw, "link", "set", "br0", "up"])
        self._attach(srv, "s0", SERVER_IP)
        for i in range(len(self.clients)):
            self._attach(self.client_ns(i), f"c{i}", client_ip(i))
        self._shape()

    def _attach(self, ns: str, port: str, ip: str) -> None:
        sw = self.switch_ns
        run(["ip", "link", "add", port, "netns", sw, "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "-n", sw, "link", "set", port, "master", "br0"])
        run(["ip", "-n", sw, "link", "set", port, "up"])
        run(["ip", "-n", ns, "addr", "add", f"{ip}/16", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])

    def _shape(self) -> None:
        # What each TCP sender may put in one packet: its slowest shaped path's rate for about 1 ms
        cells_down = [bps for bps, _ in self.cells.values()]
        server_slowest = min([self.server_down_bps, *cells_down, *(c.downlink_bps for c in self.clients)])
        limit_gso(self.server_ns, server_slowest)
        for i, c in enumerate(self.clients):
            limit_gso(self.client_ns(i), min(c.uplink_bps, self.cells[c.cell][1] if c.cell else float("inf")))
        for i, c in enumerate(self.clients):
            htb_one(self.client_ns(i), "eth0", c.uplink_bps)
            htb_one(self.switch_ns, f"c{i}", c.downlink_bps)
        members = {name: [i for i, c in enumerate(self.clients) if c.cell == name] for name in self.cells}
        down = {name: bps for name, (bps, _) in self.cells.items()}
        up = {name: bps for name, (_, bps) in self.cells.items()}
        htb_tree(self.server_ns, "eth0", self.server_down_bps, down, members, "dst")
        htb_tree(self.switch_ns, "s0", self.server_up_bps, up, members, "src")

    def remove(self) -> None:
        """Delete the run's namespaces (their veths and qdiscs go with them), killing what runs in them."""
        remove_namespaces(self.run_id, self.created)
        self.created = []
        if self.reaper is not None and self.reaper.poll() is None:
            self.reaper.terminate()
            self.reaper.wait(timeout=5)
        self.reaper = None

    def exec(self, ns: str, argv: list[str], **kwargs) -> subprocess.Popen:
        """Start a process inside a namespace."""
        return subprocess.Popen(["ip", "netns", "exec", ns, *argv], **kwargs)


# -- helpers -----------------------------------------------------------------------

def run(argv: list[str]) -> None:
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise RunFailed(f"{' '.join(argv)}: {(r.stderr.strip() or str(r.returncode)).splitlines()[-1]}")


def _rate(bps: float) -> str:
    return f"{max(int(bps), 8000)}bit"


def _quantum(bps: float) -> str:
    # HTB's default quantum (rate / r2q) is too small below ~1 Mbit/s and too large above ~100: clamp it
    return str(int(min(200_000, max(1514, bps / 8 / 100))))


GSO_WINDOW_S = 1e-3
TCP_PAYLOAD_BYTES = 1448  # per 1514-byte Ethernet frame


def gso_segments(bps: float) -> int:
    """Segments a sender at `bps` may pack into one GSO packet: about GSO_WINDOW_S of its rate, at least one.

    HTB shapes packets, not bytes: a packet goes whenever the class has tokens, its length paid after. With
    segmentation offload a veth sends packets of up to 64 KB, so on a slow link a short transfer's last
    packet ran up to 64 KB ahead of its rate (measured: 98 KB at 14 Mbit/s on a 10 Mbit/s class). One segment
    per packet everywhere would cost a gigabit link ~30 us of CPU a frame here (16 MB in 350 ms, not 134).
    Bounding the packet to ~1 ms of the rate keeps both: a transfer ends at most ~1 ms early.
    """
    return max(1, int(bps * GSO_WINDOW_S / 8 / TCP_PAYLOAD_BYTES))


def limit_gso(ns: str, bps: float) -> None:
    run(["ip", "-n", ns, "link", "set", "dev", "eth0", "gso_max_segs", str(gso_segments(bps))])


def htb_one(ns: str, dev: str, bps: float) -> None:
    """All of dev's egress through one HTB class at bps."""
    run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "10"])
    run(["ip", "netns", "exec", ns, "tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:10", "htb",
         "rate", _rate(bps), "ceil", _rate(bps), "quantum", _quantum(bps)])


def htb_tree(ns: str, dev: str, total_bps: float, cells: dict[str, float], members: dict[str, list[int]],
             match: str) -> None:
    """dev's egress under one class at total_bps; inside it a class per cell at its rate (its members' packets
    matched by u32 on their address, `dst` or `src`), and the rest in a default class."""
    tc = ["ip", "netns", "exec", ns, "tc"]
    run([*tc, "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "99"])
    run([*tc, "class", "add", "dev", dev, "parent", "1:", "classid", "1:1", "htb", "rate", _rate(total_bps),
         "ceil", _rate(total_bps), "quantum", _quantum(total_bps)])
    run([*tc, "class", "add", "dev", dev, "parent", "1:1", "classid", "1:99", "htb", "rate", _rate(total_bps),
         "ceil", _rate(total_bps), "quantum", _quantum(total_bps)])
    for n, (name, bps) in enumerate(sorted(cells.items()), start=10):
        bps = min(bps, total_bps)
        run([*tc, "class", "add", "dev", dev, "parent", "1:1", "classid", f"1:{n}", "htb", "rate", _rate(bps),
             "ceil", _rate(bps), "quantum", _quantum(bps)])
        for i in members[name]:
            run([*tc, "filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio", "1", "u32", "match",
                 "ip", match, f"{client_ip(i)}/32", "flowid", f"1:{n}"])


def namespaces() -> list[str]:
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def run_folder(run_id: str) -> Path:
    """Where a run's plan and round markers live: removed with its namespaces."""
    return Path(tempfile.gettempdir()) / f"simfl-emulate-{run_id}"


def remove_namespaces(run_id: str, names: list[str] | None = None) -> None:
    """Kill what runs in the run's namespaces, delete them, and remove the run's folder."""
    names = names if names is not None else [n for n in namespaces() if n.startswith(f"{run_id}-")]
    for ns in names:
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), 9)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    shutil.rmtree(run_folder(run_id), ignore_errors=True)


def check_can_emulate() -> None:
    """Root, iproute2 and tc, and network namespaces: one clear line when any is missing."""
    if os.geteuid() != 0:
        raise ScenarioError("emulation needs root (network namespaces and tc): run it with sudo")
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            raise ScenarioError(f"emulation needs `{tool}` (iproute2), which is not installed")
    probe = f"sfprobe{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        raise ScenarioError(f"cannot create a network namespace here: {r.stderr.strip()}")
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
