"""summary.json figures against hand-worked numbers: network kWh, cost, CO2, G, statuses, loud warnings."""

import json
import math

import pytest

from simfl import load_scenario, simulate
from tests.test_cli import scenario_file, simfl as simfl_cli

# quickstart: flan-t5-small LoRA r16 q,v = 688,128 params x 32 bits = 22,020,096 bits each way;
# LTE per-bit energy: base station 7.62e-5 down / 1.9e-5 up, plus 18.85e-8 J/bit of switches and routers
# (2.14 + 1.83 + 3 x 2.52 + 4 x 0.85 + 2 x 1.96, in 1e-8) each way.
BITS = 22_020_096
E_BIT_J = (7.62e-5 + 18.85e-8) + (1.9e-5 + 18.85e-8)


def test_network_kwh_per_round_cost_and_co2_by_hand(tmp_path):
    r = simulate(load_scenario(scenario_file(tmp_path, rounds=5)))
    s = r.summary
    assert s["kwh_network_per_round_mean"] == pytest.approx(10 * BITS * E_BIT_J / 3.6e6, rel=1e-12)
    assert s["energy_j"]["network"] == pytest.approx(5 * 10 * BITS * E_BIT_J, rel=1e-12)
    total_kwh = s["energy_j"]["total"] / 3.6e6
    assert s["kwh_total"] == pytest.approx(total_kwh, rel=1e-12)
    assert s["cost_energy"] == pytest.approx(total_kwh * 0.30, rel=1e-12)
    assert s["co2_kg"] == pytest.approx(total_kwh * 380 / 1000, rel=1e-12)


def test_granularity_mean_and_total_by_hand(tmp_path):
    s = simulate(load_scenario(scenario_file(tmp_path, rounds=5))).summary
    # T_comp: 2 steps x 0.73 s. T_comm: latency 0.0505 s each way, BITS at 40 and 10 Mbit/s,
    # aggregation of 10 uploads x 688,128 params at 84.96e9 params/s.
    t_comp = 1.46
    t_comm = 2 * 0.0505 + BITS / 40e6 + BITS / 10e6 + 10 * 688_128 / 84.96e9
    assert s["t_comp_total_s"] == pytest.approx(5 * t_comp)
    assert s["t_comm_total_s"] == pytest.approx(5 * t_comm)
    assert s["granularity_mean"] == pytest.approx(t_comp / t_comm)
    assert s["granularity_total"] == pytest.approx(t_comp / t_comm)


def test_mean_of_rounds_and_total_differ_when_rounds_differ(tmp_path):
    # Over-selection with dropout gives rounds of different lengths: the mean of per-round G
    # and total T_comp / total T_comm are different figures, each as defined.
    def vary(s):
        s["federation"].update(dropout_prob=0.3, over_selection=0.5)
    r = simulate(load_scenario(scenario_file(tmp_path, vary, rounds=20)))
    rounds = r.rounds[r.rounds["clients_completed"] > 0]
    assert r.summary["granularity_mean"] == pytest.approx((rounds["t_comp_s"] / rounds["t_comm_s"]).mean())
    assert r.summary["granularity_total"] == pytest.approx(r.rounds["t_comp_s"].sum() / r.rounds["t_comm_s"].sum())


@pytest.mark.parametrize("federation", [{"deadline_s": 1.0}, {"dropout_prob": 1.0}])
def test_run_that_aggregates_nothing_says_so_loudly(tmp_path, federation):
    f = scenario_file(tmp_path, lambda s: s["federation"].update(federation))
    r = simfl_cli("run", f, "--out", tmp_path / "out", "--no-plots")
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["rounds_without_update"] == 5 and s["rounds_short_of_k"] == 5
    assert s["client_rounds"]["completed"] == 0
    assert s["granularity_mean"] is None and s["granularity_total"] is None
    loud = [w for w in s["warnings"] if w.startswith("NO ROUND AGGREGATED ANY UPDATE: all 5 rounds")]
    assert len(loud) == 1
    assert f"warning: {loud[0]}\n" in r.stderr


