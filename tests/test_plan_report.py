"""The plan's report.html decides: its sentences, tables and charts checked against plans made by hand.

The points are hand-made rows (what evaluate_point returns) summarised by the real summarize_plan, so every number
the page should say is worked out below from the rows, not taken from the page's own code. The browser test (a real
simfl plan, opened in headless Chromium) is in tests/test_plan.py.
"""

import html
import re
from types import SimpleNamespace

import pytest

from simfl.plan.evaluate import REPLICATE_VALUES
from simfl.plan.search import summarize_plan
from simfl.plan.spec import PlanSpec, points
from simfl.report.figure_units import shown

H = 3600.0
CHOOSE = {"device": ["a", "b", "c"], "federation.clients_per_round": [4, 8]}
OOM = ("fleet[0].device: c cannot train flan-t5-base lora backprop seq_len 512 at batch 8: out of memory (predicted "
       "by the hardware model: needs {} GB of 8.0 GB)")


def row(time_h, p95_h, cost, draws_h, draws_cost, cost_p95=None, **more):
    """A point's row as evaluate_point gives it with replicates (4 draws): means, percentiles, each draw."""
    figures = {"sim_time_s": time_h * H, "sim_time_s_p95": p95_h * H, "sim_time_s_p05": time_h * H * 0.8,
               "kwh_total": 20.0, "co2_kg": 6.0, "cost_energy": 10.0, "cost_hardware": cost - 40.0,
               "cost_data": 30.0, "cost_total": cost, "cost_total_p95": cost if cost_p95 is None else cost_p95,
               "capex": 5000.0, **more}
    return {"status": "ok", "error": None, **figures,
            REPLICATE_VALUES: {"sim_time_s": [d * H for d in draws_h], "cost_total": draws_cost}}


def rows():
    # point numbers: (a,4)=0 (a,8)=1 (b,4)=2 (b,8)=3 (c,4)=4 (c,8)=5
    return {
        0: row(50, 60, 100.0, [50, 55, 45, 60], [100, 110, 90, 100], cost_p95=110.0),  # feasible, cheapest
        1: row(50, 60, 130.0, [50, 55, 45, 60], [130, 130, 130, 130], cost_p95=140.0),  # feasible
        2: row(80, 90, 50.0, [80, 90, 60, 85], [50, 50, 50, 50]),  # cheaper, 90 h at the p95: misses 72 h
        3: {"status": "stopped", "error": "the run stopped after 3 of 10 rounds: no client is available again",
            **{k: v for k, v in row(80, 90, 70.0, [1], [1]).items() if k not in ("status", "error")}},
        4: {"status": "invalid", "error": OOM.format("15.0")},
        5: {"status": "invalid", "error": OOM.format("14.9")},
    }


def page_of(tmp_path, subject_to, currency="EUR", rs=None, replicates=4, **plan_extra) -> str:
    """report.html of a plan over `rs` (default rows()), as written by simfl plan."""
    from simfl.report.html import plan_report

    spec = PlanSpec(scenario="x", choose=CHOOSE, minimize="cost_total", subject_to=subject_to,
                    replicates=replicates)
    space = points(CHOOSE)
    rs = rows() if rs is None else rs
    plan = {**summarize_plan(spec, space, rs, "exhaustive"), "currency": currency, **plan_extra}
    result = SimpleNamespace(spec=spec, space=space, rows=rs, plan=plan, folder=tmp_path)
    return plan_report(result, tmp_path / "plan.yaml").read_text()


def report(tmp_path, subject_to, **kw) -> str:
    """The text a reader of the page sees."""
    return html.unescape(re.sub(r"<[^>]+>", "", page_of(tmp_path, subject_to, **kw)))


