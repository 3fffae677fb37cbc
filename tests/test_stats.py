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


def test_the_stated_80_percent_interval_and_its_leave_one_out_coverage_by_hand():
    from simfl.stats import Z80, interval_half_width, interval_text, loo_inside, quantile

    xs = [0.05, 0.10, 0.20, 0.40, 0.80]
    # 0.8 x (5 - 1) = 3.2: between the 4th (0.40) and 5th (0.80) order statistic, 0.40 + 0.2 x 0.40 = 0.48
    assert quantile(xs, 0.8) == pytest.approx(0.48)
    assert interval_half_width(xs) == pytest.approx(0.48)
    # each left out: the others' 80th percentile (4 points: position 2.4)
    #   0.05 -> [0.10 0.20 0.40 0.80]: 0.40 + 0.4 x 0.40 = 0.56, inside
    #   0.10 -> [0.05 0.20 0.40 0.80]: 0.56, inside;  0.20 -> [0.05 0.10 0.40 0.80]: 0.56, inside
    #   0.40 -> [0.05 0.10 0.20 0.80]: 0.20 + 0.4 x 0.60 = 0.44, inside
    #   0.80 -> [0.05 0.10 0.20 0.40]: 0.20 + 0.4 x 0.20 = 0.28, outside
    assert loo_inside(xs) == 4
    # an interval stated from the very points it is checked on would have held 4 of 5 too here, but the largest
    # point is never inside an interval set without it: leave-one-out cannot be fooled by one outlier
    assert loo_inside([0.1, 0.1, 0.1, 0.1, 5.0]) == 4
    # ln 1.3 = 0.2624: -23 % (1 - 1/1.3) to +30 %
    assert interval_text(0.262364264) == "-23 % to +30 %"
    assert Z80 == pytest.approx(1.2815515655446004)