def test_rounds_mostly_short_of_k_warn(tmp_path):
    f = scenario_file(tmp_path, lambda s: s["federation"].update(dropout_prob=0.5), rounds=20)
    r = simulate(load_scenario(f))
    short = int((r.rounds["clients_completed"] < 10).sum())
    assert short > 10
    assert r.summary["rounds_short_of_k"] == short
    assert any(w.startswith(f"{short} of 20 rounds aggregated fewer than K = 10 uploads") for w in r.warnings)
    fine = simulate(load_scenario(scenario_file(tmp_path, rounds=20)))
    assert not any("fewer than K" in w or "no update" in w for w in fine.warnings)


def test_statuses_are_counted_separately(tmp_path):
    def over(s):
        s["federation"].update(over_selection=0.3, deadline_s=10.0)
    s = simulate(load_scenario(scenario_file(tmp_path, over, rounds=3))).summary
    assert set(s["client_rounds"]) == {"completed", "dropped", "late", "surplus", "offline", "stale"}
    # 13 selected, all identical: the K-th upload closes each round, the other 3 land with it -> surplus
    assert s["client_rounds"] == {"completed": 30, "dropped": 0, "late": 0, "surplus": 9, "offline": 0, "stale": 0}
    assert math.isfinite(s["granularity_mean"])


def test_estimated_inputs_listed_and_warned(tmp_path):
    r = simfl_cli("run", scenario_file(tmp_path), "--out", tmp_path / "out", "--no-plots")
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    # quickstart: Orin LoRA steps at batch 8 are measured; the idle powers and the A100's aggregation are assumed.
    assert [(e["field"], e["input"]) for e in s["estimated_inputs"]] == [
        ("fleet[0].device", "jetson-agx-orin-64gb idle power 7 W"),
        ("server.device", "a100-80gb idle power 55 W"),
        ("server.device", "a100-80gb aggregation 8.496e+10 params/s at 75.8 W"),
    ]
    assert all(e["reason"].startswith("estimate") for e in s["estimated_inputs"])
    line = [ln for ln in r.stderr.splitlines() if "estimated input" in ln]
    assert line == ["warning: this run rests on 3 estimated input(s), not measurements: jetson-agx-orin-64gb idle "
                    "power 7 W; a100-80gb idle power 55 W; a100-80gb aggregation 8.496e+10 params/s at 75.8 W "
                    "(reasons in summary.json estimated_inputs)"]


def test_datasheet_and_predicted_steps_are_listed(tmp_path):
    def nano(s):
        s["fleet"] = [{"count": 50, "device": "jetson-orin-nano-8gb", "network": "lte"},
                      {"count": 50, "device": "jetson-agx-orin-64gb", "network": "lte"}]
        s["training"]["batch_size"] = 8
        s["training"]["seq_len"] = 256  # nobody measured it: the Orin's step comes from the model too
    r = simulate(load_scenario(scenario_file(tmp_path, nano)))
    steps = {e["field"]: e for e in r.summary["estimated_inputs"] if "training step" in e["input"]}
    assert steps["fleet[0].device"]["reason"].startswith("predicted by the hardware model (datasheet of "
                                                         "jetson-orin-nano-8gb with soc-gpu class parameters")
    assert steps["fleet[1].device"]["input"] == ("jetson-agx-orin-64gb training step time and power, "
                                                 "flan-t5-small lora backprop seq_len 256 batch 8")
    assert steps["fleet[1].device"]["reason"].startswith("predicted by the hardware model (fitted to 12 measured "
                                                         "points of jetson-agx-orin-64gb); 80 % interval -")


def test_measured_only_run_has_an_empty_list(tmp_path):
    # The CPU profile was calibrated here: steps measured, no idle power claimed; an inline server whose
    # figures are marked measured. Nothing is estimated, so the list is empty and no warning says so.
    def cpu(s):
        s["fleet"] = [{"count": 20, "device": "cpu-2core-epyc", "network": "lte"}]
        s["server"] = {"device": "lab-server", "network": "ethernet-10gbit"}
        s["hardware"] = {"lab-server": {"name": "lab-server", "source": "measured in the lab", "estimated": False,
                                        "peak_flops": 1e12, "memory_bytes": 1e10, "idle_power_w": 40.0,
                                        "aggregation": {"params_per_s": 1e9, "power_w": 60.0,
                                                        "source": "measured"}}}
        s["training"]["batch_size"] = 4
    r = simulate(load_scenario(scenario_file(tmp_path, cpu)))
    assert r.summary["estimated_inputs"] == []
    assert not any("estimated input" in w for w in r.warnings)


