"""Bounds: integers that would wrap or overflow on their way into arrays, floats whose products overflow,
work a run could never finish, and sweep and plan files that would fail at every point: each one line,
exit code 2, nothing written."""

import json
import math
import re
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from simfl import load_scenario, simulate
from simfl.summary import check_finite
from simfl.build import build
from simfl.errors import ScenarioError
from simfl.plan.spec import PlanSpec, SweepSpec, load_spec, points
from tests.test_cli import REPO_ROOT, scenario_file

I64 = "must be at most 9223372036854775807, the largest integer simfl holds (64 bits)"
I32 = "must be at most 2147483647, the largest count of local steps simfl holds (32 bits)"


def bounded(*args, timeout_s=120):
    """simfl in a subprocess with a deadline: before these bounds, some of these commands ran until killed."""
    return subprocess.run([sys.executable, "-m", "simfl", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=timeout_s)


def one_line_error(r, expected: str) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert expected in r.stderr, r.stderr


# -- integers ------------------------------------------------------------------------------------------------

INTEGERS = [
    # (path, value, message): int32 fields at 2^31 and 2^32 + 1 (which wrapped to 1), int64 ones at 2^63, 10^30
    ("training.local_steps", 2**31, I32),
    ("fleet[0].local_epochs", 2**32 + 1, I32),
    ("training.batch_size", 2**63, I64),
    ("fleet[0].count", 10**30, I64),
    ("federation.clients_per_round", 2**63, I64),
    ("federation.rounds", 2**63, I64),
    ("seed", 2**63, I64),
    ("model.lora_r", 10**30, I64),
    ("federation.partition.samples", 2**64, I64),
]


@pytest.mark.parametrize("path,value,message", INTEGERS)
def test_integers_beyond_their_array_type_are_one_line_naming_the_field(tmp_path, path, value, message):
    with pytest.raises(ScenarioError) as e:
        load_scenario(scenario_file(tmp_path), {path: value})
    assert str(e.value).endswith(f"{path}: {message} (got {value})")


@pytest.mark.parametrize("path,value,message", [INTEGERS[1], INTEGERS[2], INTEGERS[5]])
def test_integers_through_the_cli(tmp_path, path, value, message):
    out = tmp_path / "out"
    r = bounded("run", scenario_file(tmp_path), "--set", f"{path}={value}", "--out", out)
    one_line_error(r, f"{path}: {message} (got {value})")
    assert not out.exists() and not list(tmp_path.glob(".out.partial*"))


def one_client(sc):
    """One client holding every sample: 14732 samples at batch 8 is ceil(14732 / 8) = 1842 steps an epoch."""
    sc["fleet"][0]["count"] = 1
    sc["federation"]["clients_per_round"] = 1
    sc["training"].pop("local_steps")


def test_steps_from_epochs_are_counted_before_the_int32_array(tmp_path):
    path = scenario_file(tmp_path, one_client)
    # 2147483647 // 1842 = 1165843 epochs fit: 1842 x 1165843 = 2,147,482,806 steps
    built = build(load_scenario(path, {"training.local_epochs": 1165843}))
    assert built.inputs.population.steps.tolist() == [2_147_482_806]
    # one more epoch is 2,147,484,648 steps, past int32 (it used to wrap to a negative count)
    with pytest.raises(ScenarioError) as e:
        build(load_scenario(path, {"training.local_epochs": 1165844}))
    assert str(e.value) == ("training.local_epochs: 1,165,844 epochs of up to 14,732 samples at batch 8 is "
                            "2,147,484,648 local steps a round for a client of fleet[0]; simfl holds at most "
                            "2,147,483,647 (32 bits)")
    r = bounded("validate", path, "--set", "training.local_epochs=1", "--set", "fleet[0].local_epochs=1165844")
    one_line_error(r, "fleet[0].local_epochs: 1,165,844 epochs of up to 14,732 samples")


def test_seeds_and_plan_integers_are_bounded_too(tmp_path):
    sc = scenario_file(tmp_path)
    base = {"scenario": sc.name, "choose": {"fleet[0].count": [20]}, "minimize": "cost_total"}
    for seed, msg in ((2**32, "must be at most 4294967295, the largest seed Optuna's sampler takes"),
                      (-1, "must be at least 0, the smallest seed Optuna's sampler takes")):
        p = tmp_path / "plan.yaml"
        p.write_text(yaml.safe_dump({**base, "search": {"seed": seed}}))
        with pytest.raises(ScenarioError, match=msg):
            load_spec(p, PlanSpec)
    p.write_text(yaml.safe_dump({"scenario": sc.name, "replicates": 2**63, "axes": {"fleet[0].count": [20]}}))
    with pytest.raises(ScenarioError, match=re.escape(f"replicates: {I64} (got {2**63})")):
        load_spec(p, SweepSpec)


# -- floats whose products overflow --------------------------------------------------------------------------

def profile(tmp_path, name, idle_w=5.0, step_s=0.5, power_w=30.0, price=None) -> str:
    data = {"name": name, "source": "test", "estimated": False, "peak_flops": 1e14, "memory_bytes": 6e10,
            "idle_power_w": idle_w,
            "training": [{"model": "flan-t5-small", "finetuning": "lora", "seq_len": 512, "batch_size": 8,
                          "step_time_s": step_s, "power_w": power_w}]}
    if price:
        data["price"] = {"rental_per_hour": price, "currency": "EUR", "source": "test"}
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(data))
    return str(p)


