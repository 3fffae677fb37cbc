"""simfl estimate, and scenarios on devices nobody measured."""

import json
from pathlib import Path

import pytest

from simfl import load_scenario, simulate
from tests.test_cli import scenario_file, simfl

ROOT = Path(__file__).resolve().parents[1]


def test_estimate_prints_measured_and_predicted_rows_as_json():
    r = simfl("estimate", "a100-80gb", "flan-t5-small", "--batch-sizes", "8,12,256", "--json")
    assert r.returncode == 0, r.stderr
    rows = {d["batch_size"]: d for d in map(json.loads, r.stdout.splitlines())}
    assert rows[8]["source"] == "measured" and rows[8]["step_time_s"] == 0.33 and rows[8]["power_w"] == 103.17
    assert rows[8]["tokens_per_s"] == pytest.approx(8 * 512 / 0.33)
    assert rows[8]["energy_per_step_j"] == pytest.approx(0.33 * 103.17)
    assert rows[12]["source"] == "interpolated" and rows[12]["step_time_s"] == pytest.approx(0.32)
    assert rows[256]["fits"] is False and "out of memory (predicted by the hardware model" in rows[256]["error"]


def test_estimate_of_a_datasheet_device_carries_its_expected_error():
    import csv
    import math

    import numpy as np

    # the stated interval is the one validated: the 80th percentile of |ln(1 + error)| over the held-out CPU
    # points predicted from the other devices (docs/data/hardware-model-validation.csv, other_device rows)
    rows = list(csv.DictReader((ROOT / "docs" / "data" / "hardware-model-validation.csv").open()))
    errs = [float(x["step_time_error"]) for x in rows if x["validation"] == "other_device"
            and x["device"] == "cpu-2core-epyc"]
    assert len(errs) == 12
    h = float(np.quantile(np.abs(np.log1p(errs)), 0.8))
    r = simfl("estimate", "raspberry-pi-4-8gb", "flan-t5-small", "--batch-sizes", "1,2", "--json")
    got = json.loads(r.stdout.splitlines()[0])["interval_80"]
    assert got == pytest.approx([math.expm1(-h), math.expm1(h)], abs=1e-3)
    r = simfl("estimate", "raspberry-pi-4-8gb", "flan-t5-small", "--batch-sizes", "1,2")
    assert r.returncode == 0, r.stderr
    assert f"predicted [1] -{100 * -math.expm1(-h):.0f} % to +{100 * math.expm1(h):.0f} %" in r.stdout
    assert "80 % interval" in r.stdout
    assert "[1] predicted by the hardware model (datasheet of raspberry-pi-4-8gb with cpu class parameters" in r.stdout
    assert "other device validation" in r.stdout


@pytest.mark.parametrize("args, expected", [
    (("jetson-tx9", "flan-t5-small"), "error: DEVICE: unknown hardware profile 'jetson-tx9'; available: a100-80gb"),
    (("a100-80gb", "gpt-5"), "error: MODEL: unknown model 'gpt-5'; known: flan-t5-small"),
    (("a100-80gb", "flan-t5-small", "--method", "magic"),
     "error: --method: expected backprop or forward_gradient, got 'magic'"),
    (("a100-80gb", "flan-t5-small", "--batch-sizes", "8,x"),
     "error: --batch-sizes: expected a comma-separated list of integers, got '8,x'"),
    (("a100-80gb", "flan-t5-small", "--lora-targets", "q,gate"),
     "error: --lora-targets: flan-t5-small is an encoder-decoder model: its LoRA targets are q, k, v, o, not gate"),
])
def test_estimate_bad_input_is_one_line_exit_2(args, expected):
    r = simfl("estimate", *args)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(expected) and r.stderr.count("\n") == 1


def test_a_scenario_on_datasheet_only_devices_runs_flagged_estimated(tmp_path):
    def fleet(s):
        s["fleet"] = [{"count": 30, "device": "l4-24gb", "network": "lte"},
                      {"count": 30, "device": "jetson-orin-nx-16gb", "network": "lte"},
                      {"count": 30, "device": "snapdragon-8-gen-2-phone", "network": "lte"}]
        s["training"]["batch_size"] = 2
    r = simulate(load_scenario(scenario_file(tmp_path, fleet)))
    steps = {e["field"]: e["reason"] for e in r.summary["estimated_inputs"] if "training step" in e["input"]}
    for i, name in enumerate(("l4-24gb", "jetson-orin-nx-16gb", "snapdragon-8-gen-2-phone")):
        assert steps[f"fleet[{i}].device"].startswith(f"predicted by the hardware model (datasheet of {name}")
    assert r.warnings[0].startswith("this run rests on ")
    assert r.summary["sim_time_s"] > 0 and r.summary["kwh_total"] > 0