def test_recommendation_in_sentences_with_units_currency_and_confidence(tmp_path):
    import math

    text = report(tmp_path, {"sim_time_s": {"max": 72 * H}}, estimated_inputs=[
        {"field": "fleet[0].device", "input": "a step time", "reason": "predicted", "log_sd": 0.5},
        {"field": "server.device", "input": "server idle power 55 W", "reason": "assumed"}],
        drawn_inputs=[{"input": "a100 price (1.83, 1.37 to 2.29)", "log_sd": math.log(2.29 / 1.37) / (2 * 1.6449)}])
    assert "Recommended: device = a, federation.clients_per_round = 4." in text
    # feasible: 0 and 1 (60 h at the p95 <= 72 h); 2 misses (90 h); 3 stopped, 4 and 5 never ran; 6 evaluated
    assert "It is the cheapest of the 2 points that meet every constraint (of 6 evaluated)." in text
    # money under 100 to the cent, from 100 without; time to 0.1 h, a whole hour without its .0
    assert ("With it the job finishes in 50 h on average (95th percentile 60 h of 4 draws, limit at most 72 h), uses "
            "20 kWh, emits 6 kg of CO2 and costs 100 EUR in total (energy cost 10.00 EUR, hardware cost 60.00 EUR, "
            "data cost 30.00 EUR); up-front capex: 5,000 EUR.") in text
    # draws (time h, cost): point 0 meets 72 h in all 4; point 2 (cost 50) only in draw 2 (60 h), where it wins
    assert ("it meets every constraint in 4 (100 %) and is the cheapest point that does in 3 (75 %); in the other 1 "
            "draw the cheapest point that meets them is device = b, federation.clients_per_round = 4.") in text
    # runner-up: point 1 at 130 EUR, 30 EUR (30 %) more than 100
    assert ("The runner-up, device = a, federation.clients_per_round = 8, has a total cost of 130 EUR (30.00 EUR "
            "more, 30 %).") in text
    # the cheaper point that misses: 90 h at the p95, 18 h over 72 h = 25 %
    assert ("1 point with a lower total cost misses a constraint; the nearest, device = b, "
            "federation.clients_per_round = 4 (50.00 EUR), finishes in 90 h at the 95th percentile of 4 draws, "
            "18 h (25 %) over the 72 h limit.") in text
    # an estimated input's 90 % band: exp(-+1.6449 x 0.5) = x0.44 to x2.28
    assert "a step time" in text and "×0.44 to ×2.28" in text and "server idle power 55 W" in text
    # a price drawn over its source's range 1.37 to 2.29: +-sqrt(2.29 / 1.37) = x0.77 to x1.29 of the median
    assert "a100 price (1.83, 1.37 to 2.29)×0.77 to ×1.29" in text
    # grouped by reason, counted
    assert "1 point: time over the 72 h limit at the 95th percentile of 4 draws" in text
    assert ("2 points: could not run: " + OOM.format("15.0") + " (and the like: the numbers differ)") in text
    assert "1 point: stopped early: the run stopped after 3 of 10 rounds: no client is available again" in text


def test_one_run_a_point_says_no_percentile_and_one_feasible_point_is_the_only_one(tmp_path):
    # one run a point: the rows' own figures, no percentiles; bound 55 h
    rs = {i: {k: x for k, x in r.items() if not k.endswith(("_p95", "_p05")) and k != REPLICATE_VALUES}
          for i, r in rows().items()}
    rs[1]["sim_time_s"] = 56 * H  # now only point 0 meets 55 h
    text = report(tmp_path, {"sim_time_s": {"max": 55 * H}}, rs=rs, replicates=1)
    assert "It is the only point that meets every constraint (of 6 evaluated)." in text
    assert "With it the job finishes in 50 h (limit at most 55 h), uses 20 kWh" in text
    assert "percentile" not in text.split("Top points")[0]
    # points 1 (56 h) and 2 (80 h) miss it; 56 h is 1 h (2 %) over 55 h
    assert "2 points: time over the 55 h limit" in text and "finishes in 56 h, 1 h (2 %) over the 55 h limit" in text


def test_the_hardware_charge_and_what_embodied_co2_leaves_out_are_said(tmp_path):
    text = report(tmp_path, {"sim_time_s": {"max": 72 * H}}, hardware_charge={"charge": "purchase", "jobs": 12},
                  embodied_not_counted=["jetson-x"])
    assert ("Hardware is charged as the purchases whole, shared over 12 jobs; embodied CO2 is not counted for "
            "jetson-x (no published figure).") in text


