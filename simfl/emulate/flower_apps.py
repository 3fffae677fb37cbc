"""A Flower server and client for emulation, run as separate processes in their namespaces, logging the
timestamps a round's phases are measured from (one host clock: every namespace shares it).

    python flower_apps.py server PLAN.json      # prints the log as JSON
    python flower_apps.py client PLAN.json INDEX

Run as a file, by the emulation's own Python (rounds.flower_python): it imports only flwr and numpy. The
torch side of a party (real LoRA steps, the server optimizer) is a simfl worker process it drives over a
pipe (worker.py); without one, a client "computes" by sleeping simfl's predicted compute.

Flower's gRPC transport (the shipped start_server / start_client: one process per party, as a small
deployment runs it). Round 0 is a warm-up: every client connects, reports its index and returns its
initial adapter; it is not measured. Each later round follows the plan: the clients simfl selected, closed
at the K-th completed upload or at the deadline, whichever comes first. Flower cannot cancel a fit, so
the server then creates the round's marker file, and a client still computing stops at it (in a real
deployment this would be a control message) and returns nothing; a transfer already under way finishes.
Only completed updates are aggregated.

Connecting, on a busy machine too: a client retries the server with backoff (0.1 s doubling to 2 s) until
its deadline, so it may start before the server listens; the server waits at most the plan's
connect_timeout_s for every client and, when one never comes, exits with EXIT_CLIENTS_MISSING and one line on
stderr naming the missing clients (a warm-up that waited forever was what a client lost to "connection
refused" cost).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

WARMUP_STEPS = 3  # unmeasured training steps in the warm-up round, as simfl calibrate's --warmup
EXIT_CLIENTS_MISSING = 3  # the server's exit code when a client never connected (its stderr says which)
CONNECT_TIMEOUT_S = 60.0  # the default wait for every client to connect (the plan's connect_timeout_s)
SERVER_START_S = 120.0  # what a client allows the server to start listening (its worker imports torch)


# -- the pipe between a Flower process and its worker ---------------------------------------------------------

def send_msg(stream, head: dict, payload=None) -> None:
    """A JSON header line, then the payload's raw bytes (a float32 numpy vector, or none)."""
    data = b"" if payload is None else payload.tobytes()
    stream.write((json.dumps({**head, "nbytes": len(data)}) + "\n").encode())
    stream.write(data)
    stream.flush()


def recv_msg(stream):
    """(header, float32 vector), or None at the end of the stream."""
    import numpy as np

    line = stream.readline()
    if not line:
        return None
    head = json.loads(line)
    data = stream.read(head["nbytes"]) if head["nbytes"] else b""
    return head, np.frombuffer(data, dtype=np.float32).copy()


class Worker:
    def __init__(self, argv: list[str]):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        got = recv_msg(self.proc.stdout)
        if got is None:
            raise RuntimeError(f"the worker {argv[2:4]} exited before it was ready")
        self.ready = got[0]  # {"ready": True, "params": the adapter's size (clients)}

    def call(self, head: dict, payload):
        send_msg(self.proc.stdin, head, payload)
        got = recv_msg(self.proc.stdout)
        if got is None:
            raise RuntimeError("the worker exited")
        return got


def nic_bytes() -> tuple[int, int]:
    """(sent, received) bytes of this namespace's eth0, frames included."""
    base = "/sys/class/net/eth0/statistics/"
    return tuple(int(open(base + f).read()) for f in ("tx_bytes", "rx_bytes"))


# -- server -----------------------------------------------------------------------------------------------