def test_timeline_bars_stop_where_a_dropped_client_failed():
    from types import SimpleNamespace

    from simfl.report.plots import bar_spans
    nan = float("nan")
    row = dict(download_start_s=0.0, download_end_s=1.1, compute_start_s=1.1, compute_end_s=2.0,
               upload_start_s=nan, upload_end_s=nan, end_s=2.0)
    assert bar_spans(SimpleNamespace(**row, status="dropped"), 9.0) == [("download", 0.0, 1.1),
                                                                         ("compute", 1.1, 2.0)]
    assert bar_spans(SimpleNamespace(**row, status="late"), 9.0)[-1] == ("waiting", 2.0, 9.0)


def test_hardware_and_data_cost_by_hand(tmp_path):
    s = simulate(load_scenario(scenario_file(tmp_path, rounds=5))).summary
    hours = s["sim_time_s"] / 3600
    # 100 Orins bought at EUR 2,400 over 5 years of 365.25 days; the A100 server rented at EUR 1.8308 an hour
    orin_per_hour = 2400 / (5 * 365.25 * 24)
    assert s["cost_hardware"] == pytest.approx((100 * orin_per_hour + 1.8308) * hours, rel=1e-12)
    assert s["capex"] == 100 * 2400
    # LTE at EUR 0.5704 a GB: 5 rounds x 10 clients x 2 directions x 22,020,096 bits; the wired server link is free
    assert s["cost_data"] == pytest.approx(5 * 10 * 2 * BITS / 8 / 1e9 * 0.5704, rel=1e-12)
    assert s["cost_total"] == pytest.approx(s["cost_energy"] + s["cost_hardware"] + s["cost_data"], rel=1e-12)
    assert s["currency"] == "EUR"
    assert [r["device"] for r in s["costs"]["hardware"]] == ["jetson-agx-orin-64gb", "a100-80gb"]


def test_unpriced_devices_are_named_and_other_currencies_refused(tmp_path):
    def cpu(sc):
        sc["fleet"][0]["device"] = "cpu-2core-epyc"
        sc["training"]["batch_size"] = 2
    r = simulate(load_scenario(scenario_file(tmp_path, cpu, rounds=2)))
    assert "no price for cpu-2core-epyc: its hardware cost is not counted (add `price:` to the profile)" in r.warnings
    assert r.summary["capex"] == 0 and len(r.summary["costs"]["hardware"]) == 1

    def usd(sc):
        sc["accounting"]["currency"] = "USD"
    r = simfl_cli("validate", scenario_file(tmp_path, usd))
    assert r.returncode == 2
    assert r.stderr.endswith("fleet[0].device: jetson-agx-orin-64gb is priced in EUR, but the scenario counts in "
                             "USD (accounting.currency): give accounting.exchange_rates.EUR (USD per EUR), or count "
                             "in EUR\n")

    def usd_rated(sc):
        sc["accounting"].update(currency="USD", exchange_rates={"EUR": 2.0})
    eur = simulate(load_scenario(scenario_file(tmp_path, rounds=2))).summary
    dollars = simulate(load_scenario(scenario_file(tmp_path, usd_rated, rounds=2))).summary
    assert dollars["cost_hardware"] == pytest.approx(2 * eur["cost_hardware"], rel=1e-12)
    assert dollars["cost_data"] == pytest.approx(2 * eur["cost_data"], rel=1e-12)
    assert dollars["capex"] == 2 * eur["capex"] and dollars["currency"] == "USD"


def test_hardware_price_is_bought_rented_or_both():
    from pydantic import ValidationError

    from simfl.config.profiles import HardwarePrice

    assert HardwarePrice(rental_per_hour=2.0, currency="EUR", source="x").per_hour == 2.0
    assert HardwarePrice(purchase=8766.0, service_life_years=1.0, currency="EUR", source="x").per_hour == \
        pytest.approx(8766.0 / 8766.0)
    both = HardwarePrice(purchase=8766.0, service_life_years=1.0, rental_per_hour=5.0, currency="EUR", source="x")
    assert both.per_hour == pytest.approx(1.0)  # bought: its life's share (hardware_charge: rental takes the 5.0)
    for bad in ({"purchase": 1.0}, {"rental_per_hour": 1.0, "service_life_years": 1.0}, {}):
        with pytest.raises(ValidationError):
            HardwarePrice(**bad, currency="EUR", source="x")