def network(tmp_path, latency_s=0.01, energy_per_bit_j=1e-9) -> str:
    p = tmp_path / "net.yaml"
    p.write_text(yaml.safe_dump({"name": "net", "source": "test", "downlink_bps": 1e7, "uplink_bps": 1e7,
                                 "latency_s": latency_s,
                                 "path": [{"element": "x", "energy_per_bit_j": energy_per_bit_j}]}))
    return str(p)


def test_a_duration_beyond_the_clock_is_refused_before_the_run(tmp_path):
    sc = scenario_file(tmp_path)
    # latency 1e308 s: download = 2,752,512 bits / 1e7 bit/s + 1e308 s, upload alike; their sum overflows
    with pytest.raises(ScenarioError, match=r"^fleet\[0\]\.network: a client-round takes inf s here \(2 steps x "
                                            r"0\.5 s, download 1e\+308 s, upload 1e\+308 s at 1e\+07 / 1e\+07 "
                                            r"bit/s, latency 1e\+308 s\); simfl's clock holds at most 1e\+15 s$"):
        build(load_scenario(sc, {"fleet[0].network": network(tmp_path, latency_s=1e308),
                                 "fleet[0].device": profile(tmp_path, "p")}))
    # 2 steps x 5e14 s = 1e15 s of compute, plus the transfers: just past the clock
    with pytest.raises(ScenarioError, match=r"^fleet\[0\]\.device: a client-round takes 1e\+15 s here"):
        build(load_scenario(sc, {"fleet[0].device": profile(tmp_path, "slow", step_s=5e14)}))
    build(load_scenario(sc, {"fleet[0].device": profile(tmp_path, "fine", step_s=1e13)}))  # 2e13 s: fine


def test_over_selection_of_1e308_is_too_many_to_select(tmp_path):
    r = bounded("validate", scenario_file(tmp_path), "--set", "federation.over_selection=1e308")
    one_line_error(r, "federation selects too many to count: clients a round (clients_per_round 10, "
                      "over_selection 1e+308) but the fleet has 100")


