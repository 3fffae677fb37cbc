"""Flower rounds on an emulated network, measured: per round and client, the download (server sends to
client's fit starting), the compute, and the upload (fit ending to the server holding every result)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from simfl.emulate.netns import SERVER_IP, Topology
from simfl.errors import ScenarioError

PORT = 8080
APPS = Path(__file__).with_name("flower_apps.py")  # run as a file: the Flower side needs only flwr and numpy
# Flower pins typer < 0.21 (flwr 1.41), which simfl's CLI is newer than: it lives in a virtual environment of
# its own, `make emulate-env` (or any Python given by SIMFL_EMULATE_PYTHON).
EMULATE_VENV = Path(__file__).resolve().parents[2] / ".venv-emulate"


def flower_python() -> str:
    """The interpreter that runs the Flower server and clients."""
    given = os.environ.get("SIMFL_EMULATE_PYTHON")
    candidates = [given] if given else [str(EMULATE_VENV / "bin" / "python"), sys.executable]
    for py in candidates:
        if py and Path(py).exists() and subprocess.run([py, "-c", "import flwr, numpy"],
                                                       capture_output=True).returncode == 0:
            return py
    raise ScenarioError("Flower is not installed for emulation: run `make emulate-env` (a .venv-emulate with flwr), "
                        "or set SIMFL_EMULATE_PYTHON to a Python that has flwr")


def flower_rounds(topo: Topology, rounds: int, params: int, compute_s: float | list[float],
                  timeout_s: float = 600) -> list[dict]:
    """Run `rounds` Flower rounds with every client of the topology (client i computing compute_s[i] seconds,
    or compute_s each); the log of the server, one entry per round: configure_s, results_s, aggregated_s and
    the clients' fit_start_s / fit_end_s / client."""
    computes = compute_s if isinstance(compute_s, list) else [compute_s] * len(topo.clients)
    py = flower_python()
    srv = topo.exec(topo.server_ns, [py, str(APPS), "server", f"0.0.0.0:{PORT}",
                                     str(len(topo.clients)), str(rounds), str(params)],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    clients = []
    try:
        time.sleep(2.0)  # the server binds its port; clients retry anyway
        clients = [topo.exec(topo.client_ns(i), [py, str(APPS), "client",
                                                 f"{SERVER_IP}:{PORT}", str(computes[i]), str(i)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                   for i in range(len(topo.clients))]
        out, err = srv.communicate(timeout=timeout_s)
        if srv.returncode != 0 or not out.strip():
            raise RuntimeError(f"the Flower server failed: {err.strip().splitlines()[-1] if err.strip() else srv.returncode}")
        return json.loads(out.strip().splitlines()[-1])
    finally:
        for p in (srv, *clients):
            if p.poll() is None:
                p.kill()
                p.wait()


def phases(log: list[dict]) -> list[dict]:
    """Per round and client: download_s (round configured to the client's fit starting), compute_s, and
    upload_s (its fit ending to the server holding all results: the slowest upload of the round)."""
    out = []
    for r in log:
        for i, m in enumerate(r["clients"]):
            out.append({"round": r["round"], "client": i, "download_s": m["fit_start_s"] - r["configure_s"],
                        "compute_s": m["fit_end_s"] - m["fit_start_s"], "upload_s": r["results_s"] - m["fit_end_s"]})
    return out
