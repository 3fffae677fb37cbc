"""Flower's own strategies (FedAvg, FedAdam, unmodified) on the simulated Grid (simfl/flower/): rounds timed by
simfl's engine, in agreement with `simfl run`, replies from a real ClientApp or cost-only, and what the fleet
cannot give said in one line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr")

from simfl import load_scenario, simulate  # noqa: E402
from simfl.config.load import REPO_ROOT  # noqa: E402
from simfl.errors import ScenarioError  # noqa: E402
from simfl.flower.app import read_app, simulate_flower  # noqa: E402

QUICK = REPO_ROOT / "scenarios" / "quickstart.yaml"

SERVER = '''
import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAdam, FedAvg

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    kw = dict(fraction_train=cfg["fraction-train"], fraction_evaluate=cfg["fraction-evaluate"],
              min_available_nodes=cfg["min-nodes"], min_train_nodes=cfg["min-nodes"], min_evaluate_nodes=1)
    if cfg["strategy"] == "fedadam":
        strategy = FedAdam(eta=0.1, beta_1=0.9, beta_2=0.99, tau=1e-3, **kw)
    else:
        strategy = FedAvg(**kw)
    result = strategy.start(grid=grid, initial_arrays=ArrayRecord([np.zeros(4, dtype=np.float64)]),
                            num_rounds=cfg["num-server-rounds"], timeout=cfg["timeout"])
    if cfg["result-file"]:
        np.save(cfg["result-file"], result.arrays.to_numpy_ndarrays()[0])
'''

CLIENT = '''
from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

app = ClientApp()


@app.train()
def train(msg, context):
    # node i adds i + 1 to every weight and says it trained on 10 (i + 1) examples
    pid = context.node_config["partition-id"]
    arrays = [a + (pid + 1) for a in msg.content["arrays"].to_numpy_ndarrays()]
    content = RecordDict({"arrays": ArrayRecord(arrays), "metrics": MetricRecord({"num-examples": 10 * (pid + 1)})})
    return Message(content=content, reply_to=msg)


@app.evaluate()
def evaluate(msg, context):
    return Message(content=RecordDict({"metrics": MetricRecord({"num-examples": 1, "loss": 0.5})}), reply_to=msg)
'''


def flower_app(folder: Path, **config) -> Path:
    """A Flower app (pyproject.toml, a ServerApp running Flower's FedAvg or FedAdam, a numpy ClientApp)."""
    cfg = {"num-server-rounds": 5, "fraction-train": 1.0, "fraction-evaluate": 0.0, "min-nodes": 2,
           "strategy": "fedavg", "timeout": 3600.0, "result-file": "", **config}
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in cfg.items())
    (folder / "numapp").mkdir(parents=True)
    (folder / "numapp" / "__init__.py").write_text("")
    (folder / "numapp" / "server_app.py").write_text(SERVER)
    (folder / "numapp" / "client_app.py").write_text(CLIENT)
    (folder / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [project]
        name = "numapp"
        version = "1.0.0"

        [tool.flwr.app]
        publisher = "simfl-tests"

        [tool.flwr.app.components]
        serverapp = "numapp.server_app:app"
        clientapp = "numapp.client_app:app"

        [tool.flwr.app.config]
        """) + lines + "\n")
    return folder


@pytest.fixture(autouse=True)
def _fresh_app_modules():
    """Each test's app is imported afresh (they share the module name numapp)."""
    yield
    for name in [m for m in sys.modules if m == "numapp" or m.startswith("numapp.")]:
        del sys.modules[name]


def test_fedavg_on_the_grid_gives_simfl_runs_rounds_times_and_energy(tmp_path):
    # --nodes selected: the grid offers the clients simfl's selection draws for the round, FedAvg with fraction
    # 1.0 addresses all of them, so the rounds are `simfl run`'s, draw for draw
    app = read_app(flower_app(tmp_path / "app", **{"num-server-rounds": 5}))
    sc = load_scenario(QUICK)
    result, grid = simulate_flower(app, sc, nodes="selected")
    reference = simulate(load_scenario(QUICK, {"federation.rounds": 5}))
    assert result.rounds.equals(reference.rounds)
    assert result.summary.figures() == reference.summary.figures()
    assert [len(r.addressed) for r in grid.rounds] == [10] * 5
    # One round by hand (quickstart: FLAN-T5-small LoRA r16 on q,v = 688,128 params x 32 bits = 22,020,096 bits;
    # LTE 40 Mbit/s down, 10 up, 50 ms + the server's 0.5 ms; 2 steps x 0.73 s on the Orin; 10 Mbit/s x 10
    # clients fit the 10 Gbit/s server link, so no contention):
    #   download 0.0505 + 22,020,096 / 40e6 = 0.6010024 s; compute 1.46 s; upload 0.0505 + 22,020,096 / 10e6
    #   = 2.2525096 s; aggregation 10 x 688,128 / 84.96e9 params/s = 0.0000809944 s; round 4.3135930 s
    assert result.rounds["end_s"].iloc[0] == pytest.approx(4.3135930, abs=1e-6)
    assert result.rounds["end_s"].iloc[-1] == pytest.approx(5 * 4.3135930, abs=1e-5)
    assert result.summary.figures()["rounds_completed"] == 5


def test_agreement_holds_in_a_varying_world(tmp_path):
    # availability (diurnal and on/off), dropouts, per-client and per-round speed and link draws, hourly carbon:
    # the same draws as `simfl run` once K is everyone selected and no deadline cuts a round (Flower waits for
    # every reply: over_selection and deadline_s have no Flower counterpart)
    path = REPO_ROOT / "scenarios" / "varying-world.yaml"
    fixed = {"federation.over_selection": 0.0, "federation.deadline_s": None}
    app = read_app(flower_app(tmp_path / "app", **{"num-server-rounds": 6}))
    result, grid = simulate_flower(app, load_scenario(path, fixed), nodes="selected")
    reference = simulate(load_scenario(path, {**fixed, "federation.rounds": 6}))
    assert result.rounds.equals(reference.rounds)
    assert result.summary.figures() == reference.summary.figures()
    assert result.clients.equals(reference.clients)


def test_a_strategy_waiting_for_nodes_waits_on_the_simulated_clock(tmp_path):
    # 100 Orins online from 22:00 (each window shifted by up to an hour), the run starting at noon: `simfl run`
    # starts round 0 with the first client online, alone; FedAvg (min_available_nodes 2) waits, in simulated
    # time, for the second, so its round 0 starts later, with 2 clients, ready since t = 0
    text = QUICK.read_text().replace("name: quickstart\n", 'name: night\nstart_time: "2022-01-01T12:00:00+00:00"\n')
    text = text.replace("  - {count: 100, device: jetson-agx-orin-64gb, network: lte}",
                        "  - count: 100\n    device: jetson-agx-orin-64gb\n    network: lte\n"
                        "    availability: {kind: diurnal, start_hour: 22, end_hour: 6, jitter_h: 1}")
    (tmp_path / "night.yaml").write_text(text)
    sc = load_scenario(tmp_path / "night.yaml", {"federation.rounds": 1})
    first = simulate(sc).rounds.iloc[0]
    assert first["clients_selected"] == 1 and 36000 - 3600 < first["start_s"] < 36000 + 3600  # 22:00 is 36,000 s
    app = read_app(flower_app(tmp_path / "app", **{"num-server-rounds": 1}))
    result, grid = simulate_flower(app, sc, nodes="fleet")
    r0 = result.rounds.iloc[0]
    assert r0["clients_selected"] == 2 and r0["start_s"] > first["start_s"]
    assert r0["wait_s"] == r0["start_s"] and r0["start_s"] < 36000 + 3600


def test_every_online_client_is_a_node_and_flowers_sampling_picks(tmp_path):
    # --nodes fleet: FedAvg sees all 100 clients; fraction 0.25 addresses int(100 x 0.25) = 25 a round
    app = read_app(flower_app(tmp_path / "app", **{"num-server-rounds": 3, "fraction-train": 0.25}))
    result, grid = simulate_flower(app, load_scenario(QUICK), nodes="fleet")
    assert [len(r.addressed) for r in grid.rounds] == [25, 25, 25]
    assert list(result.rounds["clients_selected"]) == [25, 25, 25]
    assert list(result.rounds["clients_completed"]) == [25, 25, 25]


def three_clients():
    return load_scenario(QUICK, {"fleet[0].count": 3, "federation.clients_per_round": 3})


def test_unmodified_fedavg_averages_the_clientapps_replies_by_their_examples(tmp_path):
    out = tmp_path / "w.npy"
    app = read_app(flower_app(tmp_path / "app", **{"num-server-rounds": 2, "result-file": str(out)}))
    result, grid = simulate_flower(app, three_clients(), train=True)
    # round 1 from zeros: clients add 1, 2, 3 with 10, 20, 30 examples: (10 + 40 + 90) / 60 = 7/3;
    # round 2 adds the same mean again: 14/3
    assert np.allclose(np.load(out), np.full(4, 14 / 3))
    assert [sorted(r.replied) for r in grid.rounds] == [[0, 1, 2], [0, 1, 2]]
    assert result.summary.figures()["rounds_completed"] == 2


def test_unmodified_fedadam_runs_on_the_clock_with_real_replies(tmp_path):
    out = tmp_path / "w.npy"
    app = read_app(flower_app(tmp_path / "app", **{"num-server-rounds": 1, "strategy": "fedadam",
                                                   "result-file": str(out)}))
    result, _ = simulate_flower(app, three_clients(), train=True)
    # FedAdam (flwr 1.42, eta 0.1, beta_1 0.9, beta_2 0.99, tau 1e-3), round 1 from zeros: delta = 7/3 (FedAvg's
    # mean above); m = 0.1 x 7/3 = 0.233333; v = 0.01 x (7/3)^2 = 0.0544444, sqrt(v) = 0.233333;
    # eta_norm = 0.1 x sqrt(1 - 0.99^2) / (1 - 0.9^2) = 0.1 x 0.1410674 / 0.19 = 0.0742460;
    # x = 0.0742460 x 0.233333 / (0.233333 + 0.001) = 0.0739291
    assert np.allclose(np.load(out), np.full(4, 0.0739291), atol=1e-6)
    assert result.summary.figures()["rounds_completed"] == 1


def test_flowers_timeout_is_the_rounds_deadline(tmp_path):
    # a quickstart round takes 4.3136 s (above); a 1 s timeout ends it at 1 s with all 3 clients late and no reply
    app = read_app(flower_app(tmp_path / "app", **{"num-server-rounds": 2, "timeout": 1.0}))
    result, grid = simulate_flower(app, three_clients())
    assert list(result.rounds["end_s"]) == pytest.approx([1.0, 2.0])
    assert list(result.rounds["clients_late"]) == [3, 3]
    assert [r.replied for r in grid.rounds] == [[], []]


def test_evaluation_is_answered_and_said_to_take_no_time(tmp_path):
    app = read_app(flower_app(tmp_path / "app", **{"num-server-rounds": 1, "fraction-evaluate": 1.0}))
    result, _ = simulate_flower(app, three_clients(), train=True)
    assert any("evaluate and query messages were answered without time passing" in w for w in result.warnings)
    # a round of 3 clients: 4.3135363 s (below), evaluation adding nothing
    assert result.rounds["end_s"].iloc[0] == pytest.approx(4.3135363, abs=1e-6)


def test_a_strategy_waiting_for_more_nodes_than_the_fleet_has_is_one_line(tmp_path):
    app = read_app(flower_app(tmp_path / "app", **{"min-nodes": 4}))
    with pytest.raises(ScenarioError) as e:
        simulate_flower(app, three_clients())
    assert str(e.value) == ("fleet: the strategy waits for more nodes than the fleet gives: 3 of 3 clients online "
                            "at t = 0 s; lower its min_available_nodes / min_train_nodes or use a larger fleet")


def simfl(*args, cwd):
    return subprocess.run([sys.executable, "-m", "simfl", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300, env={**__import__("os").environ, "PYTHONPATH": str(REPO_ROOT)})


def test_the_command_writes_simfl_runs_outputs(tmp_path):
    flower_app(tmp_path / "app", **{"num-server-rounds": 3})
    r = simfl("flower", tmp_path / "app", "--fleet", QUICK, "--out", tmp_path / "out", "--nodes", "selected",
              "--no-plots", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("numapp on quickstart: 3 rounds, ")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert {"summary.json", "rounds.csv", "clients.parquet", "scenario.resolved.yaml", "flower.json"} <= set(names)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["rounds_completed"] == 3
    assert summary["sim_time_s"] == pytest.approx(3 * 4.3135930, abs=1e-5)


@pytest.mark.parametrize("args,expected", [
    (["--fleet", QUICK], "error: {d}: has no pyproject.toml: give a Flower app's folder"),
    (["--fleet", QUICK, "--nodes", "some"], "error: --nodes: expected fleet or selected, got 'some'"),
    (["--fleet", QUICK, "--run-config", "rounds=5"], None),
])
def test_bad_input_is_one_line_and_nothing_written(tmp_path, args, expected):
    d = tmp_path / "app"
    if expected is None:  # an app, asked for a key its config lacks
        flower_app(d)
        expected = ("error: --run-config: the app's config has no key 'rounds' (known: fraction-evaluate, "
                    "fraction-train, min-nodes, num-server-rounds, result-file, strategy, timeout)")
    else:
        d.mkdir()
    r = simfl("flower", d, *args, "--out", tmp_path / "out", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (2, expected.format(d=d) + "\n")
    assert not (tmp_path / "out").exists()


def test_more_nodes_than_exist_from_the_command_is_one_line(tmp_path):
    flower_app(tmp_path / "app", **{"min-nodes": 101})
    r = simfl("flower", tmp_path / "app", "--fleet", QUICK, "--out", tmp_path / "out", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr == (f"error: {QUICK}: fleet: the strategy waits for more nodes than the fleet gives: 100 of 100 "
                        "clients online at t = 0 s; lower its min_available_nodes / min_train_nodes or use a larger "
                        "fleet\n")
    assert not (tmp_path / "out").exists()


EXAMPLE = REPO_ROOT / "examples" / "flower-lora"


@pytest.mark.parametrize("train", [True, False], ids=["clientapp", "cost-only"])
def test_the_example_app_trains_through_unmodified_fedadam_on_the_clock(tmp_path, train):
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    saved = tmp_path / "losses.json"
    app = read_app(EXAMPLE, {"num-server-rounds": 2, "strategy": "fedadam", "fraction-train": 1.0,
                             "save-losses": str(saved)})
    result, grid = simulate_flower(app, three_clients(), train=train)
    losses = {int(k): v for k, v in json.loads(saved.read_text()).items()}
    assert sorted(losses) == [0, 1, 2] and [sorted(r.replied) for r in grid.rounds] == [[0, 1, 2]] * 2
    if train:  # the ClientApp's LoRA steps, averaged and applied by FedAdam, lower the global model's loss
        assert losses[2] < losses[0] - 0.1, losses
    else:  # its own arrays back unchanged: FedAdam's delta is 0 and the model stays where it started
        assert losses[2] == pytest.approx(losses[0], abs=1e-6), losses
    # the clock is the scenario's whatever the replies: a round of 3 clients is the hand-worked round above
    # with 3 updates aggregated: 0.6010024 + 1.46 + 2.2525096 + 3 x 688,128 / 84.96e9 = 4.3135363 s
    assert list(result.rounds["end_s"]) == pytest.approx([4.3135363, 2 * 4.3135363], abs=1e-6)


def test_the_apps_own_failure_is_one_line_naming_where(tmp_path):
    # the ServerApp saves its result into a folder that does not exist: numpy raises inside the app
    flower_app(tmp_path / "app", **{"num-server-rounds": 1, "result-file": str(tmp_path / "no" / "w.npy")})
    r = simfl("flower", tmp_path / "app", "--fleet", QUICK, "--out", tmp_path / "out", cwd=tmp_path)
    where = tmp_path / "app" / "numapp" / "server_app.py"
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("error: the Flower app failed: FileNotFoundError: ")
    assert r.stderr.endswith(f"(at {where}:22)\n")  # the np.save line of SERVER (its line 22)
    assert not (tmp_path / "out").exists()


def test_a_timeout_that_is_no_number_of_seconds_is_one_line(tmp_path):
    app = read_app(flower_app(tmp_path / "app", **{"timeout": -5.0}))
    with pytest.raises(ScenarioError) as e:
        simulate_flower(app, three_clients())
    assert str(e.value) == "the strategy's timeout: expected a positive number of seconds or None, got -5.0"
