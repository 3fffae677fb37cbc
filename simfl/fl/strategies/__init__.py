"""Server optimizers on dicts of trainable tensors (the LoRA adapter, or every weight for full fine-tuning)."""

from simfl.fl.strategies.fedadam import FedAdam
from simfl.fl.strategies.fedadamw import FedAdamW
from simfl.fl.strategies.fedavg import FedAvg, weighted_mean
from simfl.fl.strategies.fedavgm import FedAvgM

STRATEGIES = {"fedavg": FedAvg, "fedavgm": FedAvgM, "fedadam": FedAdam, "fedadamw": FedAdamW}

__all__ = ["FedAvg", "FedAvgM", "FedAdam", "FedAdamW", "STRATEGIES", "weighted_mean"]
