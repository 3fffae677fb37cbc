"""A plan's points without per-point overhead: the base's data files looked up once, step costs worked out once per
profile and configuration, t quantiles kept, workers that hold the base; each gives the same rows and the same
one-line errors as before."""

import pickle

import pytest

import simfl.build as build_module
import simfl.config.load as load_module
from simfl.build import build
from simfl.config.load import ScenarioSource
from simfl.errors import ScenarioError
from simfl.plan.evaluate import Held, evaluate_point, hold, is_held
from simfl.plan.executors import LocalPool
from simfl.stats import t_quantile
from tests.test_cli import scenario_file


def test_t_quantile_kept_is_the_tabulated_value():
    # Student's t, 19 degrees of freedom (20 replicates), two-sided 95 %: 2.093 in every table
    assert t_quantile(0.975, 19) == pytest.approx(2.093, abs=5e-4)
    assert t_quantile(0.975, 19) == t_quantile.__wrapped__(0.975, 19)  # the kept value is the worked-out one


def counting(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)
    monkeypatch.setattr(module, name, wrapper)
    return calls


def test_a_source_looks_each_data_file_up_once(tmp_path, monkeypatch):
    source = ScenarioSource.read(scenario_file(tmp_path), lenient_patches=True)
    calls = counting(monkeypatch, load_module, "find_data_file")
    a = source.load()
    # the quickstart names 2 devices (jetson-agx-orin-64gb, a100-80gb) and 2 networks (lte, ethernet-10gbit)
    assert sorted(calls) == ["a100-80gb", "ethernet-10gbit", "jetson-agx-orin-64gb", "lte"]
    b = source.load({"fleet[0].device": "rtx-4090-24gb"})
    assert calls[4:] == ["rtx-4090-24gb"]  # the only name not looked up before
    assert source.load() == a and b.fleet[0].device == "rtx-4090-24gb"
    assert len(calls) == 5
    errors = []
    for _ in range(2):  # a name found nowhere is looked for at every point, and says so the same way each time
        with pytest.raises(ScenarioError) as e:
            source.load({"fleet[0].device": "no-such-device"})
        errors.append(str(e.value))
    assert calls[5:] == ["no-such-device", "no-such-device"]
    assert errors[0] == errors[1] and "fleet[0].device: unknown hardware profile 'no-such-device'; available: " \
        in errors[0]


def test_a_pickled_source_carries_no_lookups(tmp_path):
    source = ScenarioSource.read(scenario_file(tmp_path))
    source.load()
    assert len(source.found) == 4
    copy = pickle.loads(pickle.dumps(source))
    assert copy.found == {} and copy == source and copy.load() == source.load()


def test_an_edited_profile_is_read_again_by_a_warm_source(tmp_path):
    import yaml

    from tests.test_cli import QUICK

    profile = yaml.safe_load((QUICK.parents[1] / "hardware_profiles" / "rtx-4090-24gb.yaml").read_text())
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump({**profile, "name": "mine", "idle_power_w": 30.0}))
    source = ScenarioSource.read(scenario_file(tmp_path, lambda sc: sc["fleet"][0].update(device="mine")))
    assert source.load().hardware["mine"].idle_power_w == 30.0
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump({**profile, "name": "mine", "idle_power_w": 45.0}))
    assert source.load().hardware["mine"].idle_power_w == 45.0


def test_step_costs_are_worked_out_once_per_profile_object(tmp_path, monkeypatch):
    monkeypatch.setattr(build_module, "_COSTS", {})
    calls = counting(monkeypatch, build_module, "step_cost")
    source = ScenarioSource.read(scenario_file(tmp_path), lenient_patches=True)
    scenario = source.load()
    first = build(scenario).inputs.groups[0].step_time_s
    for seed in (8, 9):  # replicates: the same profile object, another seed
        assert build(scenario.model_copy(update={"seed": seed})).inputs.groups[0].step_time_s == first
    assert len(calls) == 1
    patched = source.load({"devices.jetson-agx-orin-64gb.idle_power_w": 12.0})  # a profile object of its own
    assert build(patched).inputs.groups[0].step_time_s == first and len(calls) == 2
    oom = source.load({"training.batch_size": 100000})
    for _ in range(2):  # a configuration that fails is never kept: its error comes back
        with pytest.raises(ScenarioError, match="out of memory"):
            build(oom)
    assert len(calls) == 4


def test_a_held_base_gives_the_rows_of_the_base_itself(tmp_path):
    source = ScenarioSource.read(scenario_file(tmp_path, rounds=3), lenient_patches=True)
    hold("test-base", source)
    for over in ({"fleet[0].count": 40}, {"federation.clients_per_round": 0}):
        assert evaluate_point(Held("test-base"), over, 2) == evaluate_point(source, over, 2)
    assert evaluate_point(Held("test-base"), {"federation.clients_per_round": 0})["error"] == \
        "federation.clients_per_round: Input should be greater than 0 (got 0)"
    for i in range(8):  # a long-lived worker holds at most 8 bases, the oldest going first
        hold(f"other-{i}", source)
    assert not is_held("test-base") and is_held("other-7")


def test_a_kept_pool_starts_its_workers_once_for_every_batch(tmp_path, monkeypatch):
    source = ScenarioSource.read(scenario_file(tmp_path, rounds=3), lenient_patches=True)
    starts = counting(monkeypatch, LocalPool, "_start")
    points = [{"fleet[0].count": n} for n in (20, 30, 40, 50)]
    pool = LocalPool(2, 2)
    got = {}
    for batch in ([0, 1], [2, 3]):
        got.update(pool.run([(i, source, points[i], 1) for i in batch]))
    pool.close()
    assert len(starts) == 1
    alone = {i: evaluate_point(source, p, 1) for i, p in enumerate(points)}
    assert got == alone
