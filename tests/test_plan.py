"""simfl sweep and plan: rows equal separate runs, resume equals uninterrupted, Ray equals local, the plan's
best equals brute force, the Pareto front by hand, reports in a real browser."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from simfl import load_scenario, simulate
from simfl.plan.evaluate import evaluate_point
from simfl.plan.search import feasible, pareto, run_plan
from simfl.plan.spec import PlanSpec
from simfl.plan.sweep import JOURNAL, run_sweep
from tests.test_cli import scenario_file, simfl

AXES = {"fleet[0].count": [20, 40], "federation.clients_per_round": [5, 10], "training.batch_size": [8, 100000]}


def write_sweep(tmp_path, axes=AXES, replicates=1, rounds=3, name="sweep.yaml") -> Path:
    sc = scenario_file(tmp_path, rounds=rounds)
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"scenario": sc.name, "replicates": replicates, "axes": axes}, sort_keys=False))
    return path


def test_sweep_rows_equal_separate_runs(tmp_path):
    spec = write_sweep(tmp_path)
    t = run_sweep(spec, tmp_path / "out", workers=2).table
    assert list(t.columns[:5]) == ["point", "fleet[0].count", "federation.clients_per_round", "training.batch_size",
                                   "status"]
    assert len(t) == 8 and (t["status"] == "ok").sum() == 4
    for _, row in t.iterrows():
        over = {k: row[k] for k in AXES}
        if row["training.batch_size"] == 100000:
            assert row["status"] == "invalid" and "out of memory (predicted by the hardware model" in row["error"]
            continue
        alone = simulate(load_scenario(tmp_path / "s.yaml", over)).summary.figures()
        assert {k: row[k] for k in alone} == alone
    on_disk = pd.read_csv(tmp_path / "out" / "sweep.csv")
    assert list(on_disk.columns) == list(t.columns) and len(on_disk) == 8
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out" / "sweep.parquet"), t)


def test_replicates_give_mean_interval_and_percentiles(tmp_path):
    def vary(sc):
        sc["fleet"][0]["speed"] = {"distribution": "lognormal", "sigma": 0.3, "per": "round"}
    sc = scenario_file(tmp_path, vary, rounds=3)
    row = evaluate_point(str(sc), {}, replicates=3)
    runs = [simulate(load_scenario(sc).model_copy(update={"seed": 7 + i})).summary.sim_time_s for i in range(3)]
    assert load_scenario(sc).seed == 7
    assert row["sim_time_s"] == pytest.approx(sum(runs) / 3)
    assert row["sim_time_s_ci_low"] < row["sim_time_s"] < row["sim_time_s_ci_high"]
    assert row["sim_time_s_p95"] == pytest.approx(sorted(runs)[1] + 0.9 * (sorted(runs)[2] - sorted(runs)[1]))


def test_an_interrupted_sweep_resumes_to_the_uninterrupted_table(tmp_path):
    spec = write_sweep(tmp_path)
    whole = run_sweep(spec, tmp_path / "whole").table
    seen = []

    def stop_after_three(i, row):
        seen.append(i)
        if len(seen) == 3:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path / "cut", on_point=stop_after_three)
    journal = tmp_path / "cut" / JOURNAL
    assert len(journal.read_text().splitlines()) == 3 and not (tmp_path / "cut" / "sweep.csv").exists()
    with journal.open("a") as f:
        f.write('{"index": 5, "key": "half a li')  # a line a kill cut short: that point runs again
    ran = []
    resumed = run_sweep(spec, tmp_path / "cut", on_point=lambda i, r: ran.append(i))
    assert resumed.resumed == 3 and sorted(ran) == sorted(set(range(8)) - set(seen))
    pd.testing.assert_frame_equal(resumed.table, whole)
    # the same folder with another sweep starts afresh
    other = write_sweep(tmp_path, axes={"fleet[0].count": [20]}, name="other.yaml")
    assert run_sweep(other, tmp_path / "cut").resumed == 0


def test_a_killed_cli_sweep_resumes(tmp_path):
    spec = write_sweep(tmp_path, rounds=3000)  # its 4 runnable points take half a second each here: none finishes in a scheduling gap
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "simfl", "sweep", str(spec), "--out", str(out), "--no-report"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (out / JOURNAL).is_file() or not (out / JOURNAL).read_text().strip():
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    done = len((out / JOURNAL).read_text().splitlines())
    assert 1 <= done < 8 and not (out / "sweep.csv").exists()
    r = simfl("sweep", spec, "--out", out, "--no-report")
    assert r.returncode == 0, r.stderr
    assert f"({done} taken from an earlier run of the same sweep)" in r.stdout
    whole = run_sweep(spec, tmp_path / "whole").table
    pd.testing.assert_frame_equal(pd.read_parquet(out / "sweep.parquet"), whole)


def test_ray_executor_equals_local(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'simfl[cluster]')")
    spec = write_sweep(tmp_path, axes={"fleet[0].count": [20, 40], "training.batch_size": [8, 100000]})
    local = run_sweep(spec, tmp_path / "local", workers=2).table
    remote = run_sweep(spec, tmp_path / "ray", workers=2, executor="ray").table
    pd.testing.assert_frame_equal(remote, local)


PLAN = {"choose": {"fleet[0].device": ["jetson-agx-orin-64gb", "jetson-orin-nano-8gb", "raspberry-pi-4-8gb"],
                   "fleet[0].count": [20, 40], "federation.clients_per_round": [5, 10]},
        "minimize": "cost_total", "subject_to": {"sim_time_s": {"max": 60.0}}}


def write_plan(tmp_path, **extra) -> Path:
    sc = scenario_file(tmp_path, rounds=3)
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump({"scenario": sc.name, **PLAN, **extra}, sort_keys=False))
    return path


def brute_force(tmp_path):
    from simfl.plan.spec import points

    rows = [(p, evaluate_point(str(tmp_path / "s.yaml"), p)) for p in points(PLAN["choose"])]
    ok = [(p, r) for p, r in rows if r["status"] == "ok" and r["sim_time_s"] <= 60.0]
    return min(ok, key=lambda pr: pr[1]["cost_total"]), len(ok)


def test_plan_finds_the_brute_force_best(tmp_path):
    spec = write_plan(tmp_path)
    (best, row), n_feasible = brute_force(tmp_path)
    result = run_plan(spec, tmp_path / "out", workers=2)
    p = result.plan
    assert p["method"] == "exhaustive" and p["evaluated"] == 12 and p["feasible"] == n_feasible
    assert 0 < n_feasible < 12  # the constraint bites
    assert p["best"]["choices"] == best and p["best"]["figures"]["cost_total"] == row["cost_total"]
    ranked = [e["figures"]["cost_total"] for e in [p["best"], *p["runners_up"]]]
    assert ranked == sorted(ranked)
    on_disk = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert on_disk["best"]["choices"] == best and {"evaluated", "feasible", "pareto"} <= set(on_disk)


def test_optuna_search_is_seeded_and_its_best_is_the_best_it_saw(tmp_path):
    pytest.importorskip("optuna", reason="Optuna is not installed (pip install 'simfl[search]')")
    spec = write_plan(tmp_path, search={"method": "optuna", "trials": 8, "seed": 3})
    a = run_plan(spec, tmp_path / "a").plan
    b = run_plan(spec, tmp_path / "b").plan
    assert a["method"] == "optuna" and a == b
    assert a["evaluated"] <= 8
    best_seen = min((e for e in [a["best"], *a["runners_up"]]), key=lambda e: e["figures"]["cost_total"])
    assert best_seen == a["best"]


def test_pareto_front_and_percentile_constraints_by_hand():
    spec = PlanSpec(scenario="x", choose={"a": [1]}, minimize="cost_total",
                    subject_to={"sim_time_s": {"max": 10.0}})
    rows = [(0, {"cost_total": 1.0, "sim_time_s": 9.0}), (1, {"cost_total": 2.0, "sim_time_s": 5.0}),
            (2, {"cost_total": 2.0, "sim_time_s": 9.0}), (3, {"cost_total": 3.0, "sim_time_s": 1.0}),
            (4, {"cost_total": 0.5, "sim_time_s": 20.0})]
    assert pareto(rows, spec) == [0, 1, 3, 4]  # 2 is beaten by 0 (same time, cheaper) and by 1
    ok = {"status": "ok", "cost_total": 1.0, "sim_time_s": 8.0, "sim_time_s_p95": 11.0}
    assert feasible(ok, spec)
    assert not feasible(ok, spec.model_copy(update={"replicates": 5}))  # the 95th percentile breaks the bound
    assert not feasible({**ok, "status": "invalid"}, spec)


@pytest.mark.parametrize("content, expected", [
    ({"scenario": "s.yaml", "axes": {"fleet.0": [1]}}, "axes: not a field path: 'fleet.0'"),
    ({"scenario": "s.yaml", "axes": {"fleet[0].count": []}}, "axes: fleet[0].count: give at least "
                                                             "one value"),
    ({"scenario": "nope.yaml", "axes": {"seed": [1]}}, "scenario: scenario file nope.yaml not found"),
    ({"scenario": "s.yaml", "axes": {"seed": [1]}, "replicas": 2}, "replicas: unknown field 'replicas'; did you mean 'replicates'?"),
])
def test_bad_sweep_file_is_one_line_exit_2(tmp_path, content, expected):
    scenario_file(tmp_path)
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump(content))
    r = simfl("sweep", spec, "--out", tmp_path / "out")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and expected in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()


def test_bad_plan_figure_and_options_are_one_line(tmp_path):
    spec = write_plan(tmp_path, minimize="cheapness")
    r = simfl("plan", spec, "--out", tmp_path / "out")
    assert r.returncode == 2 and "minimize: 'cheapness' is not a summary figure; figures: sim_time_s" in r.stderr
    r = simfl("plan", write_plan(tmp_path), "--workers", "0")
    assert r.returncode == 2 and r.stderr == "error: --workers: must be at least 1 (got 0)\n"
    r = simfl("sweep", write_sweep(tmp_path), "--executor", "slurm")
    assert r.returncode == 2 and r.stderr == "error: --executor: expected local or ray, got 'slurm'\n"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (.ci/run installs it as root; "
                                              "apt-get install chromium)")
def test_reports_load_in_headless_chromium_with_their_key_figures(tmp_path):
    run_out, sweep_out, plan_out, none_out = (tmp_path / n for n in ("run", "sweep", "plan", "none"))
    assert simfl("run", scenario_file(tmp_path, rounds=3), "--out", run_out).returncode == 0
    assert simfl("sweep", write_sweep(tmp_path), "--out", sweep_out).returncode == 0
    assert simfl("plan", write_plan(tmp_path), "--out", plan_out).returncode == 0
    # no point can finish 3 rounds in a second: the page says which constraint binds and by how much
    impossible = write_plan(tmp_path, subject_to={"sim_time_s": {"max": 1.0}})
    assert simfl("plan", impossible, "--out", none_out).returncode == 0
    plan = json.loads((plan_out / "plan.json").read_text())
    summary = json.loads((run_out / "summary.json").read_text())
    best = plan["best"]["choices"]
    fastest = pd.read_csv(none_out / "points.csv").query("status == 'ok'").sort_values(["sim_time_s", "point"]).iloc[0]
    expect = {run_out: ["simfl run: quickstart", "Timeline", f"{summary['cost_total']:,.4g} EUR"],
              sweep_out: ["simfl sweep: sweep.yaml", "out of memory", "fleet[0].count"],
              plan_out: ["simfl plan: plan.yaml", "Recommended: " + ", ".join(f"{k} = {v}" for k, v in best.items()),
                         f"{plan['best']['figures']['cost_total']:,.2f} EUR in total", "Total cost against time",
                         "time over the 1 min limit"],  # 60 s
              none_out: ["No point meets the constraints.", "Time binds:", "the fastest point, fleet[0].device = "
                         f"{fastest['fleet[0].device']}, fleet[0].count = {fastest['fleet[0].count']}",
                         "over the 1 s limit", "Nearest points"]}
    for folder, texts in expect.items():
        url = (folder / "report.html").resolve().as_uri()
        args = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"]
        dom = subprocess.run([*args, "--dump-dom", url], capture_output=True, text=True, timeout=120)
        assert dom.returncode == 0, dom.stderr[-2000:]
        assert "CONSOLE" not in dom.stderr  # no console message, error or otherwise
        for text in texts:
            assert text in dom.stdout, (folder.name, text)
        assert dom.stdout.count("data:image/png;base64,") >= 1
        shot = tmp_path / f"{folder.name}.png"
        subprocess.run([*args, f"--screenshot={shot}", "--window-size=1200,1600", url], capture_output=True,
                       timeout=120)
        assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


def test_points_load_from_the_base_read_once_with_the_same_errors(tmp_path, monkeypatch):
    import pickle

    import simfl.config.load as load
    from simfl.config.load import ScenarioSource

    path = scenario_file(tmp_path, rounds=3)
    source = ScenarioSource.read(path)
    parsed = yaml.safe_load(path.read_text())
    bad = {("fleet[3].count", 5): "fleet[3].count: fleet has 1 item(s); there is no [3]",
           ("fleet[0].count", -1): "fleet[0].count: Input should be greater than 0 (got -1)",
           ("federation.clients_per_rnd", 3): "federation.clients_per_rnd: unknown field 'clients_per_rnd'; did you "
                                              "mean 'clients_per_round'?",
           ("fleet[0].count.x", 1): "fleet[0].count.x: fleet[0].count is not a mapping, so it has no field 'x'"}
    for (field, value), error in bad.items():
        assert evaluate_point(source, {field: value}) == {"status": "invalid", "error": error}
        assert evaluate_point(str(path), {field: value}) == {"status": "invalid", "error": error}
    assert source.raw == parsed  # no point's overrides or resolution reached the base
    assert pickle.loads(pickle.dumps(source)).load({"fleet[0].count": 70}) == load_scenario(path, {"fleet[0].count": 70})
    # a sweep reads its scenario file once, not once a point; each profile is read and parsed once per process
    reads, parses, profile_reads = [], [], []
    real_read, real_parse, real_text = load.read_yaml, load.load_yaml, load.read_text
    monkeypatch.setattr(load, "read_yaml", lambda p, *a: reads.append(Path(p).name) or real_read(p, *a))
    monkeypatch.setattr(load, "load_yaml", lambda text, p=None: parses.append(Path(p).name) or real_parse(text, p))
    monkeypatch.setattr(load, "read_text", lambda p, **k: profile_reads.append(Path(p).name) or real_text(p, **k))
    load._MODELS.clear()
    t = run_sweep(write_sweep(tmp_path, axes={"fleet[0].count": [20, 40, 60], "fleet[0].device": [
        "jetson-agx-orin-64gb", "jetson-orin-nano-8gb"]}), tmp_path / "out").table
    assert (t["status"] == "ok").all() and len(t) == 6
    assert reads.count("s.yaml") == 1
    profiles = ["a100-80gb.yaml", "ethernet-10gbit.yaml", "jetson-agx-orin-64gb.yaml", "jetson-orin-nano-8gb.yaml",
                "lte.yaml"]
    assert sorted(p for p in parses if p not in ("s.yaml", "sweep.yaml")) == profiles
    assert sorted(p for p in profile_reads if p in profiles) == profiles  # 6 points, 4 references each: once
    # an edited profile is read again (its stat changed); an unchanged one is not
    lte = tmp_path / "lte.yaml"
    shutil.copy(load.REPO_ROOT / "network_models" / "lte.yaml", lte)
    source = ScenarioSource.read(path)
    profile_reads.clear()
    first = source.load({"fleet[0].network": str(lte)})
    assert source.load({"fleet[0].network": str(lte)}).networks[str(lte)] is first.networks[str(lte)]
    lte.write_text(lte.read_text().replace("latency_s:", "latency_s: 0.5 #", 1) + "\n")
    assert source.load({"fleet[0].network": str(lte)}).networks[str(lte)].latency_s == 0.5
    assert profile_reads == ["lte.yaml", "lte.yaml"]
