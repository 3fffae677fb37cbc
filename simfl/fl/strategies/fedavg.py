"""FedAvg (McMahan et al. 2017): the weighted mean of client models, applied with a server learning rate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

Params = dict[str, torch.Tensor]


def weighted_mean(models: Sequence[Params], weights: Sequence[float]) -> Params:
    """sum_i w_i x_i / sum_i w_i over the clients' models (weights: their sample counts)."""
    if not models or len(models) != len(weights):
        raise ValueError("need one weight per client model, and at least one model")
    total = float(sum(weights))
    return {k: sum(w * m[k] for m, w in zip(models, weights)) / total for k in models[0]}


def pseudo_gradient(x_t: Params, mean: Params) -> Params:
    """g_t = x_t - mean of client models (the seed paper's Algorithm 1)."""
    return {k: x_t[k] - mean[k] for k in x_t}


@dataclass
class FedAvg:
    """x_{t+1} = x_t - eta * g_t; with eta = 1 this is the weighted mean itself. Default eta: FedAvgParams."""

    eta: float

    def step(self, x_t: Params, models: Sequence[Params], weights: Sequence[float]) -> Params:
        g_t = pseudo_gradient(x_t, weighted_mean(models, weights))
        return {k: x_t[k] - self.eta * g_t[k] for k in x_t}
