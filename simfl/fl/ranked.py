"""One backprop run over clients of different LoRA ranks: a model per rank, the server's global in its rule's form.

`train.train_run` uses this where the fleet's groups train different ranks
(`fleet[i].lora_r`); with one rank it keeps its own path, today's FedAvg-family
aggregation of one adapter shape, and neither rule applies.

Scaling: peft scales an adapter of rank r by lora_alpha / r. Here every client's
adapter is scaled by s = lora_alpha / r_max (its peft lora_alpha is
lora_alpha * r_i / r_max), so B A means the same update at every rank and a
truncated global is its leading rank slots, not a rescaled copy; with one rank
this is peft's own scaling.

- zero_pad (HetLoRA): the global `x` is the adapter at r_max. A client of rank
  r_i trains from `truncate(x, r_i)`; its upload counts in the rank slots it
  covers (`hetero.zero_pad_mean`), and the run's server optimizer (FedAvg,
  FedAvgM, FedAdam, FedAdamW) then steps on the padded r_max global, the
  per-rank mean standing in for the clients' weighted mean.
- stack (FLoRA): the global `x` is the adapted projections' base weights
  (`<module>.base_layer.weight`). A client loads them, trains a freshly
  initialised adapter of its rank (a new draw per round and client), and the
  server adds eta * s * sum_i p_i B_i A_i (the stacked product) to them: FedAvg
  with server rate eta. FLoRA averages; FedAvgM, FedAdam and FedAdamW would step
  on a full-rank update no stack carries, so they are refused with stack.

A stale update (asynchronous modes) counts as its change applied to the current
version, as in `train_run`: zero_pad adds the client's change of its r_i slots to
the current global's; under stack B_i A_i is a change already.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from simfl.fl import hetero
from simfl.fl.clients import ClientUpdate, backprop_train, load_state, trainable_state
from simfl.fl.strategies import FedAvg

Params = dict[str, torch.Tensor]


def stack_refusal(run_name: str, optimizer: str) -> str | None:
    """Why a run cannot use the stack rule, or None where it can."""
    if optimizer == "fedavg":
        return None
    return (f"model.rank_aggregation stack adds FLoRA's weighted sum of the clients' B_i A_i to the base weights "
            f"(FedAvg); run {run_name} uses server optimizer {optimizer}, which has no stacked form: use fedavg "
            "or rank_aggregation zero_pad")


class RankedTraining:
    """The clients' rank-r_i models and the server's global for one run under `rule` (zero_pad or stack)."""

    def __init__(self, build: Callable[[int, float], torch.nn.Module], lora_alpha: float,
                 client_ranks: Sequence[int], group_ranks: Sequence[int], rule: str, seed: int):
        if rule not in ("zero_pad", "stack"):
            raise ValueError(f"unknown rank aggregation {rule!r}")
        self.rule, self.seed = rule, seed
        self.client_ranks = [int(r) for r in client_ranks]
        self.group_ranks = [int(r) for r in group_ranks]
        self.r_max = max(self.group_ranks)
        self.scaling = lora_alpha / self.r_max
        self.models = {r: build(r, lora_alpha if r == self.r_max else lora_alpha * r / self.r_max)
                       for r in sorted(set(self.group_ranks))}
        self.templates = {r: trainable_state(m) for r, m in self.models.items()}
        top = self.templates[self.r_max]
        self.base_keys = [hetero.base_key(k) for k in top if hetero.is_a(k)]

    def initial(self) -> Params:
        """x_0: the r_max model's initial adapter (zero_pad) or the base weights it adapts (stack)."""
        if self.rule == "zero_pad":
            return {k: v.clone() for k, v in self.templates[self.r_max].items()}
        params = dict(self.models[self.r_max].named_parameters())
        return {k: params[k].detach().clone() for k in self.base_keys}

    def _load_base(self, model: torch.nn.Module, base: Params) -> None:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for k, w in base.items():
                params[k].copy_(w)

    def train(self, client: int, x_v: Params, round_: int, batches, lr: float) -> ClientUpdate:
        """Client `client` trains from version x_v: its truncation (zero_pad), or a fresh adapter on it (stack)."""
        r = self.client_ranks[client]
        model = self.models[r]
        if self.rule == "zero_pad":
            return backprop_train(model, hetero.truncate(x_v, r), batches, lr)
        self._load_base(model, x_v)
        seed = int(np.random.SeedSequence([self.seed, 3, round_, client]).generate_state(1)[0])
        fresh = hetero.fresh_adapter(self.templates[r], torch.Generator().manual_seed(seed))
        return backprop_train(model, fresh, batches, lr)

    def upload(self, client: int, params: Params, x_v: Params, x: Params, stale: bool) -> Params:
        """What the server aggregates of this client: its adapter, a stale one's change moved onto x."""
        if self.rule == "stack" or not stale:
            return params
        r = self.client_ranks[client]
        now, then = hetero.truncate(x, r), hetero.truncate(x_v, r)
        return {k: now[k] + (params[k] - then[k]) for k in params}

    def aggregate(self, strategy, x: Params, models: Sequence[Params], weights: Sequence[float]) -> Params:
        """x_{t+1}. zero_pad: the strategy on the per-rank mean (given as the one model of weight 1, whose
        weighted mean is itself); stack: x + eta * s * sum_i p_i B_i A_i."""
        if self.rule == "zero_pad":
            return strategy.step(x, [hetero.zero_pad_mean(models, weights, x)], [1.0])
        if type(strategy) is not FedAvg:
            raise ValueError(stack_refusal("this", type(strategy).__name__.lower()))
        delta = hetero.stacked_delta(models, weights, self.scaling)
        return {k: x[k] + strategy.eta * delta[k] for k in x}

    def eval_model(self, x: Params) -> torch.nn.Module:
        """The global as a model: the r_max adapter (zero_pad), or the merged base with a zero adapter (stack)."""
        model = self.models[self.r_max]
        if self.rule == "zero_pad":
            load_state(model, x)
        else:
            self._load_base(model, x)
            load_state(model, {k: torch.zeros_like(v) for k, v in self.templates[self.r_max].items()})
        return model

    def info(self) -> dict:
        """What summary.json says of the run: each group's rank, the rule, each group's adapter size."""
        sizes = {r: sum(t.numel() for t in s.values()) for r, s in self.templates.items()}
        return {"lora_ranks": self.group_ranks, "rank_aggregation": self.rule,
                "trainable_params": sizes[self.r_max],
                "trainable_params_per_group": [sizes[r] for r in self.group_ranks]}
