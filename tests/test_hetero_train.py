"""simfl train with fleet groups of different LoRA ranks: the server side on a hand-built two-by-two adapter,
then short real sessions under both rules."""

import json
import math
import subprocess
import sys

import pytest
import yaml

torch = pytest.importorskip("torch")

import simfl  # noqa: E402
from simfl.config.load import REPO_ROOT  # noqa: E402
from simfl.fl.ranked import RankedTraining  # noqa: E402
from simfl.config.server_optimizers import FedAdamParams  # noqa: E402
from simfl.fl.strategies import FedAvg, strategy  # noqa: E402

A, B, W0 = "q.lora_A.default.weight", "q.lora_B.default.weight", "q.base_layer.weight"
T = lambda rows: torch.tensor(rows, dtype=torch.float32)  # noqa: E731
C1 = {A: T([[1, 2]]), B: T([[1], [2]])}  # rank 1, 1 sample
C2 = {A: T([[3, 4], [5, 6]]), B: T([[1, 2], [3, 4]])}  # rank 2, 3 samples


def fake_build(built):
    """A module named as peft names one adapted projection in = out = 2 (base weight, lora_A, lora_B)."""

    def build(r, alpha):
        built.append((r, alpha))
        q = torch.nn.Module()
        q.base_layer = torch.nn.Linear(2, 2, bias=False).requires_grad_(False)
        with torch.no_grad():
            q.base_layer.weight.copy_(T([[1, 0], [0, 1]]))
        q.lora_A, q.lora_B = torch.nn.Module(), torch.nn.Module()
        q.lora_A.default, q.lora_B.default = torch.nn.Linear(2, r, bias=False), torch.nn.Linear(r, 2, bias=False)
        root = torch.nn.Module()
        root.q = q
        return root
    return build


def ranked(rule):
    built = []
    # client 0 has rank 1, client 1 rank 2 (groups of one each); lora_alpha 8: every adapter scaled 8 / 2 = 4
    return RankedTraining(fake_build(built), 8.0, [1, 2], [1, 2], rule, seed=0), built


def test_every_rank_is_scaled_as_the_largest_one():
    het, built = ranked("zero_pad")
    assert built == [(1, 4.0), (2, 8.0)] and het.scaling == 4.0  # peft alpha / r: 4 / 1 = 8 / 2


def test_zero_pad_server_optimizer_steps_on_the_padded_per_rank_mean():
    het, _ = ranked("zero_pad")
    x = {A: torch.zeros(2, 2), B: torch.zeros(2, 2)}
    # per-rank mean (hand-worked in test_hetero_lora): A [[2.5, 3.5], [5, 6]], B [[1, 2], [2.75, 4]]
    g = het.aggregate(FedAvg(eta=1.0), x, [C1, C2], [1.0, 3.0])
    assert torch.equal(g[A], T([[2.5, 3.5], [5, 6]])) and torch.equal(g[B], T([[1, 2], [2.75, 4]]))
    half = het.aggregate(FedAvg(eta=0.5), x, [C1, C2], [1.0, 3.0])  # x - 0.5 (x - mean) = mean / 2 from 0
    assert torch.equal(half[A], T([[1.25, 1.75], [2.5, 3]]))


def test_zero_pad_stale_update_is_its_change_on_its_slots_of_the_current_global():
    het, _ = ranked("zero_pad")
    x_v = {A: T([[1, 1], [1, 1]]), B: T([[1, 1], [1, 1]])}  # the version client 0 (rank 1) trained from
    x = {A: T([[2, 3], [4, 5]]), B: T([[0, 1], [2, 3]])}  # the current one
    up = {A: T([[1.5, 0.5]]), B: T([[3], [1]])}  # its trained rank-1 adapter: change A [0.5 -0.5], B [2 0]
    got = het.upload(0, up, x_v, x, stale=True)
    assert torch.equal(got[A], T([[2.5, 2.5]])) and torch.equal(got[B], T([[2], [2]]))
    assert het.upload(0, up, x_v, x, stale=False) is up


def test_stack_merges_eta_s_times_the_stacked_product_into_the_base():
    het, _ = ranked("stack")
    x = het.initial()
    assert list(x) == [W0] and torch.equal(x[W0], T([[1, 0], [0, 1]]))
    # s = 4; sum_i p_i B_i A_i = [[10, 12.5], [22.25, 28]] (test_hetero_lora): I + 4 x that, or + 2 x at eta 0.5
    assert torch.equal(het.aggregate(FedAvg(1.0), x, [C1, C2], [1.0, 3.0])[W0], T([[41, 50], [89, 113]]))
    assert torch.equal(het.aggregate(FedAvg(0.5), x, [C1, C2], [1.0, 3.0])[W0], T([[21, 25], [44.5, 57]]))
    with pytest.raises(ValueError, match="server optimizer fedadam, which has no stacked form: use fedavg"):
        het.aggregate(strategy(FedAdamParams()), x, [C1, C2], [1.0, 3.0])
    # the global as a model: the merged base, a zero adapter (s B A = 0)
    m = het.eval_model({W0: T([[2, 0], [0, 2]])})
    p = dict(m.named_parameters())
    assert torch.equal(p[W0], T([[2, 0], [0, 2]])) and not p[B].any()


