"""Epistemic uncertainty through replicates: a predicted step time's error drawn per replicate, the same draw for a
device in every run of the same base seed, and a p95 that matches the one worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simfl.api import simulate_replicates
from simfl.build import build
from simfl.config.load import load_scenario
from simfl.uncertainty import Draws, log_sd_of

# One H100 client (datasheet only: every step predicted), 200 steps a round, gigabit links: the compute is nearly
# all of the run, and nothing else varies from seed to seed (fixed speed, no dropout, always online).
SCENARIO = """
name: one-h100
seed: 5
model: {name: flan-t5-base}
training: {batch_size: 8, local_steps: 200}
federation: {clients_per_round: %d, rounds: 2}
fleet:
  - {count: 2, device: h100-sxm-80gb, network: ethernet-10gbit}
server: {device: a100-80gb, network: ethernet-10gbit}
"""


def scenario(tmp_path, k=1):
    path = tmp_path / f"s{k}.yaml"
    path.write_text(SCENARIO % k)
    return load_scenario(path)


def test_the_log_sd_of_a_stated_80_percent_interval_by_hand():
    # a stated 80 % interval x exp(±0.2624) (-23 % to +30 %): a lognormal whose central 80 % is that has
    # 1.2816 sigma = 0.2624 (1.2816 the standard normal's 90th percentile), sigma = 0.20473
    assert log_sd_of(0.2624) == pytest.approx(0.2624 / 1.28155157, rel=1e-6)
    z = np.array([Draws(9, r).z("x") for r in range(4000)])
    inside = np.mean(np.abs(log_sd_of(0.2624) * z) <= 0.2624)
    assert inside == pytest.approx(0.8, abs=0.03)  # the draws fall inside the stated interval 80 % of the time


def test_draws_are_fixed_by_seed_replicate_and_input_and_standard_normal():
    d = Draws(5, 3)
    assert d.z("h100 lora") == Draws(5, 3).z("h100 lora") != Draws(5, 4).z("h100 lora")
    assert d.z("h100 lora") != d.z("a100 lora")
    zs = np.array([Draws(5, r).z("x") for r in range(4000)])
    assert abs(zs.mean()) < 0.05 and zs.std() == pytest.approx(1.0, abs=0.05)
    assert d.multiplier("x", 0.0) == 1.0


def test_the_p95_of_time_is_the_nominal_times_the_drawn_error_by_hand(tmp_path):
    sc = scenario(tmp_path)
    built = build(sc)
    (est,) = [e for e in built.estimated_inputs if "training step time" in e["input"]]
    sigma = est["log_sd"]
    assert sigma > 0
    # without the epistemic draws every replicate is the same run
    _, plain = simulate_replicates(sc, 5, epistemic=False)
    assert len({s.sim_time_s for s in plain}) == 1
    nominal = plain[0].sim_time_s
    _, drawn = simulate_replicates(sc, 400)
    ratios = np.array([s.sim_time_s for s in drawn]) / nominal
    # the compute is nearly all of the time, so replicate i's time is the nominal times exp(sigma z_i), z_i the
    # normal it drew for the H100's step (worked out here from the same seed, replicate and input)
    key = build(sc).uncertain[0][0]
    by_hand = np.exp(sigma * np.array([Draws(sc.seed, i).z(key) for i in range(400)]))
    assert ratios == pytest.approx(by_hand, rel=0.01)
    assert np.quantile(ratios, 0.95) == pytest.approx(np.quantile(by_hand, 0.95), rel=0.01)
    # and over 400 draws the p95 is close to exp(1.645 sigma), the lognormal's (within sampling error, ~9 % here)
    assert np.quantile(ratios, 0.95) == pytest.approx(math.exp(1.6449 * sigma), rel=0.3)


def test_every_run_of_a_plan_sees_the_same_draw_of_a_device(tmp_path):
    # two plan points (K 1 and 2) with the same device: in replicate i its step time is drawn the same
    one, two = scenario(tmp_path, 1), scenario(tmp_path, 2)
    for i in range(5):
        a = build(one, draws=Draws(one.seed, i)).inputs.groups[0].step_time_s
        b = build(two, draws=Draws(two.seed, i)).inputs.groups[0].step_time_s
        assert a == b
    assert build(one, draws=Draws(one.seed, 0)).inputs.groups[0].step_time_s != \
        build(one, draws=Draws(one.seed, 1)).inputs.groups[0].step_time_s


def test_a_measured_step_is_not_drawn(tmp_path):
    sc = scenario(tmp_path).model_copy()
    path = tmp_path / "m.yaml"
    path.write_text((SCENARIO % 1).replace("h100-sxm-80gb", "a100-80gb").replace("local_steps: 200",
                                                                                   "local_steps: 2"))
    sc = load_scenario(path)
    assert build(sc).inputs.groups[0].step_time_s == build(sc, draws=Draws(sc.seed, 7)).inputs.groups[0].step_time_s


def test_what_drives_the_spread_by_hand(tmp_path):
    from simfl.sensitivity import SEEDS, Z95, drivers

    sc = scenario(tmp_path)
    (est,) = [e for e in build(sc).estimated_inputs if "training step time" in e["input"]]
    rows = drivers(sc, ("sim_time_s",), 5)
    step, *prices, seeds = rows  # the largest swing first; the H100 and A100 ranged prices move cost, never time
    assert sorted(p["input"].split()[0] for p in prices) == ["a100-80gb", "h100-sxm-80gb"]
    assert all((p["swing"], p["variance_share"]) == (0.0, 0.0) and " price (" in p["input"] for p in prices)
    # the one predicted step time, swung alone to its 5th and 95th percentile: the compute-bound time follows it;
    # nothing else varies from seed to seed, so it is all of the variance
    assert step["input"].startswith("h100-sxm-80gb step time") and seeds["input"] == SEEDS
    assert step["high"] / step["nominal"] == pytest.approx(math.exp(Z95 * est["log_sd"]), rel=0.01)
    assert step["low"] / step["nominal"] == pytest.approx(math.exp(-Z95 * est["log_sd"]), rel=0.01)
    assert (step["variance_share"], seeds["variance_share"], seeds["swing"]) == (1.0, 0.0, 0.0)


def test_the_draw_of_an_input_is_the_same_in_every_process(tmp_path):
    # the key of an input is spelt the same whatever the process's hash seed (sets of LoRA targets sorted)
    import subprocess
    import sys

    (tmp_path / "s1.yaml").write_text(SCENARIO % 1)
    code = ("from simfl.config.load import load_scenario; from simfl.build import build; "
            f"print(build(load_scenario({str(tmp_path / 's1.yaml')!r})).uncertain[0][0])")
    keys = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": str(h), "PATH": ""}).stdout for h in (1, 2, 3)}
    assert len(keys) == 1


def test_a_ranged_price_is_drawn_as_its_p5_to_p95_by_hand(tmp_path):
    from simfl.api import simulate
    from simfl.sensitivity import Fixed
    from tests.test_cli import scenario_file

    sc = load_scenario(scenario_file(tmp_path, rounds=3))
    # the A100 server's rental: EUR 1.8308 an hour, its source's range 1.3708 to 2.2908 (USD 1.49-2.49 at 0.92)
    # read as the 5th to 95th percentile of a lognormal: log-sd ln(2.2908 / 1.3708) / (2 x 1.6449) = 0.15610
    sd = math.log(2.2908 / 1.3708) / (2 * 1.6448536269514722)
    (entry,) = [u for u in build(sc).uncertain if u[0] == "price of a100-80gb"]
    assert entry[1] == pytest.approx(sd) and "1.3708 to 2.2908" in entry[2]
    nominal = simulate(sc).summary
    high = simulate(sc, draws=Fixed({"price of a100-80gb": 1.0})).summary  # one sd up: x exp(0.15610)
    hours = nominal.sim_time_s / 3600
    assert high.sim_time_s == nominal.sim_time_s
    assert high.cost_hardware - nominal.cost_hardware == pytest.approx(1.8308 * (math.exp(sd) - 1) * hours, rel=1e-9)
    assert high.capex == nominal.capex  # a rented server: no purchase moves


def test_a_price_range_must_hold_its_price():
    from pydantic import ValidationError

    from simfl.config.profiles import HardwarePrice

    with pytest.raises(ValidationError, match="rental_per_hour_range must be"):
        HardwarePrice(rental_per_hour=3.0, rental_per_hour_range=[1.0, 2.0], currency="EUR", source="x")
    with pytest.raises(ValidationError, match="purchase_range needs purchase"):
        HardwarePrice(rental_per_hour=3.0, purchase_range=[1.0, 2.0], currency="EUR", source="x")
