"""How sure a plan's recommendation is, over its replicates' draws: worked by hand, and through a real plan."""

from __future__ import annotations

import json

import pytest
import yaml

from simfl.plan.evaluate import REPLICATE_VALUES
from simfl.plan.search import confidence, summarize_plan
from simfl.plan.spec import PlanSpec

SPEC = PlanSpec(scenario="s.yaml", choose={"x": ["a", "b", "c"]}, minimize="cost_total",
                subject_to={"sim_time_s": {"max": 60}}, replicates=4)


def row(costs, times):
    """A point's row as evaluate_point writes it with replicates (the largest draw stands for the p95 here)."""
    return {"status": "ok", "error": None, "cost_total": sum(costs) / len(costs), "cost_total_p95": max(costs),
            "sim_time_s": sum(times) / len(times), "sim_time_s_p95": max(times),
            REPLICATE_VALUES: {"cost_total": costs, "sim_time_s": times}}


def test_the_share_of_draws_the_recommendation_wins_by_hand():
    # A is cheaper on average (10.5) but over the time limit in draw 2 (70 > 60): its p95 breaks the constraint, so
    # B (11 in every draw, always 50 s) is recommended. Draw by draw, the cheapest point meeting the limit is
    # A (10 < 11), B (11 < 12), B (A too slow), A (a tie at 11: the lower point number): B wins 2 of 4 draws and
    # meets the limit in all 4; A wins the other 2. C never meets the limit.
    rows = {0: row([10, 12, 9, 11], [50, 50, 70, 50]), 1: row([11, 11, 11, 11], [50, 50, 50, 50]),
            2: row([1, 1, 1, 1], [99, 99, 99, 99])}
    plan = summarize_plan(SPEC, [{"x": "a"}, {"x": "b"}, {"x": "c"}], rows, "exhaustive")
    assert plan["best"]["point"] == 1 and REPLICATE_VALUES not in plan["best"]["figures"]
    assert plan["confidence"] == {"draws": 4, "meets_constraints": 1.0, "cheapest_feasible": 0.5,
                                  "other_winners": [{"point": 0, "share": 0.5}], "no_point_feasible": 0.0}
    # without replicates there is nothing to count
    assert confidence(SPEC, {1: {"status": "ok"}}, 1) is None


def test_a_real_plan_says_how_sure_it_is(tmp_path):
    from simfl.plan.search import run_plan
    from tests.test_cli import scenario_file

    base = scenario_file(tmp_path, rounds=3)
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump({
        "scenario": base.name, "replicates": 3, "choose": {"fleet[0].device": ["jetson-agx-orin-64gb",
                                                                             "jetson-orin-nx-16gb"]},
        "minimize": "cost_total", "subject_to": {"sim_time_s": {"max": 1e6}}}))
    result = run_plan(tmp_path / "plan.yaml", tmp_path / "out")
    c = result.plan["confidence"]
    assert c["draws"] == 3 and c["meets_constraints"] == 1.0
    assert c["cheapest_feasible"] + sum(o["share"] for o in c["other_winners"]) == pytest.approx(1.0)
    assert REPLICATE_VALUES not in (tmp_path / "out" / "points.csv").read_text()
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert plan["confidence"] == c
    # what drives the best point's spread: per figure, the shares add up to 1 (measured profiles: the seeds alone)
    for figure in ("cost_total", "sim_time_s"):
        shares = [d["variance_share"] for d in plan["drivers"] if d["figure"] == figure]
        assert shares and sum(shares) == pytest.approx(1.0)
    assert (tmp_path / "out" / "drivers.png").stat().st_size > 0
