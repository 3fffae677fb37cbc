"""Server optimizers' hyperparameters: one frozen class per optimizer, in its paper's symbols, the defaults' home.

A scenario names the optimizer apart from its hyperparameters (`train.optimizers: {fedadamw: {eta: 0.01}}`,
or `server_optimizer: fedadamw` beside `server: {eta: 0.02}`); the name picks the class that checks them, so
a misspelt or foreign hyperparameter (`etaa`, FedAdam's `beta_2` given to fedavgm) is refused at load. The
strategies in simfl/fl/strategies/ take `hyperparameters()` as keyword arguments and hold no defaults.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, TypeAdapter, model_serializer

from simfl.config.base import StrictModel

OptimizerName = Literal["fedavg", "fedavgm", "fedadam", "fedadamw"]


class _ServerOptimizer(StrictModel):
    """The name (`optimizer`) is the union's tag, never written inside the mapping (exclude: it is the mapping's
    key, or server_optimizer); every other field is a hyperparameter."""

    def hyperparameters(self) -> dict[str, float]:
        """Every hyperparameter, the defaults included: the strategy's keyword arguments."""
        return {k: getattr(self, k) for k in type(self).model_fields if k != "optimizer"}

    @model_serializer(mode="wrap")
    def _as_written(self, handler) -> dict[str, Any]:
        # Only the hyperparameters the scenario set: the resolved scenario and a training summary's `hyper` show
        # what was written, and load again to the same values.
        return {k: v for k, v in handler(self).items() if k in self.model_fields_set}


class FedAvgParams(_ServerOptimizer):
    """FedAvg (McMahan et al. 2017): x_{t+1} = x_t - eta g_t."""

    optimizer: Literal["fedavg"] = Field("fedavg", exclude=True)
    eta: float = Field(1.0, gt=0, description="Server learning rate; 1 makes the step the weighted mean itself.")


class FedAvgMParams(_ServerOptimizer):
    """FedAvgM (Hsu et al. 2019): m_{t+1} = beta m_t + g_t; x_{t+1} = x_t - eta m_{t+1}."""

    optimizer: Literal["fedavgm"] = Field("fedavgm", exclude=True)
    eta: float = Field(1.0, gt=0, description="Server learning rate.")
    beta: float = Field(0.9, ge=0, lt=1, description="Server momentum (the seed paper searched 0.85, 0.9, 0.95).")


class FedAdamParams(_ServerOptimizer):
    """FedAdam (Reddi et al. 2021), bias-corrected as in the seed paper's Algorithm 1."""

    optimizer: Literal["fedadam"] = Field("fedadam", exclude=True)
    eta: float = Field(5e-4, gt=0, description="Server learning rate (the seed paper's Table 3: 5e-4).")
    beta_1: float = Field(0.9, ge=0, lt=1, description="Decay of the first moment m_t.")
    beta_2: float = Field(0.999, ge=0, lt=1, description="Decay of the second moment v_t.")
    epsilon: float = Field(1e-6, gt=0, description="Added to sqrt(v_hat) in the step's denominator.")


class FedAdamWParams(FedAdamParams):
    """FedAdamW: the seed paper's Algorithm 1, FedAdam with decoupled weight decay."""

    optimizer: Literal["fedadamw"] = Field("fedadamw", exclude=True)  # type: ignore[assignment]
    weight_decay: float = Field(1e-3, ge=0, description="Decoupled weight decay lambda (Table 3: 1e-3).")


ServerOptimizer = Annotated[Union[FedAvgParams, FedAvgMParams, FedAdamParams, FedAdamWParams],
                            Field(discriminator="optimizer")]

_ADAPTER: TypeAdapter = TypeAdapter(ServerOptimizer)


def server_optimizer(name: str, hyper: dict[str, Any] | None = None) -> _ServerOptimizer:
    """The typed hyperparameters of optimizer `name` (hyper as written: {"eta": 0.01}; none: the defaults)."""
    return _ADAPTER.validate_python({**(hyper or {}), "optimizer": name})


def named(value: Any, name: Any) -> Any:
    """A hyperparameter mapping as written, tagged with the optimizer it belongs to, for the union to check
    against that optimizer's class; anything else is left for the schema to report."""
    if isinstance(value, dict) and isinstance(name, str):
        return {**value, "optimizer": value.get("optimizer", name)}
    return value