def test_a_figure_that_overflows_is_one_line_naming_it_and_nothing_is_written(tmp_path):
    sc = scenario_file(tmp_path, rounds=3)
    cases = [
        ({"fleet[0].device": profile(tmp_path, "idle", idle_w=1e308)},
         "summary: energy_j.client_idle comes out inf (too large to hold in a float); check the devices' idle power"),
        ({"fleet[0].device": profile(tmp_path, "hot", power_w=1e308)},
         "summary: energy_j.client_compute comes out inf"),
        ({"fleet[0].network": network(tmp_path, energy_per_bit_j=1e308)}, "summary: energy_j.network comes out inf"),
        ({"fleet[0].device": profile(tmp_path, "dear", price=1e308)},
         "summary: cost_hardware comes out inf (too large to hold in a float); check the devices' prices"),
    ]
    for over, message in cases:
        with pytest.raises(ScenarioError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
            simulate(load_scenario(sc, over))
    out = tmp_path / "out"
    path, value = next(iter(cases[0][0].items()))
    one_line_error(bounded("run", sc, "--set", f"{path}={value}", "--out", out), cases[0][1])
    assert not out.exists()


def test_check_finite_names_the_first_bad_figure():
    check_finite({"sim_time_s": 1.0, "energy_j": {"total": 2.0}, "granularity_mean": None, "warnings": ["x"]})
    with pytest.raises(ScenarioError, match=r"^summary: sim_time_s comes out inf .*check rounds, step times"):
        check_finite({"sim_time_s": math.inf})
    with pytest.raises(ScenarioError, match=r"^summary: co2_kg comes out nan"):
        check_finite({"sim_time_s": 1.0, "co2_kg": math.nan})


def test_a_lognormal_sigma_that_would_overflow_a_draw_is_refused(tmp_path):
    sc = scenario_file(tmp_path)
    for path in ("fleet[0].speed", "fleet[0].link"):
        with pytest.raises(ScenarioError, match=re.escape(f"{path}.sigma: Input should be less than or equal to 10 "
                                                          "(got 1000)")):
            load_scenario(sc, {path: {"distribution": "lognormal", "sigma": 1000, "per": "client"}})


# -- work ------------------------------------------------------------------------------------------------------

def test_rounds_and_client_rounds_are_bounded_before_anything_is_built(tmp_path):
    sc = scenario_file(tmp_path)
    with pytest.raises(ScenarioError) as e:
        load_scenario(sc, {"federation.rounds": 10_000_001})
    assert str(e.value).endswith("federation.rounds: 10,000,001 rounds; simfl runs at most 10,000,000 (each round "
                                 "is simulated event by event)")
    # 7,000,000 rounds x ceil(100 x 1.5) = 150 selected = 1,050,000,000 client-rounds
    with pytest.raises(ScenarioError) as e:
        load_scenario(sc, {"federation.rounds": 7_000_000, "federation.clients_per_round": 100,
                           "fleet[0].count": 200, "federation.over_selection": 0.5})
    assert str(e.value).endswith("federation: 7,000,000 rounds x 150 clients a round = 1,050,000,000 client-rounds; "
                                 "simfl runs at most 1,000,000,000 (each is simulated; about five hours of one core)")
    assert load_scenario(sc, {"federation.rounds": 6_000_000, "federation.clients_per_round": 100,
                              "fleet[0].count": 200, "federation.over_selection": 0.5}).client_rounds == 900_000_000
    one_line_error(bounded("run", sc, "--set", f"federation.rounds={2**63 - 1}", "--out", tmp_path / "o"),
                   "federation.rounds: 9,223,372,036,854,775,807 rounds; simfl runs at most 10,000,000")
    assert not (tmp_path / "o").exists()


def test_sweep_and_plan_sizes_are_bounded_from_the_axis_lengths(tmp_path):
    sc = scenario_file(tmp_path)
    thousand = list(range(1, 1001))
    axes = {"fleet[0].count": thousand, "training.batch_size": thousand, "training.seq_len": thousand}
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({"scenario": sc.name, "axes": axes}))
    one_line_error(bounded("sweep", spec, "--out", tmp_path / "o"),
                   "axes: 1,000,000,000 points x 1 replicates = 1,000,000,000 simulations; simfl runs at most "
                   "1,000,000 (each point is a whole run)")
    spec.write_text(yaml.safe_dump({"scenario": sc.name, "replicates": 3, "axes": {"fleet[0].count": thousand,
                                                                                    "training.seq_len": thousand}}))
    with pytest.raises(ScenarioError, match="axes: 1,000,000 points x 3 replicates = 3,000,000 simulations"):
        load_spec(spec, SweepSpec)
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"scenario": sc.name, "choose": axes, "minimize": "cost_total",
                                    "search": {"method": "optuna", "trials": 2_000_000}}))
    with pytest.raises(ScenarioError, match="search.trials: 2,000,000 points x 1 replicates"):
        load_spec(plan, PlanSpec)
    plan.write_text(yaml.safe_dump({"scenario": sc.name, "choose": axes, "minimize": "cost_total"}))
    spec_, _ = load_spec(plan, PlanSpec)  # Optuna over 10^9 points: fine, and nothing is listed
    space = points(spec_.choose)
    assert len(space) == 10**9
    assert space[0] == {"fleet[0].count": 1, "training.batch_size": 1, "training.seq_len": 1}
    assert space[10**9 - 1] == {"fleet[0].count": 1000, "training.batch_size": 1000, "training.seq_len": 1000}
    assert space[1_002_003] == {"fleet[0].count": 2, "training.batch_size": 3, "training.seq_len": 4}
    assert space.point_of((1, 2, 3)) == 1_002_003