def test_hardware_charged_whole_over_jobs_or_rented_by_hand(tmp_path):
    life = simulate(load_scenario(scenario_file(tmp_path, rounds=5))).summary
    hours = life["sim_time_s"] / 3600
    a100 = 1.8308 * hours  # the server is rented by the hour in every mode

    def per_job(sc):
        sc["accounting"].update(hardware_charge="purchase", jobs=4)
    s = simulate(load_scenario(scenario_file(tmp_path, per_job, rounds=5))).summary
    # the same schedule; 100 Orins at EUR 2,400 bought whole and shared over 4 jobs: EUR 60,000 a job
    assert s["sim_time_s"] == life["sim_time_s"]
    assert s["cost_hardware"] == pytest.approx(100 * 2400 / 4 + a100, rel=1e-12)
    assert s["capex"] == 100 * 2400
    assert [(h["charge"], h["per_hour"]) for h in s["costs"]["hardware"]] == [("purchase / 4 jobs", None),
                                                                             ("rental", 1.8308)]

    def rented(sc):
        sc["accounting"]["hardware_charge"] = "rental"
        sc["patch"] = {"devices.jetson-agx-orin-64gb.price.rental_per_hour": 0.5}
    s = simulate(load_scenario(scenario_file(tmp_path, rented, rounds=5))).summary
    assert s["cost_hardware"] == pytest.approx(100 * 0.5 * hours + a100, rel=1e-12)
    assert s["capex"] == 100 * 2400  # the purchase price is still what buying them would cost


def test_hardware_charge_needs_the_price_it_charges(tmp_path):
    def rented(sc):
        sc["accounting"]["hardware_charge"] = "rental"
    r = simfl_cli("validate", scenario_file(tmp_path, rented))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "fleet[0].device: accounting.hardware_charge is rental, but jetson-agx-orin-64gb has no " \
           "rental_per_hour" in r.stderr

    def jobs_alone(sc):
        sc["accounting"]["jobs"] = 3
    r = simfl_cli("validate", scenario_file(tmp_path, jobs_alone))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "jobs shares purchases over jobs, but hardware_charge is life_share" in r.stderr


def test_embodied_carbon_shared_like_the_purchase_and_named_where_missing(tmp_path):
    s = simulate(load_scenario(scenario_file(tmp_path, rounds=5))).summary
    hours = s["sim_time_s"] / 3600
    # the A100 server: 318 kg CO2e to make (Chien et al.), over a 5-year life of 365.25-day years
    assert s["co2_embodied_kg"] == pytest.approx(318 * hours / (5 * 365.25 * 24), rel=1e-12)
    assert s["co2_total_kg"] == pytest.approx(s["co2_kg"] + s["co2_embodied_kg"], rel=1e-12)
    orin, a100 = s["embodied"]
    assert (orin["device"], orin["kg"], orin["co2e_kg_each"]) == ("jetson-agx-orin-64gb", None, None)
    assert a100["co2e_kg_each"] == 318.0 and "HotCarbon" in a100["source"]

    def per_job(sc):
        sc["accounting"].update(hardware_charge="purchase", jobs=4)
    s = simulate(load_scenario(scenario_file(tmp_path, per_job, rounds=5))).summary
    # the A100 is rented, not bought for these jobs: still its life's share, whatever the purchases are charged
    assert s["co2_embodied_kg"] == pytest.approx(318 * hours / (5 * 365.25 * 24), rel=1e-12)

    def bought_server(sc):  # the A100 bought for 4 jobs: 318 kg made for them, a quarter each
        sc["accounting"].update(hardware_charge="purchase", jobs=4)
        sc["patch"] = {"devices.a100-80gb.price.purchase": 20000.0, "devices.a100-80gb.price.service_life_years": 5}
    s = simulate(load_scenario(scenario_file(tmp_path, bought_server, rounds=5))).summary
    assert s["co2_embodied_kg"] == pytest.approx(318 / 4, rel=1e-12)