def test_embodied_co2_says_beside_it_what_it_leaves_out(tmp_path):
    rs = rows()
    for i in (0, 1, 2):
        rs[i].update(co2_embodied_kg=26.5, co2_total_kg=32.5)
    text = report(tmp_path, {"sim_time_s": {"max": 72 * H}}, rs=rs, embodied_not_counted=["jetson-x"],
                  hardware_charge={"charge": "life_share", "jobs": 1})
    assert ("emits 6 kg of CO2, is charged 26.5 kg of embodied CO2 (not counting jetson-x: no published figure) and "
            "costs 100 EUR in total") in text
    assert "; CO2 in all: 32.5 kg;" in text and "embodied CO2 (kg)" in text
    assert "CO2 in all (kg)" not in text  # the sum of two columns, left out of the tables
    assert "Hardware is charged as the job's share of each device's service life." in text


def test_a_chance_of_reaching_the_target_is_a_share_checked_as_it_is(tmp_path):
    from simfl.plan.search import with_p_target

    spec = PlanSpec(scenario="x", choose=CHOOSE, minimize="cost_total", replicates=20,
                    subject_to={"p_target_by_deadline": {"min": 0.9, "deadline_h": 72}})
    rs = rows()
    # 20 draws each: point 0 reaches the target in 72 h in 19 (95 %), point 2 (cheaper) in 16 (80 %), point 1 in 20
    for i, late in ((0, 1), (1, 0), (2, 4)):
        rs[i][REPLICATE_VALUES] = {"sim_time_s": [50 * H] * (20 - late) + [80 * H] * late,
                                   "cost_total": [rs[i]["cost_total"]] * 20}
    rs = {i: with_p_target(r, spec) for i, r in rs.items()}
    assert (rs[0]["p_target_by_deadline"], rs[2]["p_target_by_deadline"]) == (0.95, 0.8)
    from simfl.report.html import plan_report

    plan = {**summarize_plan(spec, points(CHOOSE), rs, "exhaustive"), "currency": "EUR"}
    page = plan_report(SimpleNamespace(spec=spec, space=points(CHOOSE), rows=rs, plan=plan, folder=tmp_path),
                       tmp_path / "plan.yaml").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "Recommended: device = a, federation.clients_per_round = 4." in text
    assert "chance of reaching the target by the deadline (72 h): 95 % (limit at least 90 %)" in text
    assert "P(target in time) (72 h) (%)" in text  # the table's column head, short
    # a share's shortfall in points of it, not as a percent of a percent: 90 - 80 = 10
    assert ("the nearest, device = b, federation.clients_per_round = 4 (50.00 EUR), has a chance of reaching the "
            "target by the deadline (72 h) of 80 %, 10 % under the 90 % minimum.") in text


def test_nothing_feasible_says_which_constraint_binds_and_by_how_much(tmp_path):
    text = report(tmp_path, {"sim_time_s": {"max": 40 * H}})
    assert "No point meets the constraints." in text and "Recommended:" not in text
    # the fastest at the p95 is 60 h (points 0 and 1; the lower number named): 20 h over 40 h = 50 %
    assert ("Time binds: the fastest point, device = a, federation.clients_per_round = 4, finishes in 60 h at the "
            "95th percentile of 4 draws, 20 h (50 %) over the 40 h limit. No point meets it; a limit of 60 h would "
            "admit this one.") in text
    assert "Nearest points (smallest shortfall first)" in text


def test_nothing_feasible_when_each_constraint_alone_is_met(tmp_path):
    # time <= 72 h at the p95: points 0 and 1 (60 h); cost <= 80 at the p95: point 2 (50) only. Shortfalls: point 0
    # 110 / 80 - 1 = 37.5 %, point 1 140 / 80 - 1 = 75 %, point 2 90 / 72 - 1 = 25 %: point 2 is the nearest
    text = report(tmp_path, {"sim_time_s": {"max": 72 * H}, "cost_total": {"max": 80.0}})
    assert "Time at most 72 h: 2 of 3 points meet it alone." in text
    assert "Total cost at most 80.00 EUR: 1 of 3 points meet it alone." in text
    assert ("Each constraint alone is met by some point, but none meets them all. The nearest, device = b, "
            "federation.clients_per_round = 4, finishes in 90 h at the 95th percentile of 4 draws, 18 h (25 %) over "
            "the 72 h limit.") in text
    # with two constrained figures, a point's verdict names each one it misses
    assert "time 90 h > 72 h" in text and "total cost 110 EUR > 80.00 EUR" in text


