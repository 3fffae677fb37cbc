"""Server optimizers on dicts of trainable tensors (the LoRA adapter, or every weight for full fine-tuning)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from simfl.fl.strategies.fedadam import FedAdam
from simfl.fl.strategies.fedadamw import FedAdamW
from simfl.fl.strategies.fedavg import FedAvg, weighted_mean
from simfl.fl.strategies.fedavgm import FedAvgM

if TYPE_CHECKING:
    from simfl.config.server_optimizers import ServerOptimizer

STRATEGIES = {"fedavg": FedAvg, "fedavgm": FedAvgM, "fedadam": FedAdam, "fedadamw": FedAdamW}


def strategy(params: ServerOptimizer) -> FedAvg | FedAvgM | FedAdam | FedAdamW:
    """A fresh server optimizer with these typed hyperparameters (their defaults live in the config classes)."""
    return STRATEGIES[params.optimizer](**params.hyperparameters())


__all__ = ["FedAvg", "FedAvgM", "FedAdam", "FedAdamW", "STRATEGIES", "strategy", "weighted_mean"]