def session_yaml(tmp_path, name, model=None, groups=(None, None), federation=None, optimizers=None):
    sc = yaml.safe_load((REPO_ROOT / "scenarios" / "train" / "tiny-dialogsum.yaml").read_text())
    sc["model"].update(model or {})
    sc["fleet"] = [{"count": 25, "device": "jetson-agx-orin-64gb", "network": "lte",
                    **({} if r is None else {"lora_r": r})} for r in groups]
    sc["federation"] = {**(federation or {**sc["federation"], "dropout_prob": 0.2}), "rounds": 4}
    sc["train"].update({"train_examples": 300, "val_examples": 40, "pretrain_steps": 30, "eval_every": 2,
                        "optimizers": optimizers or {"fedavg": {"eta": 1.0}}})
    del sc["train"]["forward_gradient"]
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(sc, sort_keys=False))
    return p


def test_equal_ranks_train_exactly_as_one_rank_under_both_rules(tmp_path):
    from simfl.fl.session import train_scenario

    def table(path):
        return train_scenario(simfl.load_scenario(path), max_rounds=3).table

    today = table(session_yaml(tmp_path, "today", model={"lora_r": 8}))
    for rule in ("zero_pad", "stack"):
        same = table(session_yaml(tmp_path, rule, model={"lora_r": 8, "rank_aggregation": rule}, groups=(8, 8)))
        assert same.equals(today), rule
    # groups that all set rank 8 under a model rank of 16 train rank 8 (priced, for now, at model.lora_r)
    eights = table(session_yaml(tmp_path, "eights", model={"lora_r": 16, "rank_aggregation": "stack"},
                                groups=(8, 8)))
    assert eights[["train_loss", "val_loss"]].equals(today[["train_loss", "val_loss"]])


ASYNC = {"mode": "async", "concurrency": 8, "buffer_size": 4, "max_staleness": 3}


@pytest.mark.parametrize("rule,mode", [("zero_pad", "sync"), ("stack", "sync"), ("zero_pad", "async"),
                                       ("stack", "async")])
def test_ranks_4_and_8_train_under_each_rule(tmp_path, rule, mode):
    optimizers = {"fedavg": {"eta": 1.0}, **({"fedadamw": {"eta": 0.01}} if (rule, mode) == ("zero_pad", "sync")
                                              else {})}
    fed = ASYNC if mode == "async" else None
    path = session_yaml(tmp_path, "het", model={"rank_aggregation": rule}, groups=(4, 8), federation=fed,
                        optimizers=optimizers)
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "simfl", "train", str(path), "--out", str(out), "--no-stop"],
                       capture_output=True, text=True, cwd=REPO_ROOT)
    assert r.returncode == 0, r.stderr
    import pandas as pd

    table = pd.read_csv(out / "training.csv")
    summary = json.loads((out / "summary.json").read_text())
    for name in optimizers:
        run = summary["runs"][name]
        assert (run["rank_aggregation"], run["lora_ranks"]) == (rule, [4, 8])
        # t5-tiny, q and v: (64 + 64) x 2 projections x (2 encoder + 2 x 2 decoder blocks) = 1,536 a rank
        assert run["trainable_params_per_group"] == [4 * 1536, 8 * 1536]
        val = table[table["run"] == name]["val_loss"].dropna().tolist()
        assert len(val) == 3 and all(math.isfinite(v) for v in val) and val[-1] < val[0], val
    if mode == "async":  # stale updates were aggregated: the path that moves a change onto the current version
        sim = simfl.simulate(simfl.load_scenario(path)).clients
        assert (sim[(sim["version_aggregated"] >= 1) & (sim["version_aggregated"] <= 4)]["staleness"] > 0).any()


def test_stack_refuses_a_server_optimizer_it_has_no_form_for(tmp_path):
    path = session_yaml(tmp_path, "het", model={"rank_aggregation": "stack"}, groups=(4, 8),
                        optimizers={"fedavg": {}, "fedadamw": {"eta": 0.01}})
    r = subprocess.run([sys.executable, "-m", "simfl", "train", str(path), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, cwd=REPO_ROOT)
    assert (r.returncode, r.stderr) == (2, f"error: {path}: train: model.rank_aggregation stack adds FLoRA's "
                                           "weighted sum of the clients' B_i A_i to the base weights (FedAvg); "
                                           "run fedadamw uses server optimizer fedadamw, which has no stacked "
                                           "form: use fedavg or rank_aggregation zero_pad\n")
    assert not (tmp_path / "o").exists()


def test_a_convergence_table_of_mixed_rank_runs_has_the_rule_and_ranks_as_columns(tmp_path):
    from simfl.convergence import read_table
    from simfl.fl.grid import write_table

    rows = [{"clients_per_round": 5, "local_steps": 2, "dirichlet_alpha": 1.0, "server_optimizer": "fedavg",
             "rounds_to_target": 12, "model.lora_r": 16},
            {"clients_per_round": 5, "local_steps": 2, "dirichlet_alpha": 1.0, "server_optimizer": "fedavg",
             "rounds_to_target": None, "model.lora_r": 8, "rank_aggregation": "stack", "lora_ranks": "4 8"}]
    write_table(rows, tmp_path / "c.csv", tmp_path / "s.yaml", 3.5, 20, 2)
    lines = (tmp_path / "c.csv").read_text().splitlines()
    assert lines[1:] == ["clients_per_round,local_steps,dirichlet_alpha,server_optimizer,rounds_to_target,"
                         "model.lora_r,rank_aggregation,lora_ranks",
                         "5,2,1.0,fedavg,12,16,,", "5,2,1.0,fedavg,,8,stack,4 8"]
    assert len(read_table(tmp_path / "c.csv", "f")[0]) == 2
