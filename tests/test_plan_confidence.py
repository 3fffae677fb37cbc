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


def test_p_target_by_deadline_is_the_share_of_draws_reaching_it_by_hand(tmp_path):
    """Rounds to the target from a convergence table, drawn per replicate with the law's held-out error; every other
    input measured and every link fixed, so a replicate's time is its rounds x one round's time, worked by hand."""
    import math

    from simfl.build import ROUNDS_KEY
    from simfl.plan.search import run_plan
    from simfl.uncertainty import Draws
    from tests.test_cli import scenario_file
    from tests.test_convergence import held_out_table

    t = held_out_table(tmp_path)

    def conv(sc):
        sc["federation"]["rounds"] = {"convergence": t.name}
        sc["federation"]["clients_per_round"] = 8
        sc["training"]["local_steps"] = 2
    base = scenario_file(tmp_path, conv)
    seed = yaml.safe_load(base.read_text())["seed"]
    n = 8
    # the law at K 8, 2 local steps (ceil of the fitted law), and each replicate's draw of its error (80 % interval
    # exp(±ln 1.21), log-sd ln 1.21 / 1.2816: tests/test_convergence.py)
    from simfl.config.load import load_scenario
    nominal = load_scenario(base).federation.rounds
    sd = math.log(1.21) / 1.2815515655446004
    rounds = [max(1, round(nominal * math.exp(sd * Draws(seed, i).z(ROUNDS_KEY)))) for i in range(n)]
    # one round of quickstart's Orins at 2 local steps: 1.46 s of compute; both transfers of 22,020,096 bits at 40 and
    # 10 Mbit/s with 50.5 ms latency each way; aggregating 8 uploads of 688,128 params at 84.96e9 params/s
    bits = 22_020_096
    round_s = 1.46 + 2 * 0.0505 + bits / 40e6 + bits / 10e6 + 8 * 688_128 / 84.96e9
    times = sorted(r * round_s for r in rounds)
    deadline_s = (times[2] + times[3]) / 2  # between the 3rd and 4th fastest draw: 3 of 8 reach it
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump({
        "scenario": base.name, "replicates": n, "choose": {"fleet[0].count": [100]}, "minimize": "cost_total",
        "subject_to": {"p_target_by_deadline": {"min": 0.3, "deadline_h": deadline_s / 3600}}}))
    result = run_plan(tmp_path / "plan.yaml", tmp_path / "out")
    assert result.rows[0]["p_target_by_deadline"] == 3 / 8
    assert result.plan["best"]["point"] == 0 and result.plan["confidence"]["meets_constraints"] == 3 / 8
    assert "p_target_by_deadline" in (tmp_path / "out" / "points.csv").read_text().splitlines()[0]
    # asking 0.5 makes it infeasible
    spec = yaml.safe_load((tmp_path / "plan.yaml").read_text())
    spec["subject_to"]["p_target_by_deadline"]["min"] = 0.5
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(spec))
    assert run_plan(tmp_path / "plan.yaml", tmp_path / "out2").plan["best"] is None


def test_p_target_by_deadline_bad_uses_are_one_line(tmp_path):
    from tests.test_cli import scenario_file, simfl as simfl_cli

    base = scenario_file(tmp_path)
    cases = [({"min": 0.9}, 20, "give {min: a probability in (0, 1], deadline_h: hours}"),
             ({"min": 0.9, "deadline_h": 72}, 1, "is a share of replicates: give replicates"),
             ({"min": 0.9, "deadline_h": 72}, 20, "needs the rounds to the target: give the scenario federation.rounds")]
    for bound, replicates, message in cases:
        (tmp_path / "plan.yaml").write_text(yaml.safe_dump({
            "scenario": base.name, "replicates": replicates, "choose": {"fleet[0].count": [100]},
            "minimize": "cost_total", "subject_to": {"p_target_by_deadline": bound}}))
        r = simfl_cli("plan", tmp_path / "plan.yaml", "--out", tmp_path / "o")
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
        assert not (tmp_path / "o").exists()
