"""Server optimizers: two clients, three-element tensors, two rounds, expected values worked by hand."""

import math

import pytest

torch = pytest.importorskip("torch")

from simfl.config.server_optimizers import FedAdamParams, FedAdamWParams  # noqa: E402
from simfl.fl.strategies import FedAvg, FedAvgM, strategy, weighted_mean  # noqa: E402

T = lambda *v: {"w": torch.tensor(v, dtype=torch.float64)}  # noqa: E731
X0 = T(1.0, 2.0, 3.0)
# round 1: client a [0, 2, 4] with 1 sample, client b [1, 1, 1] with 3: mean [0.75, 1.25, 1.75]
R1 = ([T(0.0, 2.0, 4.0), T(1.0, 1.0, 1.0)], [1, 3])
# round 2: clients [1, 1, 1] and [0, 0, 0], equal weights: mean [0.5, 0.5, 0.5]
R2 = ([T(1.0, 1.0, 1.0), T(0.0, 0.0, 0.0)], [2, 2])


def two_rounds(strategy):
    x1 = strategy.step(X0, *R1)
    x2 = strategy.step(x1, *R2)
    return x1["w"].tolist(), x2["w"].tolist()


def test_weighted_mean():
    assert weighted_mean(*R1)["w"].tolist() == [0.75, 1.25, 1.75]


def test_fedavg_lr_1_is_the_weighted_mean():
    x1, x2 = two_rounds(FedAvg(eta=1.0))
    assert x1 == [0.75, 1.25, 1.75] and x2 == [0.5, 0.5, 0.5]


def test_fedavg_half_lr():
    # g1 = [0.25, 0.75, 1.25] -> x1 = [0.875, 1.625, 2.375]; g2 = x1 - 0.5 -> x2 = x1 - g2 / 2
    x1, x2 = two_rounds(FedAvg(eta=0.5))
    assert x1 == [0.875, 1.625, 2.375]
    assert x2 == pytest.approx([0.6875, 1.0625, 1.4375])


def test_fedavgm():
    # m1 = g1 = [0.25, 0.75, 1.25]; x1 = [0.75, 1.25, 1.75]
    # g2 = x1 - 0.5 = [0.25, 0.75, 1.25]; m2 = 0.9 m1 + g2 = [0.475, 1.425, 2.375]; x2 = x1 - m2
    x1, x2 = two_rounds(FedAvgM(eta=1.0, beta=0.9))
    assert x1 == pytest.approx([0.75, 1.25, 1.75])
    assert x2 == pytest.approx([0.275, -0.175, -0.625])


def adam_by_hand(eta, lam, b1=0.9, b2=0.999, eps=1e-6):
    """Algorithm 1 written out per element, in plain floats."""
    out = []
    for x0, a1, b1_, a2, b2_ in zip([1.0, 2.0, 3.0], [0.0, 2.0, 4.0], [1.0, 1.0, 1.0], [1.0] * 3, [0.0] * 3):
        g1 = x0 - (1 * a1 + 3 * b1_) / 4
        m1, v1 = (1 - b1) * g1, (1 - b2) * g1 * g1
        x1 = x0 - eta * lam * x0
        x1 = x1 - eta * (m1 / (1 - b1)) / (math.sqrt(v1 / (1 - b2)) + eps)
        g2 = x1 - (a2 + b2_) / 2
        m2, v2 = b1 * m1 + (1 - b1) * g2, b2 * v1 + (1 - b2) * g2 * g2
        x2 = x1 - eta * lam * x1
        x2 = x2 - eta * (m2 / (1 - b1**2)) / (math.sqrt(v2 / (1 - b2**2)) + eps)
        out.append((x1, x2))
    return [o[0] for o in out], [o[1] for o in out]


def test_fedadam_two_rounds():
    x1, x2 = two_rounds(strategy(FedAdamParams(eta=0.1)))
    e1, e2 = adam_by_hand(0.1, 0.0)
    assert x1 == pytest.approx(e1, abs=1e-12) and x2 == pytest.approx(e2, abs=1e-12)
    # round 1 of bias-corrected Adam moves each weight by eta * g / (|g| + eps): about 0.1
    assert x1 == pytest.approx([0.9, 1.9, 2.9], abs=1e-5)


def test_fedadamw_two_rounds():
    x1, x2 = two_rounds(strategy(FedAdamWParams(eta=0.1, weight_decay=0.01)))
    e1, e2 = adam_by_hand(0.1, 0.01)
    assert x1 == pytest.approx(e1, abs=1e-12) and x2 == pytest.approx(e2, abs=1e-12)
    # decay takes eta * lambda * x = 0.001 x before the Adam step
    assert x1[2] == pytest.approx(3.0 * 0.999 - 0.1 * 1.25 / (1.25 + 1e-6), abs=1e-12)


def test_fedadamw_without_weight_decay_is_fedadam():
    assert (two_rounds(strategy(FedAdamWParams(eta=0.05, weight_decay=0.0)))
            == two_rounds(strategy(FedAdamParams(eta=0.05))))


def test_paper_defaults():
    a = strategy(FedAdamWParams())  # the defaults live in the config class; the strategy holds none
    assert (a.eta, a.weight_decay, a.beta_1, a.beta_2, a.epsilon) == (5e-4, 1e-3, 0.9, 0.999, 1e-6)