def test_a_figure_added_to_the_summary_is_shown_with_its_unit(tmp_path, monkeypatch):
    import simfl.report.plan_page as plan_page

    monkeypatch.setattr(plan_page, "FIGURES", (*plan_page.FIGURES, "cost_per_job", "embodied_co2_kg"))
    rs = rows()
    for i in (0, 1, 2):
        rs[i].update(cost_per_job=12.5, embodied_co2_kg=40.0)
    text = report(tmp_path, {"sim_time_s": {"max": 72 * H}}, currency="USD", rs=rs)
    assert "cost per job (USD)" in text and "embodied CO2 (kg)" in text  # the points table's heads
    # energy 10 + hardware 60 + data 30 = the total 100: those are its parts; the cost per job is not one
    assert ("costs 100 USD in total (energy cost 10.00 USD, hardware cost 60.00 USD, data cost 30.00 USD); "
            "embodied CO2: 40 kg; up-front capex: 5,000 USD; cost per job: 12.50 USD.") in text  # FIGURES order


def test_units_come_from_the_names():
    assert (shown("kwh_total").unit, shown("kwh_total").label) == ("kWh", "energy")
    assert (shown("embodied_co2_kg").unit, shown("embodied_co2_kg").label) == ("kg", "embodied CO2")
    assert shown("cost_per_job", "EUR").unit == "EUR" and shown("capex", "EUR").text(58843.2) == "58,843 EUR"
    assert shown("energy_j.total").unit == "J" and shown("energy_j.total").label == "energy total"
    # time in the largest unit that keeps the largest value at 1 or more of it
    assert shown("sim_time_s", values=[30.0]).text(30.0) == "30 s"
    assert shown("sim_time_s", values=[3000.0]).text(3000.0) == "50 min"  # 3000 s < 1 h
    assert shown("sim_time_s", values=[3600.0]).text(3600.0) == "1 h"
    assert shown("sim_time_s", values=[259200.0]).text(49247.8) == "13.7 h"
    assert shown("p_target_by_deadline").text(0.9) == "90 %"


def test_the_trade_off_is_drawn_only_between_two_or_more_points():
    from simfl.report.plan_page import front_2d
    from simfl.report.plots import tradeoff

    # (2, 4) is beaten by (2, 3); (4, 1) by (3, 1)
    assert front_2d([(1, 5), (2, 3), (2, 4), (3, 1), (4, 1)]) == [0, 1, 3]
    pts = [{"x": 1.0, "y": 1.0, "state": "feasible", "label": "a", "best": True},
           {"x": 2.0, "y": 2.0, "state": "infeasible", "label": "b", "best": False}]

    def labels(fig):
        return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "trade-off: no point is lower on both" not in labels(tradeoff(pts, "x", "y", (1.5, "max", "limit"), [0]))
    fig = tradeoff(pts, "x", "y", (1.5, "max", "limit"), [0, 1])
    assert "trade-off: no point is lower on both" in labels(fig)
    assert {"meets every constraint", "misses a constraint", "recommended"} <= set(labels(fig))
    assert "limit" in labels(fig) and any(line.get_xdata()[0] == 1.5 and line.get_linestyle() == ":"
                                         for line in fig.axes[0].lines)  # the limit, drawn and named


@pytest.mark.parametrize("limit_h", [72, 40])
def test_the_chart_is_on_the_page_feasible_or_not(tmp_path, limit_h):
    page = page_of(tmp_path, {"sim_time_s": {"max": limit_h * H}})
    assert "<h2>Total cost against time</h2>" in page and page.count("data:image/png;base64,") == 1
    assert "Pareto front" not in page
