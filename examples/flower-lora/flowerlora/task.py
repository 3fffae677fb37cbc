"""The model and data every node and the server build alike: simfl's t5-tiny with LoRA adapters on q and v
(a random base, seeded, the same in every process), the generated dialogue-summarization task, and a node's
shard of it (partition-id of num-partitions, as Flower's simulation numbers the nodes)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from flwr.app import ArrayRecord

from simfl.catalog import get_architecture
from simfl.lm import data
from simfl.lm.loss import seq2seq_loss
from simfl.lm.model import KernelSpec, build_model

VAL_EXAMPLES = 200


@lru_cache(maxsize=1)
def task(examples: int, seq_len: int, target_len: int, seed: int):
    """(train inputs, train labels, val inputs, val labels, vocabulary size): the same for the same arguments."""
    rows = data.generate(examples + VAL_EXAMPLES, seed)
    tokenizer = data.build_tokenizer([r["dialogue"] + " " + r["summary"] for r in rows])
    tx, ty = data.encode(rows[:examples], tokenizer, seq_len, target_len)
    vx, vy = data.encode(rows[examples:], tokenizer, seq_len, target_len)
    vocab = len(tokenizer)
    return tx, ty, vx, vy, vocab + (-vocab % 8)


def model(cfg: dict):
    """t5-tiny with LoRA (rank cfg["train.lora-r"] on q and v), its base seeded by cfg["seed"]: built once a
    process (every call then loads the adapter it trains, so the nodes simulated in one process share it)."""
    return _model(cfg["train.examples"], cfg["train.seq-len"], cfg["train.target-len"], cfg["seed"],
                  cfg["train.lora-r"])


@lru_cache(maxsize=1)
def _model(examples: int, seq_len: int, target_len: int, seed: int, lora_r: int):
    *_, vocab = task(examples, seq_len, target_len, seed)
    spec = KernelSpec(finetuning="lora", lora_r=lora_r, lora_alpha=2 * lora_r, lora_targets=("q", "v"),
                      lora_dropout=0.0, seed=seed, vocab_size=vocab)
    net = build_model(get_architecture("t5-tiny"), spec)
    head = net.get_base_model().lm_head
    with torch.no_grad():  # T5's random untied head has std 1: logits sqrt(d_model) too large (simfl train does so)
        head.weight.mul_(net.get_base_model().config.d_model ** -0.5)
    return net


def adapter(net) -> ArrayRecord:
    """The trainable (LoRA) weights, what travels: an ArrayRecord keyed by parameter name."""
    return ArrayRecord({n: p.detach().cpu() for n, p in net.named_parameters() if p.requires_grad})


def load_adapter(net, arrays: ArrayRecord) -> None:
    params = dict(net.named_parameters())
    with torch.no_grad():
        for name, value in arrays.to_torch_state_dict().items():
            params[name].copy_(value)


def shard(cfg: dict, partition: int, partitions: int) -> np.ndarray:
    """Node `partition`'s examples: every partitions-th one, from its own offset."""
    return np.arange(partition, cfg["train.examples"], partitions)


def local_train(net, cfg: dict, rows: np.ndarray, rng: np.random.Generator) -> float:
    """cfg's local SGD steps, each on a batch drawn from `rows`; the mean training loss."""
    tx, ty, *_ = task(cfg["train.examples"], cfg["train.seq-len"], cfg["train.target-len"], cfg["seed"])
    # T5's dropout draws from torch's global generator: seeded from this node's round stream, so a node's steps
    # are the same whether nodes run in processes of their own (Flower) or one after another in one (simfl)
    torch.manual_seed(int(rng.integers(2**62)))
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=cfg["train.client-lr"])
    net.train()
    losses = []
    for _ in range(cfg["train.local-steps"]):
        pick = rng.choice(rows, size=cfg["train.batch-size"], replace=len(rows) < cfg["train.batch-size"])
        loss = seq2seq_loss(net, tx[pick], ty[pick])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return float(np.mean(losses))


def val_loss(net, cfg: dict) -> float:
    """Loss per target token on the held-out examples."""
    *_, vx, vy, _ = task(cfg["train.examples"], cfg["train.seq-len"], cfg["train.target-len"], cfg["seed"])
    net.eval()
    with torch.no_grad():
        return float(seq2seq_loss(net, vx, vy))
