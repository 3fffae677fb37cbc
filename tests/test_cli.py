"""The command line as a user meets it: outputs, exact error lines, exit codes, nothing half-written."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from simfl.config.load import REPO_ROOT

QUICK = REPO_ROOT / "scenarios" / "quickstart.yaml"


def simfl(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "simfl", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or REPO_ROOT)


def scenario_file(tmp_path, mutate=None, rounds=5) -> Path:
    sc = yaml.safe_load(QUICK.read_text())
    sc["federation"]["rounds"] = rounds
    if mutate:
        mutate(sc)
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(sc))
    return p


def test_run_writes_the_output_contract(tmp_path):
    out = tmp_path / "out"
    r = simfl("run", scenario_file(tmp_path), "--out", out)
    assert r.returncode == 0, r.stderr
    assert {p.name for p in out.iterdir()} == {".simfl-output", "summary.json", "rounds.csv", "clients.csv",
                                                "rounds.parquet", "clients.parquet", "scenario.resolved.yaml",
                                                "timeline.png", "energy.png", "report.html"}
    # streamed to Parquet during the run, CSV after it: both hold exactly the rows an in-memory run gives
    import simfl as api
    mem = api.simulate(api.load_scenario(scenario_file(tmp_path)))
    assert (out / "clients.csv").read_text() == mem.clients.to_csv(index=False)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "clients.parquet"), mem.clients)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "rounds.parquet"), mem.rounds)
    s = json.loads((out / "summary.json").read_text())
    for key in ("scenario", "seed", "rounds_completed", "sim_time_s", "granularity_mean", "network_bits",
                "energy_j", "kwh_network_per_round_mean", "co2_kg", "cost_energy", "cost_hardware", "cost_data",
                "cost_total", "capex", "currency", "costs"):
        assert key in s
    assert set(s["energy_j"]) == {"client_compute", "client_idle", "network", "server", "total"}
    rounds = pd.read_csv(out / "rounds.csv")
    assert list(rounds.columns[:14]) == [
        "round", "start_s", "end_s", "clients_selected", "clients_completed", "t_comp_s", "t_comm_s",
        "granularity", "bits_down", "bits_up", "energy_network_j", "energy_client_compute_j",
        "energy_client_idle_j", "energy_server_j"]
    clients = pd.read_csv(out / "clients.csv")
    assert list(clients.columns[:13]) == [
        "round", "client", "device", "network", "download_start_s", "download_end_s", "compute_start_s",
        "compute_end_s", "upload_start_s", "upload_end_s", "status", "energy_compute_j", "energy_idle_j"]
    assert len(rounds) == 5 and len(clients) == 50
    # quickstart by hand: 2 x 0.73 s compute; LTE 22,020,096 bits at 40/10 Mbit/s, 50.5 ms latency each way
    assert rounds["t_comp_s"].iloc[0] == pytest.approx(1.46)
    assert clients["download_end_s"].iloc[0] == pytest.approx(0.0505 + 22_020_096 / 40e6)
    total = sum(v for k, v in s["energy_j"].items() if k != "total")
    assert s["energy_j"]["total"] == pytest.approx(total)
    assert s["co2_kg"] == pytest.approx(total / 3.6e6 * 380 / 1000)
    # the resolved scenario stands alone: it runs again from anywhere with the same result
    again = tmp_path / "again"
    r2 = simfl("run", out / "scenario.resolved.yaml", "--out", again, "--no-plots", cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr
    assert (again / "clients.csv").read_bytes() == (out / "clients.csv").read_bytes()


def test_same_seed_identical_bytes_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    f = scenario_file(tmp_path)
    for out in (a, b):
        assert simfl("run", f, "--out", out, "--no-plots").returncode == 0
    g = scenario_file(tmp_path / "..", lambda s: s.update(seed=8))
    assert simfl("run", g, "--out", c, "--no-plots").returncode == 0
    for name in ("summary.json", "rounds.csv", "clients.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "clients.csv").read_bytes() != (c / "clients.csv").read_bytes()


BAD = {
    "missing field": (lambda s: s.pop("training"), "{f}: training: Field required"),
    "negative rate": (lambda s: s.update(cells={"a": {"downlink_bps": -5.0, "uplink_bps": 1.0}}),
                      "{f}: cells.a.downlink_bps: Input should be greater than 0 (got -5.0)"),
    "unknown device": (lambda s: s["fleet"][0].update(device="jetson-tx9"),
                       "{f}: fleet[0].device: unknown hardware profile 'jetson-tx9'; available: a100-80gb, "
                       "cpu-1core-epyc-emulate, cpu-2core-epyc, cpu-2core-epyc-llm, cpu-2core-epyc-zen4-ways, "
                       "h100-sxm-80gb, jetson-agx-orin-64gb, jetson-agx-orin-64gb-node, jetson-nano-4gb, "
                       "jetson-orin-nano-8gb, jetson-orin-nano-super-devkit, jetson-orin-nx-16gb, l4-24gb, "
                       "raspberry-pi-4-8gb, rtx-4090-24gb, snapdragon-8-gen-2-phone"),
    "oom batch": (lambda s: (s["model"].update(name="flan-t5-large"), s["training"].update(batch_size=16)),
                  "{f}: fleet[0].device: jetson-agx-orin-64gb cannot train flan-t5-large lora backprop seq_len "
                  "512 at batch 16: out of memory (measured OOM at batch 16)"),
    "unknown key": (lambda s: s["federation"].update(clients_per_rnd=3),
                    "{f}: federation.clients_per_rnd: unknown field 'clients_per_rnd'; did you mean "
                    "'clients_per_round'?"),
    "too many selected": (lambda s: s["federation"].update(clients_per_round=90, over_selection=0.2),
                          "{f}: federation selects 108 clients a round (clients_per_round 90, over_selection 0.2) "
                          "but the fleet has 100"),
    "infinite price": (lambda s: s["accounting"].update(price_per_kwh=float("inf")),
                       "{f}: accounting.price_per_kwh: Input should be a finite number (got inf)"),
    "nan capacity": (lambda s: s.update(cells={"a": {"downlink_bps": float("nan"), "uplink_bps": 1.0}}),
                     "{f}: cells.a.downlink_bps: Input should be a finite number (got nan)"),
    "bool batch": (lambda s: s["training"].update(batch_size=True),
                   "{f}: training.batch_size: Input should be a valid integer (got True)"),
    "string count": (lambda s: s["fleet"][0].update(count="100"),
                     "{f}: fleet[0].count: Input should be a valid integer (got '100')"),
    "folder as device": (lambda s: s["fleet"][0].update(device="./"),
                         "{f}: fleet[0].device: './' is a folder, not a hardware profile file"),
    "long value cut": (lambda s: s["fleet"][0].update(network="lte-" + "x" * 300),
                       "{f}: fleet[0].network: unknown network model 'lte-" + "x" * 72 + "...; available: "
                       "3g-errant, ethernet-10gbit, ethernet-1gbit, lte, lte-errant, paper-1gbit, paper-lte"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_exit_2_no_output(tmp_path, case):
    mutate, expected = BAD[case]
    f = scenario_file(tmp_path, mutate)
    out = tmp_path / "out"
    r = simfl("run", f, "--out", out)
    assert r.returncode == 2
    assert r.stderr == "error: " + expected.format(f=f) + "\n"
    assert "Traceback" not in r.stderr and not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["s.yaml"]


@pytest.mark.parametrize("text,expected", [
    ("name: x\nseed: [1\n", "YAML error at line 3, column 1: expected ',' or ']', but got '<stream end>'"),
    ("!!python/object/apply:os.system ['echo pwned']\n",
     "YAML error at line 1, column 1: could not determine a constructor for the tag "
     "'tag:yaml.org,2002:python/object/apply:os.system'"),
    ("- just\n- a list\n", "expected a mapping at the top level, got list"),
    ("name: x\nseed: 1\nname: y\n", "YAML error at line 3, column 1: duplicate key 'name'"),
    ("federation:\n  rounds: 3\n  rounds: 5\n", "YAML error at line 3, column 3: duplicate key 'rounds'"),
])
def test_bad_yaml_is_one_line(tmp_path, text, expected):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    r = simfl("validate", f)
    assert (r.returncode, r.stderr) == (2, f"error: {f}: {expected}\n")


@pytest.mark.parametrize("fields, expected", [
    ("downlink_bps: -1\nuplink_bps: 1\nlatency_s: 0\n", "downlink_bps: Input should be greater than 0 (got -1)"),
    ("downlink_bps: 1e9\nuplink_bps: 1e9\nlatency_s: .nan\n", "latency_s: Input should be a finite number (got nan)"),
])
def test_bad_network_file_names_that_file_and_field(tmp_path, fields, expected):
    net = tmp_path / "net.yaml"
    net.write_text("name: net\nsource: test\n" + fields)
    f = scenario_file(tmp_path, lambda s: s["fleet"][0].update(network=str(net)))
    r = simfl("validate", f)
    assert (r.returncode, r.stderr) == (2, f"error: {net}: {expected}\n")


def test_exponent_without_a_dot_is_a_number(tmp_path):
    # YAML 1.1 (PyYAML) reads 1e9 as a string; simfl reads it as the number users mean.
    f = scenario_file(tmp_path)
    f.write_text(f.read_text() + "cells:\n  a: {downlink_bps: 1e9, uplink_bps: 5E+8}\n")
    r = simfl("validate", f)
    assert r.returncode == 0, r.stderr


def test_summary_is_strict_json(tmp_path):
    out = tmp_path / "out"
    assert simfl("run", scenario_file(tmp_path), "--out", out, "--no-plots").returncode == 0

    def refuse(name):
        raise AssertionError(f"summary.json holds {name}, which is not JSON")
    s = json.loads((out / "summary.json").read_text(), parse_constant=refuse)
    assert s["rounds_completed"] == 5
    from simfl.report.write import json_text
    assert json.loads(json_text({"a": float("nan"), "b": [float("inf"), 1.0]})) == {"a": None, "b": [None, 1.0]}


CLI_BAD = {
    "no cuda": (["calibrate", "--name", "x", "--device", "cuda"],
                "error: --device: cuda is not available: this torch is built without CUDA (use --device cpu or auto)"),
    "unknown device": (["calibrate", "--name", "x", "--device", "tpu:0"],
                       "error: --device: expected auto, cpu, cuda or cuda:N, got 'tpu:0'"),
    "negative seq len": (["calibrate", "--name", "x", "--seq-len", "-5"],
                         "error: Invalid value for '--seq-len': Input should be greater than or equal to 1 "
                         "(got '-5'); see simfl calibrate --help"),
    "batch sizes not numbers": (["calibrate", "--name", "x", "--batch-sizes", "abc"],
                                "error: --batch-sizes: expected a comma-separated list of integers, got 'abc'"),
    "zero batch": (["calibrate", "--name", "x", "--batch-sizes", "4,0"],
                   "error: --batch-sizes: batch sizes must be positive integers, got '4,0'"),
    "bad lora targets": (["calibrate", "--name", "x", "--lora-targets", "q,z"],
                         "error: --lora-targets: unknown LoRA target z; known: q, k, v, o, gate, up, down"),
    "text for a number": (["calibrate", "--name", "x", "--steps=ten"],
                          "error: Invalid value for '--steps': Input should be a valid integer, unable to parse "
                          "string as an integer (got 'ten'); see simfl calibrate --help"),
    "unknown option": (["run", "--frob", "x.yaml"], "error: No such option: --frob; see simfl run --help"),
    "missing argument": (["run"], "error: Missing argument 'scenario'; see simfl run --help"),
    "unknown command": (["bogus"], "error: No such command 'bogus'"),
    "train rounds 0": (["train", "x.yaml", "--rounds", "0"],
                       "error: Invalid value for '--rounds': Input should be greater than or equal to 1 (got '0'); "
                       "see simfl train --help"),
}


@pytest.mark.parametrize("case", CLI_BAD)
def test_bad_option_is_one_line_exit_2(tmp_path, case):
    args, expected = CLI_BAD[case]
    if case == "no cuda":
        torch = pytest.importorskip("torch")
        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA, so --device cuda is valid here")
    r = simfl(*args, "--out", tmp_path / "x.yaml") if args[0] == "calibrate" else simfl(*args)
    assert (r.returncode, r.stderr) == (2, expected + "\n")
    assert list(tmp_path.iterdir()) == []


def test_population_too_large_is_refused_before_building(tmp_path):
    f = scenario_file(tmp_path, lambda s: s["fleet"][0].update(count=10**12))
    r = subprocess.run([sys.executable, "-m", "simfl", "validate", str(f)], capture_output=True, text=True,
                       cwd=REPO_ROOT, timeout=60)
    assert (r.returncode, r.stderr) == (2, f"error: {f}: fleet: 1,000,000,000,000 clients in all; simfl builds at "
                                           "most 10,000,000 (each client is held in memory, about 300 bytes)\n")


def test_missing_file():
    r = simfl("run", "no/such.yaml")
    assert (r.returncode, r.stderr) == (2, "error: no/such.yaml: file not found\n")


def test_profiles_and_schema():
    r = simfl("profiles")
    assert r.returncode == 0, r.stderr
    assert "jetson-agx-orin-64gb" in r.stdout and "paper-lte" in r.stdout and "cpu-2core-epyc" in r.stdout
    schema = json.loads(simfl("schema").stdout)
    assert schema["title"] == "Scenario" and "federation" in schema["properties"]


def test_a_bad_kernel_in_the_environment_is_one_line(tmp_path):
    # SIMFL_KERNEL picks the engine (README, "Engine speed"): a name that is not one is bad input, found
    # before anything is read or written
    import os

    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "simfl", "run", str(QUICK), "--out", str(out)], capture_output=True,
                       text=True, cwd=REPO_ROOT, env={**os.environ, "SIMFL_KERNEL": "fast"})
    assert r.returncode == 2
    assert r.stderr == "error: SIMFL_KERNEL: 'fast' is not a kernel: use one of auto, simpy, arrays\n"
    assert not out.exists()


def test_a_kernel_that_cannot_run_the_scenario_is_one_line(tmp_path):
    # varying-world draws links each round, which only SimPy runs: forcing the array kernel is bad input
    import os

    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "simfl", "run", str(REPO_ROOT / "scenarios" / "varying-world.yaml"),
                        "--out", str(out)], capture_output=True, text=True, cwd=REPO_ROOT,
                       env={**os.environ, "SIMFL_KERNEL": "arrays"})
    assert r.returncode == 2
    assert r.stderr == ("error: SIMFL_KERNEL: the array kernel cannot run these inputs: links drawn each round; "
                        "use auto or simpy\n")
    assert not out.exists()
