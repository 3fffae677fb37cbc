"""FedAdamW: the seed paper's Algorithm 1, FedAdam with decoupled weight decay (after Loshchilov and Hutter)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from simfl.fl.strategies.fedadam import FedAdam, adam_moments, adam_step
from simfl.fl.strategies.fedavg import Params, pseudo_gradient, weighted_mean


@dataclass(kw_only=True)
class FedAdamW(FedAdam):
    """Algorithm 1, in its order:

        g_t = x_t - mean(client models)
        m_{t+1} = beta_1 m_t + (1 - beta_1) g_t;   v_{t+1} = beta_2 v_t + (1 - beta_2) g_t^2
        x_{t+1} = x_t - eta * lambda * x_t                       (decoupled weight decay)
        x_{t+1} = x_{t+1} - eta * m_hat / (sqrt(v_hat) + epsilon) (bias-corrected moments)

    Defaults in simfl/config/server_optimizers.py (FedAdamWParams): eta 5e-4 and lambda 1e-3 (Table 3), beta_1
    0.9, beta_2 0.999, epsilon 1e-6.
    """

    weight_decay: float  # lambda

    def step(self, x_t: Params, models: Sequence[Params], weights: Sequence[float]) -> Params:
        g_t = pseudo_gradient(x_t, weighted_mean(models, weights))
        self.m_t, self.v_t = adam_moments(g_t, self.m_t, self.v_t, self.beta_1, self.beta_2)
        self.t += 1
        decayed = {k: x - self.eta * self.weight_decay * x for k, x in x_t.items()}
        return adam_step(decayed, self.m_t, self.v_t, self.t, self.eta, self.beta_1, self.beta_2, self.epsilon)