def test_a_value_given_twice_in_a_choice_or_axis_is_one_line(tmp_path):
    sc = scenario_file(tmp_path)
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"scenario": sc.name, "minimize": "cost_total",
                                    "choose": {"fleet[0].count": [20, 40, 20]}}))
    one_line_error(bounded("plan", plan, "--out", tmp_path / "o"),
                   "choose: fleet[0].count: 20 is given twice (values [0] and [2])")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"scenario": sc.name, "axes": {"fleet": [
        [{"count": 20, "device": "a100-80gb", "network": "lte"}],
        [{"network": "lte", "device": "a100-80gb", "count": 20}]]}}))
    with pytest.raises(ScenarioError, match=r"axes: fleet: \[\{.*\}\] is given twice \(values \[0\] and \[1\]\)"):
        load_spec(sweep, SweepSpec)


# -- axis paths ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path,value,problem", [
    ("federation.clients_per_rnd", 5,
     "federation.clients_per_rnd is not a field of the scenario: federation has no field 'clients_per_rnd' "
     "(did you mean 'clients_per_round'?)"),
    ("fleet[0].netwrk", "lte",
     "fleet[0].netwrk is not a field of the scenario: fleet[0] has no field 'netwrk' (did you mean 'network'?)"),
    ("fleet[1].count", 5, "fleet[1].count is not a field of the scenario: in s.yaml, fleet has 1 item(s); "
                          "there is no [1]"),
    ("federation.rounds.count", 5, "federation.rounds.count is not a field of the scenario: federation.rounds is "
                                   "a value, so it has no field 'count'"),
    ("training[0]", 5, "training[0] is not a field of the scenario: training is not a list"),
])
def test_an_axis_that_is_no_field_is_refused_before_running(tmp_path, path, value, problem):
    sc = scenario_file(tmp_path)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"scenario": sc.name, "axes": {"fleet[0].count": [20], path: [value]}}))
    r = bounded("sweep", sweep, "--out", tmp_path / "o")
    one_line_error(r, f"error: {sweep}: axes: {problem}")
    assert not (tmp_path / "o").exists()


def test_optional_fields_absent_from_the_file_and_overlapping_axes_are_allowed(tmp_path):
    sc = scenario_file(tmp_path)
    raw = yaml.safe_load(sc.read_text())
    assert "deadline_s" not in raw["federation"] and "batch_size" not in raw["fleet"][0]
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"scenario": sc.name, "axes": {
        "federation.deadline_s": [100.0], "fleet[0].batch_size": [8],
        "fleet[0].availability.mean_on_s": [50.0],  # a field of one member of the availability union
        "cells.c1.uplink_bps": [1e6],  # any key of a mapping
        "fleet": [[{"count": 20, "device": "a100-80gb", "network": "lte"},
                   {"count": 5, "device": "a100-80gb", "network": "lte"}]],
        "fleet[1].count": [7],  # fleet[1] exists once the fleet axis has set it
    }}))
    load_spec(sweep, SweepSpec)


# -- points that stop early or raise -----------------------------------------------------------------------------

