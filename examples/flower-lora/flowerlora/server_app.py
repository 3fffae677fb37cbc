"""The ServerApp: Flower's own FedAvg or FedAdam, unmodified, over the LoRA adapter; the global model's
validation loss after every round (evaluate_fn)."""

from __future__ import annotations

import json

from flwr.app import ArrayRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAdam, FedAvg

from flowerlora import task

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    net = task.model(cfg)
    common = dict(fraction_train=cfg["fraction-train"], fraction_evaluate=0.0, min_train_nodes=cfg["min-nodes"],
                  min_available_nodes=cfg["min-nodes"])
    if cfg["strategy"] == "fedadam":
        strategy = FedAdam(eta=cfg["server-lr"], **common)
    else:
        strategy = FedAvg(**common)

    losses = {}

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        task.load_adapter(net, arrays)
        losses[server_round] = task.val_loss(net, cfg)
        return MetricRecord({"val_loss": losses[server_round]})

    strategy.start(grid=grid, initial_arrays=task.adapter(net), num_rounds=cfg["num-server-rounds"],
                   timeout=cfg["timeout"], evaluate_fn=evaluate)
    if cfg["save-losses"]:  # the global model's validation loss after each round (0: before the first)
        with open(cfg["save-losses"], "w") as f:
            json.dump(losses, f)
