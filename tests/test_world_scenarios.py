"""A varying world through scenarios and the command line: carbon over time, replicates, files, bad input."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import simfl
from tests.test_cli import scenario_file
from simfl.build import build

ROOT = Path(__file__).resolve().parents[1]


def scenario(tmp_path, mutate=None, rounds=3) -> Path:
    return scenario_file(tmp_path, mutate, rounds)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "simfl", *map(str, args)], capture_output=True, text=True)


# -- carbon ----------------------------------------------------------------------------------------------

def test_flat_file_equals_flat_intensity(tmp_path):
    (tmp_path / "grid.csv").write_text("time,g_per_kwh\n2026-01-01T00:00:00+00:00,380\n")

    def with_file(s):
        s["start_time"] = "2026-06-01T00:00:00+02:00"
        s["accounting"] = {"carbon_intensity_file": "grid.csv", "price_per_kwh": 0.3}
    flat = simfl.simulate(simfl.load_scenario(scenario(tmp_path))).summary
    varying = simfl.simulate(simfl.load_scenario(scenario(tmp_path, with_file))).summary
    assert varying["co2_kg"] == pytest.approx(flat["co2_kg"], rel=1e-12)
    assert flat["co2_kg"] == pytest.approx(flat["kwh_total"] * 0.380, rel=1e-12)
    hours = varying["carbon_start_hours"]
    assert len(hours["hours"]) == 24 and hours["best"]["co2_kg"] == pytest.approx(flat["co2_kg"])


def test_best_start_hour_is_the_clean_hour(tmp_path):
    # Local day 2026-06-01 at +02:00; one clean hour, 05:00-06:00 local (03:00Z), 50 g; the rest 500 g.
    rows = ["time,g_per_kwh"] + [f"2026-05-31T{h:02d}:00:00+00:00,{50 if h == 3 + 24 else 500}" for h in range(22, 24)]
    rows += [f"2026-06-01T{h:02d}:00:00+00:00,{50 if h == 3 else 500}" for h in range(24)]
    (tmp_path / "grid.csv").write_text("\n".join(rows) + "\n")

    def with_file(s):
        s["start_time"] = "2026-06-01T10:00:00+02:00"
        s["accounting"] = {"carbon_intensity_file": "grid.csv"}
        s["federation"]["rounds"] = 10  # 43 s of simulated time: inside one hour
    summ = simfl.simulate(simfl.load_scenario(scenario(tmp_path, with_file))).summary
    best, worst = summ["carbon_start_hours"]["best"], summ["carbon_start_hours"]["worst"]
    assert best["start_time"] == "2026-06-01T05:00:00+02:00"
    assert best["co2_kg"] == pytest.approx(summ["co2_kg"] * 50 / 500, rel=1e-9)
    assert worst["co2_kg"] == pytest.approx(summ["co2_kg"], rel=1e-9)


# -- replicates ------------------------------------------------------------------------------------------

def _noisy(s):
    s["federation"]["dropout_prob"] = 0.3
    s["fleet"][0]["speed"] = {"distribution": "lognormal", "sigma": 0.3, "per": "round"}


def test_replicates_are_separate_runs_with_a_t_interval(tmp_path):
    path = scenario(tmp_path, _noisy, rounds=20)
    r = cli("run", path, "--replicates", 3, "--out", tmp_path / "out", "--no-plots")
    assert r.returncode == 0, r.stderr
    base = simfl.load_scenario(path)
    times = [simfl.simulate(base.model_copy(update={"seed": base.seed + i})).summary["sim_time_s"] for i in range(3)]
    assert len(set(times)) == 3  # the seeds differ, so do the runs
    rep = pd.read_csv(tmp_path / "out" / "replicates.csv")
    assert rep["seed"].tolist() == [7, 8, 9] and rep["sim_time_s"].tolist() == pytest.approx(times)
    s = json.loads((tmp_path / "out" / "summary.json").read_text())["replicates"]
    mean, sd = float(np.mean(times)), float(np.std(times, ddof=1))
    assert s["sim_time_s"]["mean"] == pytest.approx(mean) and s["sim_time_s"]["sd"] == pytest.approx(sd)
    assert s["sim_time_s"]["ci95_high"] == pytest.approx(mean + 4.302652729749 * sd / math.sqrt(3))
    assert "+-" in r.stdout


# -- the shipped scenario: same seed, same bytes -----------------------------------------------------------

def test_varying_world_same_seed_same_bytes(tmp_path):
    src = ROOT / "scenarios" / "varying-world.yaml"
    sc = yaml.safe_load(src.read_text())
    sc["federation"]["rounds"] = 40
    sc["accounting"]["carbon_intensity_file"] = str(ROOT / "scenarios" / sc["accounting"]["carbon_intensity_file"])
    p = tmp_path / "vw.yaml"
    p.write_text(yaml.safe_dump(sc))
    for name in ("a", "b"):
        r = cli("run", p, "--out", tmp_path / name)
        assert r.returncode == 0, r.stderr
    files = sorted(f.name for f in (tmp_path / "a").iterdir())
    assert "clients.parquet" in files and "timeline.png" in files
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    # the resolved scenario stands alone and runs again to the same rounds
    r = cli("run", tmp_path / "a" / "scenario.resolved.yaml", "--out", tmp_path / "c", "--no-plots")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "c" / "rounds.csv").read_bytes() == (tmp_path / "a" / "rounds.csv").read_bytes()
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert {g["network"] for g in s["groups"]} == {"lte-errant", "3g-errant"}
    assert s["carbon_start_hours"]["best"]["co2_kg"] < s["carbon_start_hours"]["worst"]["co2_kg"]


# -- common random numbers through scenarios -----------------------------------------------------------------

def test_link_and_speed_spread_leave_selection_alone(tmp_path):
    def spread(sigma):
        def m(s):
            s["fleet"][0]["speed"] = {"distribution": "lognormal", "sigma": sigma, "per": "client"}
            s["fleet"][0]["link"] = {"distribution": "lognormal", "sigma": sigma * 2, "per": "client"}
        return m
    a = simfl.simulate(simfl.load_scenario(scenario(tmp_path, spread(0.1), rounds=10))).clients
    b = simfl.simulate(simfl.load_scenario(scenario(tmp_path, spread(0.4), rounds=10))).clients
    assert a["client"].tolist() == b["client"].tolist()
    assert not np.allclose(a["compute_s"], b["compute_s"])


def test_per_group_batch_and_steps(tmp_path):
    def two_groups(s):
        s["fleet"] = [{"count": 50, "device": "jetson-agx-orin-64gb", "network": "lte"},
                      {"count": 50, "device": "jetson-agx-orin-64gb", "network": "lte", "batch_size": 4,
                       "local_steps": 5}]
    sc = simfl.load_scenario(scenario(tmp_path, two_groups))
    built = build(sc)
    g0, g1 = built.inputs.groups
    from simfl.hardware.lookup import step_cost
    from simfl.training import TrainingConfig
    prof = sc.hardware["jetson-agx-orin-64gb"]
    assert g1.step_time_s == step_cost(prof, TrainingConfig("flan-t5-small", batch_size=4)).step_time_s
    assert g0.step_time_s == step_cost(prof, TrainingConfig("flan-t5-small", batch_size=8)).step_time_s
    steps = built.inputs.population.steps
    assert set(steps[:50].tolist()) == {2} and set(steps[50:].tolist()) == {5}


def test_trace_file_relative_to_the_scenario(tmp_path):
    (tmp_path / "avail.csv").write_text("# who is online\nclient,start_s,end_s\n3,0,1e9\n5,0,1e9\n")

    def traced(s):
        s["fleet"][0]["availability"] = {"kind": "trace", "file": "avail.csv"}
    res = simfl.simulate(simfl.load_scenario(scenario(tmp_path, traced)))
    assert set(res.clients["client"]) == {3, 5} and (res.rounds["clients_selected"] == 2).all()


def test_the_loader_reads_the_data_files_and_build_never_again(tmp_path):
    (tmp_path / "avail.csv").write_text("client,start_s,end_s\n3,0,1e9\n5,0,1e9\n")
    (tmp_path / "grid.csv").write_text("time,g_per_kwh\n2026-01-01T00:00:00+00:00,380\n")

    def world(s):
        s["fleet"][0]["availability"] = {"kind": "trace", "file": "avail.csv"}
        s["start_time"] = "2026-06-01T00:00:00+02:00"
        s["accounting"] = {"carbon_intensity_file": "grid.csv"}
    sc = simfl.load_scenario(scenario(tmp_path, world))
    (tmp_path / "avail.csv").unlink()
    (tmp_path / "grid.csv").unlink()  # build would say "file not found" had it read either again
    for seed in (sc.seed, sc.seed + 1):  # a replicate's copy shares what the loader read
        res = simfl.simulate(sc.model_copy(update={"seed": seed}))
        assert set(res.clients["client"]) == {3, 5}
        assert res.summary["co2_kg"] == pytest.approx(res.summary["kwh_total"] * 0.380, rel=1e-12)
    # a copy that names another trace reads that one
    (tmp_path / "one.csv").write_text("client,start_s,end_s\n1,0,1e9\n")
    g = sc.fleet[0]
    one = g.model_copy(update={"availability": g.availability.model_copy(update={"file": str(tmp_path / "one.csv")})})
    assert set(simfl.simulate(sc.model_copy(update={"fleet": [one]})).clients["client"]) == {1}


# -- bad input: one line, exit 2, nothing written ---------------------------------------------------------

BAD = {
    "fixed with sigma": (lambda s, d: s["fleet"][0].update(speed={"distribution": "fixed", "sigma": 0.2}),
                         "fleet[0].speed: distribution fixed takes no sigma (got 0.2); use lognormal"),
    "lognormal without sigma": (lambda s, d: s["fleet"][0].update(link={"distribution": "lognormal"}),
                                "fleet[0].link: lognormal needs sigma > 0"),
    "empirical without data": (lambda s, d: s["fleet"][0].update(link={"distribution": "empirical"}),
                               "network 'lte' has no measured distribution"),
    "unknown availability": (lambda s, d: s["fleet"][0].update(availability={"kind": "sometimes"}),
                             "fleet[0].availability"),
    "diurnal without start_time": (
        lambda s, d: s["fleet"][0].update(availability={"kind": "diurnal", "start_hour": 22, "end_hour": 6}),
        "diurnal availability needs start_time"),
    "naive start_time": (lambda s, d: s.update(start_time="2026-06-01T00:00:00"),
                         "start_time: start_time needs its UTC offset"),
    "carbon without start_time": (lambda s, d: s.update(accounting={"carbon_intensity_file": "g.csv"}),
                                  "carbon_intensity_file needs start_time"),
    "both intensities": (lambda s, d: s.update(start_time="2026-06-01T00:00:00Z", accounting={
        "carbon_intensity_file": "g.csv", "carbon_g_per_kwh": 300}), "not both"),
    "trace client outside the group": (
        lambda s, d: (d("a.csv", "client,start_s,end_s\n100,0,5\n"),
                      s["fleet"][0].update(availability={"kind": "trace", "file": "a.csv"})),
        "fleet[0].availability.file: {d}/a.csv: client 100 is outside the group's 100 members (0..99)"),
    "trace row backwards": (
        lambda s, d: (d("a.csv", "client,start_s,end_s\n1,5,5\n"),
                      s["fleet"][0].update(availability={"kind": "trace", "file": "a.csv"})),
        "{d}/a.csv line 2: start_s must be before end_s (got 5, 5)"),
    "carbon bad time": (
        lambda s, d: (d("g.csv", "time,g_per_kwh\nyesterday,300\n"),
                      s.update(start_time="2026-06-01T00:00:00Z", accounting={"carbon_intensity_file": "g.csv"})),
        "{d}/g.csv line 2: time must be ISO 8601 (got 'yesterday')"),
    "carbon starts after the run": (
        lambda s, d: (d("g.csv", "time,g_per_kwh\n2026-07-01T00:00:00+00:00,300\n"),
                      s.update(start_time="2026-06-01T00:00:00Z", accounting={"carbon_intensity_file": "g.csv"})),
        "start_time 2026-06-01T00:00:00+00:00 is before the file's first row"),
    "a T5 has no gate projection": (
        lambda s, d: s["model"].update(lora_targets=["q", "gate"]),
        "model.lora_targets: flan-t5-small is an encoder-decoder model: its LoRA targets are q, k, v, o, not gate "
        "(got ['q', 'gate'])"),
    "carbon file missing": (
        lambda s, d: s.update(start_time="2026-06-01T00:00:00Z", accounting={"carbon_intensity_file": "none.csv"}),
        "file not found"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_world_input_is_one_line_exit_2(tmp_path, case):
    mutate, expected = BAD[case]

    def data(name, text):
        (tmp_path / name).write_text(text)
    p = scenario(tmp_path, lambda s: mutate(s, data))
    out = tmp_path / "out"
    r = cli("run", p, "--out", out)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert expected.format(d=tmp_path) in r.stderr
    assert not out.exists()


def test_replicates_option_checked(tmp_path):
    r = cli("run", scenario(tmp_path), "--replicates", 0, "--out", tmp_path / "o")
    assert r.returncode == 2 and r.stderr == "error: --replicates: must be at least 1 (got 0)\n"


def test_participation_and_cell_utilisation(tmp_path):
    def two_groups(s):
        s["cells"] = {"c": {"downlink_bps": 50e6, "uplink_bps": 20e6}}
        s["fleet"] = [{"count": 50, "device": "jetson-agx-orin-64gb", "network": "lte", "dropout_prob": 1.0},
                      {"count": 50, "device": "jetson-agx-orin-64gb", "network": "lte", "cell": "c"}]
    res = simfl.simulate(simfl.load_scenario(scenario(tmp_path, two_groups, rounds=6)))
    g0, g1 = res.summary["groups"]
    c = res.clients
    assert (g0["aggregated"], g0["participation"]) == (0, 0.0)  # every update of group 0 dropped
    assert g1["participation"] == 1.0 and g1["aggregated"] == int((c["status"] == "completed").sum())
    assert g0["client_rounds"] + g1["client_rounds"] == len(c)
    in_cell = c[c["group"] == 1]
    assert set(in_cell["cell"]) == {"c"} and set(c[c["group"] == 0]["cell"].fillna("")) == {""}
    t = res.summary["sim_time_s"]
    cell = res.summary["cells"]["c"]
    assert cell["down"]["utilisation"] == pytest.approx(in_cell["bits_down"].sum() / (50e6 * t))
    assert cell["up"]["utilisation"] == pytest.approx(in_cell["bits_up"].sum() / (20e6 * t))
