"""The ClientApp: load the global adapter, train it on this node's shard, send it back with the examples seen."""

from __future__ import annotations

import numpy as np
from flwr.app import Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from flowerlora import task

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    cfg = context.run_config
    partition, partitions = context.node_config["partition-id"], context.node_config["num-partitions"]
    net = task.model(cfg)
    task.load_adapter(net, msg.content["arrays"])
    server_round = int(msg.content["config"]["server-round"])
    rng = np.random.default_rng([cfg["seed"], partition, server_round])  # this node's batches this round
    loss = task.local_train(net, cfg, task.shard(cfg, partition, partitions), rng)
    examples = cfg["train.local-steps"] * cfg["train.batch-size"]
    content = RecordDict({"arrays": task.adapter(net),
                          "metrics": MetricRecord({"train_loss": loss, "num-examples": examples})})
    return Message(content=content, reply_to=msg)