def server(plan_path: str) -> None:
    warnings.filterwarnings("ignore")
    import flwr as fl
    import numpy as np
    from flwr.common import FitIns, GetPropertiesIns, ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.server.client_manager import SimpleClientManager
    from flwr.server.history import History
    from flwr.server.strategy import FedAvg

    plan = json.loads(open(plan_path).read())
    n = plan["clients"]
    log: list[dict] = []
    pool = ThreadPoolExecutor(max_workers=n)
    worker = Worker(plan["server_worker"])  # the server optimizer: simfl's own strategies, in torch

    connect_s = float(plan.get("connect_timeout_s", CONNECT_TIMEOUT_S))

    class EmuServer(fl.server.Server):
        def fit(self, num_rounds, timeout):
            t_start = time.time()
            if not self._client_manager.wait_for(n, timeout=connect_s):
                _missing(list(self._client_manager.all().values()))
            proxies = list(self._client_manager.all().values())
            x = np.zeros(plan["params"], dtype=np.float32)
            results = self._round(0, {p: (0, 0.0) for p in proxies}, x, len(proxies), None)
            index = {r["client"]: p for p, r in results}  # the client each connection belongs to
            x = results[0][1]["params"]
            busy: dict = {}  # client -> its cut fit, still finishing
            for r, spec in enumerate(plan["rounds"], start=1):
                chosen = {index[c]: work for c, work in zip(spec["selected"], zip(spec["steps"], spec["compute_s"]))}
                for c in spec["selected"]:  # a client cut last round may still be sending
                    if c in busy:
                        _settle(*busy.pop(c))
                done = self._round(r, chosen, x, spec["k"], spec["deadline_s"], busy, index)
                if done:
                    x = self._aggregate(x, [res for _, res in done])
                log[-1]["aggregated_s"] = time.time()
            for late in busy.values():
                _settle(*late)
            return History(), time.time() - t_start

        def _round(self, r, chosen, x, k, deadline_s, busy=None, index=None):
            entry = {"round": r, "configure_s": time.time(), "server_nic_bytes": nic_bytes(), "clients": []}
            log.append(entry)
            params = ndarrays_to_parameters([x])
            futures = {}
            for slot, (proxy, (steps, compute_s)) in enumerate(chosen.items()):
                config = {"round": r, "steps": steps, "compute_s": compute_s, "slot": slot,
                          "marker": f"{plan['marker_dir']}/closed-{r}"}
                futures[pool.submit(_fit, proxy, FitIns(params, config), r)] = proxy
            completed, pending = [], set(futures)
            close_at = None if deadline_s is None else entry["configure_s"] + deadline_s
            while pending and len(completed) < k:
                left = None if close_at is None else close_at - time.time()
                if left is not None and left <= 0:
                    break
                done, pending = wait(pending, timeout=left, return_when=FIRST_COMPLETED)
                for f in done:
                    res, arrived_s = f.result()
                    m = {**res.metrics, "arrived_s": arrived_s, "aggregated": res.metrics["status"] == "completed"}
                    entry["clients"].append(m)
                    if m["aggregated"]:
                        completed.append((futures[f], {**m, "params": parameters_to_ndarrays(res.parameters)[0],
                                                       "examples": res.num_examples}))
            entry["results_s"] = time.time()
            entry["server_nic_bytes_closed"] = nic_bytes()
            open(f"{plan['marker_dir']}/closed-{r}", "w").close()  # clients still computing stop at it
            by_proxy = {p: c for c, p in (index or {}).items()}
            for f in pending:  # replies after the close: logged when they come, never aggregated
                placeholder = {"client": by_proxy[futures[f]], "status": "cut", "aggregated": False}
                entry["clients"].append(placeholder)
                busy[by_proxy[futures[f]]] = (f, placeholder)
            return completed

        def _aggregate(self, x, done):
            payload = np.concatenate([x, *(d["params"] for d in done)])
            head, out = worker.call({"weights": [d["examples"] for d in done]}, payload)
            log[-1]["server_step_s"] = head["step_s"]
            return out

    def _missing(proxies) -> None:
        """Say which clients never connected, in one line, and stop now: the gRPC server's threads would keep
        a normal exit waiting, and the clients that did connect are killed by whoever started this."""
        here = set()
        for proxy in proxies:  # which client each connection is: it says so (Flower's ids are random)
            try:
                res = proxy.get_properties(GetPropertiesIns({}), 5.0, None)
                here.add(int(res.properties["client"]))
            except Exception:  # a connection that went away counts as not there
                pass
        gone = sorted(set(range(n)) - here)
        with open(f"{plan['marker_dir']}/missing.json", "w") as f:  # for the caller's line: who they were
            json.dump(gone, f)
        sys.stderr.write(f"client{'s' if len(gone) > 1 else ''} {', '.join(map(str, gone))} never connected to "
                         f"the Flower server within {connect_s:g} s\n")
        sys.stderr.flush()
        os._exit(EXIT_CLIENTS_MISSING)

    def _settle(future, placeholder):
        res, arrived_s = future.result()
        placeholder.update({**res.metrics, "arrived_s": arrived_s, "after_close": True})

    def _fit(proxy, ins, r):
        res = proxy.fit(ins, None, r)
        return res, time.time()  # taken in the thread that waited for it: when the upload had arrived

    strategy = FedAvg(fraction_evaluate=0.0, min_evaluate_clients=0)
    fl.server.start_server(server_address=plan["address"], server=EmuServer(client_manager=SimpleClientManager(),
                                                                            strategy=strategy),
                           config=fl.server.ServerConfig(num_rounds=len(plan["rounds"]) + 1))
    print(json.dumps(log), flush=True)


