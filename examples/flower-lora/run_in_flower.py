"""Run this app in Flower's own Simulation Runtime (flwr.simulation.run_simulation, Ray actors), with the config
of its pyproject.toml, for comparison with `simfl flower . --train`: same seeds, same shards, same batches, so the
same validation losses up to the order floating-point sums are taken in.

    PYTHONPATH=examples/flower-lora python examples/flower-lora/run_in_flower.py 3 num-server-rounds=2 \\
        strategy='"fedadam"' fraction-train=1.0 save-losses='"flower-losses.json"'

The first argument is the number of nodes; the others override config keys (TOML values). run_simulation hands
the apps an empty run_config, so the config is passed in here; needs flwr[simulation] (Ray).
"""

import sys
import tomllib
from pathlib import Path

from flwr.app import Context
from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp
from flwr.simulation import run_simulation

from flowerlora.client_app import app as client_app
from flowerlora.server_app import app as server_app


def flat(table: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in table.items():
        out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


config = flat(tomllib.loads((Path(__file__).parent / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"])
for pair in sys.argv[2:]:
    key, _, value = pair.partition("=")
    config[key] = tomllib.loads(f"v = {value}")["v"]
server, client = ServerApp(), ClientApp()


@server.main()
def main(grid, context: Context) -> None:
    server_app(grid, Context(context.run_id, context.node_id, context.node_config, context.state, dict(config)))


@client.train()
def train(msg, context: Context):
    return client_app(msg, Context(context.run_id, context.node_id, context.node_config, context.state, dict(config)))


if __name__ == "__main__":
    run_simulation(server_app=server, client_app=client, num_supernodes=int(sys.argv[1]),
                   backend_config={"client_resources": {"num_cpus": 1}})