def test_a_plan_never_picks_a_point_that_stopped_early(tmp_path):
    trace = tmp_path / "ten-seconds.csv"
    trace.write_text("client,start_s,end_s\n" + "".join(f"{i},0,10\n" for i in range(100)))
    sc = scenario_file(tmp_path, rounds=20)
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"scenario": sc.name, "minimize": "cost_total", "choose": {
        "fleet[0].availability": [{"kind": "always"}, {"kind": "trace", "file": trace.name}]}}))
    out = tmp_path / "out"
    r = bounded("plan", plan, "--out", out)
    assert r.returncode == 0, r.stderr
    # rounds take 4.31 s: rounds 0 and 1 end at 8.63 s, round 2 loses its clients at 10 s; then none is ever online
    reason = ("the run stopped after 3 of 20 rounds: at t = 10 s no client is available and none ever will be "
              "again (see the availability models)")
    assert "exhaustive search: 2 of 2 points evaluated, 1 feasible, 0 invalid, 1 excluded as stopped early" in r.stdout
    assert f"point 1 stopped early: {reason}" in r.stdout
    p = json.loads((out / "plan.json").read_text())
    assert p["best"]["point"] == 0 and p["feasible_points"] == [0]
    assert p["excluded_stopped_early"] == 1
    assert p["stopped_early"] == [{"point": 1, "choices": {"fleet[0].availability": {"kind": "trace",
                                                                                       "file": trace.name}},
                                   "reason": reason}]
    assert [e["point"] for e in p["pareto"]] == [0]
    html = (out / "report.html").read_text()
    assert "1 excluded as stopped early" in html and f"1</b> point: stopped early: {reason}" in html
    table = pd.read_csv(out / "points.csv")
    assert table["status"].tolist() == ["ok", "stopped"] and table["error"].tolist()[1] == reason
    assert table["rounds_completed"].tolist() == [20, 3]


def test_one_point_raising_anything_is_its_row_and_the_sweep_goes_on(tmp_path, monkeypatch):
    import simfl.api
    from simfl.plan.sweep import run_sweep

    real = simfl.api.simulate

    def flaky(sc, *a, **kw):
        if sc.fleet[0].count == 40:
            raise OverflowError("int too large to convert to float")
        if sc.fleet[0].count == 60:
            raise MemoryError()
        return real(sc, *a, **kw)
    monkeypatch.setattr(simfl.api, "simulate", flaky)
    sc = scenario_file(tmp_path, rounds=2)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"scenario": sc.name, "axes": {"fleet[0].count": [20, 40, 60, 80]}}))
    t = run_sweep(sweep, tmp_path / "out").table
    assert t["status"].tolist() == ["ok", "error", "error", "ok"]
    assert t["error"].tolist()[1:3] == ["OverflowError: int too large to convert to float", "MemoryError"]


# -- empty comma lists ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["train", "scenarios/train/tiny-dialogsum.yaml", "--optimizers", ",,"],
     "error: --optimizers: give at least one run name, got ',,'"),
    (["train", "scenarios/train/tiny-dialogsum.yaml", "--optimizers", ""],
     "error: --optimizers: give at least one run name, got ''"),
    (["estimate", "jetson-agx-orin-64gb", "flan-t5-small", "--lora-targets", " , "],
     "error: --lora-targets: give at least one projection, got ' , '"),
    (["calibrate", "--name", "x", "--models", ",,", "--batch-sizes", "1"],
     "error: --models: give at least one model, got ',,'"),
])
def test_an_empty_list_where_one_is_needed_is_one_line(tmp_path, args, message):
    r = bounded(*args, "--out", tmp_path / "o") if args[0] != "estimate" else bounded(*args)
    one_line_error(r, message)
    assert not (tmp_path / "o").exists()


def test_replicates_are_bounded_and_their_seeds_fit(tmp_path):
    sc = scenario_file(tmp_path)
    one_line_error(bounded("run", sc, "--replicates", "10000001", "--out", tmp_path / "o"),
                   "error: --replicates: 10,000,001 replicates; simfl runs at most 1,000,000 (each is a whole run)")
    one_line_error(bounded("run", sc, "--set", f"seed={2**63 - 2}", "--replicates", "3", "--out", tmp_path / "o"),
                   "error: --replicates: seeds 9223372036854775806..9223372036854775808 go past 9223372036854775807")
    assert not (tmp_path / "o").exists()
