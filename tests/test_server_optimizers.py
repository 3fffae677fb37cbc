"""Server-optimizer hyperparameters: typed per optimizer, their defaults in one place, a typo one line at load."""

import subprocess
import sys

import pytest
import yaml

from simfl.config.load import REPO_ROOT, dump_scenario, load_scenario
from simfl.config.server_optimizers import (FedAdamParams, FedAdamWParams, FedAvgMParams, FedAvgParams,
                                            server_optimizer)
from simfl.errors import ScenarioError

TRAIN = REPO_ROOT / "scenarios" / "train" / "tiny-dialogsum.yaml"


def train_file(tmp_path, mutate):
    sc = yaml.safe_load(TRAIN.read_text())
    mutate(sc["train"])
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump(sc, sort_keys=False))
    return p


def simfl(*args):
    return subprocess.run([sys.executable, "-m", "simfl", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO_ROOT)


def test_the_shipped_scenario_loads_typed_with_the_paper_defaults_filled_in():
    spec = load_scenario(TRAIN).train
    assert spec.optimizers == {"fedavg": FedAvgParams(eta=1.0), "fedavgm": FedAvgMParams(eta=0.1, beta=0.9),
                               "fedadam": FedAdamParams(eta=0.01),
                               "fedadamw": FedAdamWParams(eta=0.01, weight_decay=0.001)}
    assert spec.optimizers["fedadam"].hyperparameters() == {"eta": 0.01, "beta_1": 0.9, "beta_2": 0.999,
                                                            "epsilon": 1e-6}
    fg = spec.forward_gradient
    assert (fg.server_optimizer, type(fg.server)) == ("fedadamw", FedAdamWParams)
    assert fg.server.hyperparameters() == {"eta": 0.02, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-6,
                                           "weight_decay": 0.001}


def test_defaults_of_each_optimizer():
    assert server_optimizer("fedavg").hyperparameters() == {"eta": 1.0}
    assert server_optimizer("fedavgm").hyperparameters() == {"eta": 1.0, "beta": 0.9}
    assert server_optimizer("fedadamw", {"eta": 0.01}).hyperparameters() == {
        "eta": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-6, "weight_decay": 1e-3}


def test_the_resolved_scenario_keeps_what_was_written_and_loads_again_to_the_same_values(tmp_path):
    sc = load_scenario(TRAIN)
    data = yaml.safe_load(dump_scenario(sc))["train"]
    assert data["optimizers"] == {"fedavg": {"eta": 1.0}, "fedavgm": {"eta": 0.1, "beta": 0.9},
                                  "fedadam": {"eta": 0.01}, "fedadamw": {"eta": 0.01, "weight_decay": 0.001}}
    assert (data["forward_gradient"]["server_optimizer"], data["forward_gradient"]["server"]) == (
        "fedadamw", {"eta": 0.02, "weight_decay": 0.001})
    again = tmp_path / "again.yaml"
    again.write_text(dump_scenario(sc))
    assert load_scenario(again).train == sc.train


def test_no_optimizers_given_means_all_four_at_their_defaults(tmp_path):
    def drop(train):
        del train["optimizers"], train["forward_gradient"]["server"]
    spec = load_scenario(train_file(tmp_path, drop)).train
    assert spec.optimizers == {"fedavg": FedAvgParams(), "fedavgm": FedAvgMParams(), "fedadam": FedAdamParams(),
                               "fedadamw": FedAdamWParams()}
    assert spec.forward_gradient.server == FedAdamWParams()  # server_optimizer fedadamw, nothing set


@pytest.mark.parametrize("mutate, expected", [
    (lambda t: t["optimizers"]["fedadam"].update(etaa=0.01),
     "train.optimizers.fedadam.etaa: unknown field 'etaa'; did you mean 'eta'?"),
    (lambda t: t["forward_gradient"]["server"].update(weight_decy=0.01),
     "train.forward_gradient.server.weight_decy: unknown field 'weight_decy'; did you mean 'weight_decay'?"),
    # another optimizer's hyperparameter: FedAdam's beta_2 is not FedAvgM's
    (lambda t: t["optimizers"]["fedavgm"].update(beta_2=0.99),
     "train.optimizers.fedavgm.beta_2: unknown field 'beta_2'; did you mean 'beta'?"),
    (lambda t: t["forward_gradient"].update(server_optimizer="fedavgm"),
     "train.forward_gradient.server.weight_decay: unknown field 'weight_decay'; the fields here are eta, beta"),
    (lambda t: t["optimizers"]["fedavgm"].update(beta=1.0),
     "train.optimizers.fedavgm.beta: Input should be less than 1 (got 1.0)"),
    (lambda t: t["optimizers"].update(fedavg={"optimizer": "fedadam"}),
     "train: optimizers.fedavg holds the hyperparameters of fedadam"),
])
def test_a_bad_hyperparameter_is_one_line_at_load(tmp_path, mutate, expected):
    f = train_file(tmp_path, mutate)
    with pytest.raises(ScenarioError) as e:
        load_scenario(f)
    assert str(e.value) == f"{f}: {expected}"


def test_a_typo_is_one_line_with_exit_2_through_validate_and_run(tmp_path):
    f = train_file(tmp_path, lambda t: t["optimizers"]["fedadam"].update(etaa=0.01))
    line = f"error: {f}: train.optimizers.fedadam.etaa: unknown field 'etaa'; did you mean 'eta'?\n"
    r = simfl("validate", f)
    assert (r.returncode, r.stderr) == (2, line)
    r = simfl("run", f, "--out", tmp_path / "out")
    assert (r.returncode, r.stderr) == (2, line)
    assert not (tmp_path / "out").exists()


def test_a_foreign_hyperparameter_is_refused_through_validate(tmp_path):
    f = train_file(tmp_path, lambda t: t["optimizers"]["fedavgm"].update(beta_2=0.99))
    r = simfl("validate", f)
    assert (r.returncode, r.stderr) == (2, f"error: {f}: train.optimizers.fedavgm.beta_2: unknown field 'beta_2'; "
                                           "did you mean 'beta'?\n")


def test_each_run_gets_its_typed_hyperparameters_and_the_summary_what_was_written():
    pytest.importorskip("torch")
    from simfl.fl.strategies import FedAdamW, FedAvgM, strategy
    from simfl.fl.train import runs_of

    spec = load_scenario(TRAIN).train
    runs = {r.name: r for r in runs_of(spec)}
    assert list(runs) == ["fedavg", "fedavgm", "fedadam", "fedadamw", "fwdgrad-fedadamw"]
    assert (runs["fwdgrad-fedadamw"].optimizer, runs["fwdgrad-fedadamw"].hyper) == (
        "fedadamw", {"eta": 0.02, "weight_decay": 0.001})
    m = strategy(runs["fedavgm"].server)
    assert (type(m), m.eta, m.beta) == (FedAvgM, 0.1, 0.9)
    w = strategy(runs["fwdgrad-fedadamw"].server)
    assert (type(w), w.eta, w.beta_1, w.beta_2, w.epsilon, w.weight_decay) == (FedAdamW, 0.02, 0.9, 0.999, 1e-6,
                                                                               0.001)
    # a run named on the command line that the scenario lacks: that optimizer at its defaults
    only = runs_of(spec.model_copy(update={"optimizers": {}}), ["fedadam"])
    assert [(r.name, r.server, r.hyper) for r in only] == [("fedadam", FedAdamParams(), {})]
