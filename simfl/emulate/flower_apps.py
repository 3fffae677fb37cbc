"""A Flower server and client for emulation, run as separate processes in their namespaces, logging the
timestamps a round's phases are measured from (one host clock: every namespace shares it).

    python flower_apps.py server ADDRESS CLIENTS ROUNDS PARAMS     # prints the log as JSON
    python flower_apps.py client ADDRESS COMPUTE_S [INDEX]

Run as a file, by the emulation's own Python (rounds.flower_python): it imports nothing of simfl.

Flower's gRPC transport (the deprecated-but-shipped start_server / start_client API: one process per party,
as a small deployment runs it). The server sends PARAMS float32 parameters each round and every client
returns as many; a client's "compute" is COMPUTE_S of sleep here (real LoRA steps are the next step of
issue 12).
"""

from __future__ import annotations

import json
import sys
import time
import warnings


def server(address: str, clients: int, rounds: int, params: int) -> None:
    warnings.filterwarnings("ignore")
    import flwr as fl
    import numpy as np
    from flwr.server.strategy import FedAvg

    log: list[dict] = []

    class Timed(FedAvg):
        def configure_fit(self, server_round, parameters, client_manager):
            log.append({"round": server_round, "configure_s": time.time()})
            return super().configure_fit(server_round, parameters, client_manager)

        def aggregate_fit(self, server_round, results, failures):
            log[-1]["results_s"] = time.time()
            log[-1]["clients"] = [dict(r.metrics) for _, r in results]
            out = super().aggregate_fit(server_round, results, failures)
            log[-1]["aggregated_s"] = time.time()
            return out

    init = fl.common.ndarrays_to_parameters([np.zeros(params, dtype=np.float32)])
    strategy = Timed(fraction_fit=1.0, min_fit_clients=clients, min_available_clients=clients,
                     fraction_evaluate=0.0, min_evaluate_clients=0, initial_parameters=init)
    fl.server.start_server(server_address=address, config=fl.server.ServerConfig(num_rounds=rounds),
                           strategy=strategy)
    print(json.dumps(log), flush=True)


def client(address: str, compute_s: float, index: int = 0) -> None:
    warnings.filterwarnings("ignore")
    import flwr as fl

    class Sleeper(fl.client.NumPyClient):
        def fit(self, parameters, config):
            t0 = time.time()
            time.sleep(compute_s)
            return parameters, 1, {"fit_start_s": t0, "fit_end_s": time.time(), "client": index}

    fl.client.start_client(server_address=address, client=Sleeper().to_client())


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        client(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 0)
