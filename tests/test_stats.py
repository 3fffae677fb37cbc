"""Student-t quantiles and intervals against tabulated values and a hand computation."""

import math

import pytest

from simfl.stats import mean_ci, t_cdf, t_quantile


def test_t_quantiles_match_tables():
    for df, ref in ((1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (30, 2.0423), (120, 1.9799)):
        assert t_quantile(0.975, df) == pytest.approx(ref, abs=1e-4)
    assert t_quantile(0.95, 5) == pytest.approx(2.0150, abs=1e-4)


def test_t_cdf_symmetry_and_cauchy():
    # one degree of freedom is the Cauchy distribution: F(t) = 1/2 + atan(t) / pi
    for t in (-3.0, -0.5, 0.7, 2.0, 10.0):
        assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)
        assert t_cdf(t, 7) + t_cdf(-t, 7) == pytest.approx(1.0, abs=1e-12)


def test_mean_ci_by_hand():
    # 1, 2, 3, 4: mean 2.5, sd sqrt(5/3), half width t(0.975, 3) = 3.18245 x sd / 2
    s = mean_ci([1, 2, 3, 4])
    sd = math.sqrt(5 / 3)
    assert (s["n"], s["mean"], s["sd"]) == (4, 2.5, pytest.approx(sd))
    assert s["ci95_high"] - 2.5 == pytest.approx(3.182446 * sd / 2, rel=1e-6)
    assert s["ci95_low"] == pytest.approx(5.0 - s["ci95_high"])
    assert mean_ci([3.0]) == {"n": 1, "mean": 3.0, "sd": None, "ci95_low": None, "ci95_high": None}
    assert mean_ci([None, float("nan"), 2.0, 4.0])["n"] == 2
    assert mean_ci([])["mean"] is None
