"""FedAdam (Reddi et al. 2021): Adam on the pseudo-gradient, with bias-corrected moments as in the seed paper."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from simfl.fl.strategies.fedavg import Params, pseudo_gradient, weighted_mean


def adam_moments(g_t: Params, m_t: Params, v_t: Params, beta_1: float, beta_2: float) -> tuple[Params, Params]:
    """m_{t+1} = beta_1 m_t + (1 - beta_1) g_t;  v_{t+1} = beta_2 v_t + (1 - beta_2) g_t^2 (zeros at t = 0)."""
    m = {k: beta_1 * m_t.get(k, torch.zeros_like(g)) + (1 - beta_1) * g for k, g in g_t.items()}
    v = {k: beta_2 * v_t.get(k, torch.zeros_like(g)) + (1 - beta_2) * g * g for k, g in g_t.items()}
    return m, v


def adam_step(x: Params, m: Params, v: Params, t: int, eta: float, beta_1: float, beta_2: float,
              epsilon: float) -> Params:
    """x - eta * m_hat / (sqrt(v_hat) + epsilon), m_hat = m / (1 - beta_1^t), v_hat = v / (1 - beta_2^t)."""
    c1, c2 = 1 - beta_1**t, 1 - beta_2**t
    return {k: x[k] - eta * (m[k] / c1) / ((v[k] / c2).sqrt() + epsilon) for k in x}


@dataclass(kw_only=True)
class FedAdam:
    """Defaults in simfl/config/server_optimizers.py (FedAdamParams): eta 5e-4 (the paper's Table 3), beta_1 0.9,
    beta_2 0.999, epsilon 1e-6 (Algorithm 1).

    Reddi et al. write the step without bias correction; the seed paper's FedAdam
    baseline is its Algorithm 1 without weight decay, which corrects the bias, so
    FedAdamW with zero weight decay is exactly this.
    """

    eta: float
    beta_1: float
    beta_2: float
    epsilon: float
    t: int = 0
    m_t: Params = field(default_factory=dict)
    v_t: Params = field(default_factory=dict)

    def step(self, x_t: Params, models: Sequence[Params], weights: Sequence[float]) -> Params:
        g_t = pseudo_gradient(x_t, weighted_mean(models, weights))
        self.m_t, self.v_t = adam_moments(g_t, self.m_t, self.v_t, self.beta_1, self.beta_2)
        self.t += 1
        return adam_step(x_t, self.m_t, self.v_t, self.t, self.eta, self.beta_1, self.beta_2, self.epsilon)