# -- client -----------------------------------------------------------------------------------------------

def client(plan_path: str, index: int) -> None:
    warnings.filterwarnings("ignore")
    import flwr as fl
    import numpy as np

    plan = json.loads(open(plan_path).read())
    worker = Worker([*plan["client_worker"], str(index)]) if plan.get("client_worker") else None
    if worker is not None and worker.ready["params"] != plan["params"]:  # simfl's count against the real adapter
        raise RuntimeError(f"the client's adapter has {worker.ready['params']} parameters; simfl counts {plan['params']}")
    cores = plan["cores"]

    class Emulated(fl.client.NumPyClient):
        def get_properties(self, config):
            return {"client": index}  # who this connection is, for the server's line about the missing ones

        def fit(self, parameters, config):
            t0 = time.time()
            x = parameters[0]
            if config["round"] == 0:  # warm-up: connect, say who this is, hand back the initial adapter
                init = worker.call({"warmup": WARMUP_STEPS, "core": cores[index % len(cores)]}, x)[1] if worker else x
                return [init], 1, {"client": index, "status": "completed", "fit_start_s": t0, "fit_end_s": t0}
            marker, steps = config["marker"], int(config["steps"])
            if os.path.exists(marker):  # the round closed during the download
                return [np.zeros(0, np.float32)], 0, {"client": index, "status": "cut", "fit_start_s": t0,
                                                      "fit_end_s": time.time(), "steps": 0}
            if worker is not None:
                head, out = worker.call({"steps": steps, "core": cores[int(config["slot"]) % len(cores)],
                                         "marker": marker}, x)
                status, done, examples = head["status"], head["steps"], head.get("examples", 0)
            else:
                status, done, out, examples = "completed", steps, x, 1
                end = t0 + float(config["compute_s"])  # simfl's compute for this client and round
                while time.time() < end:
                    if os.path.exists(marker):
                        status, out = "cut", np.zeros(0, np.float32)
                        break
                    time.sleep(min(0.005, max(0.0, end - time.time())))
            return [out], examples, {"client": index, "status": status, "fit_start_s": t0,
                                     "fit_end_s": time.time(), "steps": done}

    deadline = time.monotonic() + SERVER_START_S + float(plan.get("connect_timeout_s", CONNECT_TIMEOUT_S))
    wait_until_listening(plan["server_address"], deadline)
    fl.client.start_client(server_address=plan["server_address"], client=Emulated().to_client())


def wait_until_listening(address: str, deadline: float, first_s: float = 0.1, most_s: float = 2.0) -> None:
    """Return once a TCP connection to host:port succeeds, retrying with backoff (first_s doubling to most_s);
    SystemExit with one line at the deadline (time.monotonic()). Probed with a plain socket rather than by
    retrying Flower's start_client: each failed start_client leaves a gRPC thread and a traceback behind."""
    import socket

    host, port = address.rsplit(":", 1)
    wait = first_s
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=most_s):
                return
        except OSError as e:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SystemExit(f"cannot reach the Flower server at {address}: {e.strerror or e}") from None
            time.sleep(min(wait, left))
            wait = min(2 * wait, most_s)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(sys.argv[2])
    else:
        client(sys.argv[2], int(sys.argv[3]))
