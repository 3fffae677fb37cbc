"""Flower rounds on an emulated network, measured: the server and clients as processes in their namespaces,
following a plan of who takes part each round (flower_apps.py), and the phases read off their log."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from simfl.emulate.netns import SERVER_IP, Topology, run_folder
from simfl.errors import RunFailed, ScenarioError

PORT = 8080
APPS = Path(__file__).with_name("flower_apps.py")  # run as a file: the Flower side needs only flwr and numpy
# Flower runs in simfl's own environment (`pip install 'simfl[flower]'`; simfl's CLI works with the typer Flower
# pins), or in any Python given by SIMFL_EMULATE_PYTHON; a .venv-emulate left from older set-ups is still used.
EMULATE_VENV = Path(__file__).resolve().parents[2] / ".venv-emulate"


def flower_python() -> str:
    """The interpreter that runs the Flower server and clients."""
    given = os.environ.get("SIMFL_EMULATE_PYTHON")
    candidates = [given] if given else [sys.executable, str(EMULATE_VENV / "bin" / "python")]
    for py in candidates:
        if py and Path(py).exists() and subprocess.run([py, "-c", "import flwr, numpy"],
                                                       capture_output=True).returncode == 0:
            return py
    raise ScenarioError("Flower is not installed for emulation: pip install 'simfl[flower]' (make test's .venv has "
                        "it), or set SIMFL_EMULATE_PYTHON to a Python that has flwr")


@dataclass
class Plan:
    """What the Flower processes do: per measured round the clients taking part (simfl's selection), their
    local steps, K and the deadline; how clients compute (a worker training for real, or a sleep)."""

    params: int  # float32 trainable parameters sent each way
    # per round: {"selected": [client, ...], "steps": [n, ...], "compute_s": [s, ...] (what a sleeping client
    # sleeps), "k": K, "deadline_s": s | None}
    rounds: list[dict]
    train: dict | None = None  # the worker's client spec (worker.Client); None: clients sleep
    server_optimizer: dict = field(default_factory=lambda: {"optimizer": "fedavg", "hyper": {}})
    cores: list[int] = field(default_factory=lambda: sorted(os.sched_getaffinity(0)))
    # how long the server waits for every client to connect before it gives up, naming the missing ones
    connect_timeout_s: float = 60.0


def flower_rounds(topo: Topology, plan: Plan, timeout_s: float = 600) -> list[dict]:
    """Run a warm-up round (every client connects; log entry 0) and the plan's rounds; the server's log, one
    entry per round: configure_s, results_s (closed), aggregated_s, the server's NIC bytes, and per client
    its fit_start_s / fit_end_s / arrived_s / status / steps."""
    py = flower_python()
    tmp = run_folder(topo.run_id)  # removed with the namespaces, by the reaper too
    tmp.mkdir(mode=0o755)
    worker = [sys.executable, "-m", "simfl.emulate.worker"]
    spec = {"address": f"0.0.0.0:{PORT}", "server_address": f"{SERVER_IP}:{PORT}", "clients": len(topo.clients),
            "params": plan.params, "rounds": plan.rounds, "cores": plan.cores,
            "marker_dir": str(tmp), "connect_timeout_s": plan.connect_timeout_s}
    if plan.train is not None:
        (tmp / "client.json").write_text(json.dumps({**plan.train, "clients": len(topo.clients)}))
        spec["client_worker"] = [*worker, "client", str(tmp / "client.json")]
    (tmp / "server.json").write_text(json.dumps(plan.server_optimizer))
    spec["server_worker"] = [*worker, "server", str(tmp / "server.json")]
    (tmp / "plan.json").write_text(json.dumps(spec))
    srv = topo.exec(topo.server_ns, [py, str(APPS), "server", str(tmp / "plan.json")],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=first_in_line)
    clients, logs = [], []
    try:
        # started at once: a client retries until the server listens (flower_apps.wait_until_listening), and
        # the server waits at most plan.connect_timeout_s for them all
        for i in range(len(topo.clients)):
            # each client's stderr in a file: a pipe nobody reads until the end fills up (Flower logs every
            # message) and stalls the client
            logs.append(open(tmp / f"client-{i}.log", "w+"))
            clients.append(topo.exec(topo.client_ns(i), [py, str(APPS), "client", str(tmp / "plan.json"), str(i)],
                                     stdout=subprocess.DEVNULL, stderr=logs[-1], text=True,
                                     preexec_fn=first_in_line))
        try:
            out, err = srv.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise RunFailed(f"the emulated rounds took longer than {timeout_s:g} s") from None
        if srv.returncode != 0 or not out.strip():
            why = err.strip().splitlines()[-1] if err.strip() else f"exit code {srv.returncode}"
            died = [(i, _last_line(logs[i])) for i, c in enumerate(clients) if c.poll() not in (None, 0)]
            if srv.returncode == EXIT_CLIENTS_MISSING:  # and why, where a missing client had exited
                missing = set(json.loads((tmp / "missing.json").read_text())) if (tmp / "missing.json").is_file() else set()
                raise RunFailed(why + "".join(f"; client {i} had exited: {line}" for i, line in died if i in missing))
            raise RunFailed(f"the Flower server failed: {why}" + (f"; client {died[0][0]}: {died[0][1]}" if died else ""))
        return json.loads(out.strip().splitlines()[-1])
    finally:
        for p in (srv, *clients):
            if p.poll() is None:
                p.kill()
                p.wait()
        for f in logs:
            f.close()
        shutil.rmtree(tmp, ignore_errors=True)


def first_in_line() -> None:
    """Run a Flower process (and the worker it starts) at the highest priority, so that whatever else runs on
    the machine takes little of the cores the emulation measures on (CFS weights 88761 against 1024): a loaded
    machine then measures the rounds the profile predicts. With autogroups (sched_autogroup_enabled) nice
    counts only inside a session's group, so the process gets a session, and so a group, of its own at nice
    -20 too. Measured beside two CPU hogs on this 2-core VM: a pinned one-thread torch loop ran 1528
    iterations in 3 s as a plain process, 7025 in a group of its own at nice -20 (SCHED_RR did no better).
    Emulation runs as root, which may raise priority."""
    try:
        os.setsid()
        if os.path.exists("/proc/self/autogroup"):
            with open("/proc/self/autogroup", "w") as f:
                f.write("-20")
        os.setpriority(os.PRIO_PROCESS, 0, -20)
    except OSError:
        pass


EXIT_CLIENTS_MISSING = 3  # flower_apps.EXIT_CLIENTS_MISSING (that file imports nothing of simfl)


def _last_line(log) -> str:
    log.seek(0)
    lines = [line.strip() for line in log.read().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def phases(log: list[dict]) -> list[dict]:
    """Per measured round and client: download_s (round configured to the client's fit starting), compute_s,
    and upload_s (its fit ending to its result arriving), each None where the client never got that far;
    `aggregated` says whether its update was in the round's aggregate."""
    out = []
    for r in log[1:]:
        for m in r["clients"]:
            row = {"round": r["round"], "client": m["client"], "status": m["status"], "aggregated": m["aggregated"],
                   "download_s": None, "compute_s": None, "upload_s": None}
            if "fit_start_s" in m:
                row["download_s"] = m["fit_start_s"] - r["configure_s"]
                row["compute_s"] = m["fit_end_s"] - m["fit_start_s"]
                if m["status"] == "completed":
                    row["upload_s"] = m["arrived_s"] - m["fit_end_s"]
            out.append(row)
    return out
