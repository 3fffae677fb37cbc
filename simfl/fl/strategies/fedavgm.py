"""FedAvgM (Hsu et al. 2019): server momentum on the pseudo-gradient."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from simfl.fl.strategies.fedavg import Params, pseudo_gradient, weighted_mean


@dataclass(kw_only=True)
class FedAvgM:
    """m_{t+1} = beta * m_t + g_t;  x_{t+1} = x_t - eta * m_{t+1}.

    Defaults in simfl/config/server_optimizers.py (FedAvgMParams): eta 1.0, beta 0.9 (the paper's
    momentum search set is 0.85/0.9/0.95; its Table 3 lost the chosen value in extraction).
    """

    eta: float
    beta: float
    m_t: Params = field(default_factory=dict)

    def step(self, x_t: Params, models: Sequence[Params], weights: Sequence[float]) -> Params:
        g_t = pseudo_gradient(x_t, weighted_mean(models, weights))
        self.m_t = {k: self.beta * self.m_t[k] + g_t[k] if k in self.m_t else g_t[k].clone() for k in g_t}
        return {k: x_t[k] - self.eta * self.m_t[k] for k in x_t}
