"""Overrides by path: --set on the command line, overrides= in Python, validated like the file."""

import pytest
import yaml

from simfl import load_scenario
from simfl.config.overrides import apply_overrides, parse_assignment, parse_path
from simfl.errors import ScenarioError
from tests.test_cli import scenario_file, simfl


def test_paths_parse_into_fields_and_indices():
    assert parse_path("fleet[0].count") == ["fleet", 0, "count"]
    assert parse_path("federation.clients_per_round") == ["federation", "clients_per_round"]
    assert parse_path("a[1][2].b") == ["a", 1, 2, "b"]
    for bad in ("fleet.0", "fleet[x]", "[0].count", "fleet..count", "", "fleet[0]count"):
        with pytest.raises(ScenarioError, match="not a field path"):
            parse_path(bad)


def test_values_are_read_as_yaml():
    assert parse_assignment("fleet[0].count=400") == ("fleet[0].count", 400)
    assert parse_assignment("model.lora_targets=[q, v, o]") == ("model.lora_targets", ["q", "v", "o"])
    assert parse_assignment("fleet[0].device=jetson-orin-nx-16gb") == ("fleet[0].device", "jetson-orin-nx-16gb")
    assert parse_assignment("federation.deadline_s=1.5e3") == ("federation.deadline_s", 1500.0)


def test_python_overrides_equal_editing_the_file(tmp_path):
    path = scenario_file(tmp_path)
    over = load_scenario(path, overrides={"federation.clients_per_round": 3, "fleet[0].count": 40,
                                          "fleet[0].device": "a100-80gb"})
    raw = yaml.safe_load(path.read_text())
    raw["federation"]["clients_per_round"] = 3
    raw["fleet"][0].update(count=40, device="a100-80gb")
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(raw))
    assert over == load_scenario(edited)


def test_bad_overrides_name_the_path():
    raw = {"fleet": [{"count": 1}], "federation": {"rounds": 2}}
    with pytest.raises(ScenarioError, match=r"fleet has 1 item\(s\); there is no \[2\]"):
        apply_overrides(raw, {"fleet[2].count": 5})
    with pytest.raises(ScenarioError, match="federation.rounds is not a mapping, so it has no field 'x'"):
        apply_overrides(raw, {"federation.rounds.x": 5})
    with pytest.raises(ScenarioError, match="federation is not a list"):
        apply_overrides(raw, {"federation[0]": 5})
    apply_overrides(raw, {"federation.deadline_s": 60})  # absent keys are added: the schema judges them
    assert raw["federation"] == {"rounds": 2, "deadline_s": 60}


@pytest.mark.parametrize("args, expected", [
    (("--set", "fleet[0].count=-4"), "{f}: fleet[0].count: Input should be greater than 0 (got -4)"),
    (("--set", "federation.nonsense=4"), "{f}: federation.nonsense: unknown field 'nonsense'; the fields here are mode, "
     "clients_per_round"),
    (("--set", "fleet[5].count=4"), "{f}: fleet[5].count: fleet has 1 item(s); there is no [5]"),
    (("--set", "nothing"), "--set: expected PATH=VALUE, got 'nothing'"),
    (("--set", "fleet.0=1"), "--set: not a field path: 'fleet.0'"),
])
def test_bad_set_is_one_line_exit_2_and_nothing_written(tmp_path, args, expected):
    f = scenario_file(tmp_path)
    r = simfl("run", f, "--out", tmp_path / "out", *args)
    assert r.returncode == 2 and r.stderr.startswith("error: " + expected.format(f=f))
    assert r.stderr.count("\n") == 1 and not (tmp_path / "out").exists()


def test_set_changes_the_run(tmp_path):
    f = scenario_file(tmp_path)
    r = simfl("run", f, "--out", tmp_path / "out", "--no-plots", "--set", "federation.rounds=2")
    assert r.returncode == 0, r.stderr
    import json

    assert json.loads((tmp_path / "out" / "summary.json").read_text())["rounds_completed"] == 2


def test_overlapping_axes_do_not_share_values(tmp_path):
    """A `fleet` axis and a `fleet[0].network` axis: each point gets its own copy of the fleet value, so the
    network one point sets is not what every point records (apply_overrides used to assign the object itself)."""
    from simfl.plan.spec import points
    from simfl.plan.sweep import run_sweep

    sc = scenario_file(tmp_path, rounds=2)
    fleet = [{"count": 20, "device": "jetson-agx-orin-64gb", "network": "lte"},
             {"count": 10, "device": "a100-80gb", "network": "lte"}]
    axes = {"fleet": [fleet], "fleet[0].network": ["ethernet-1gbit", "lte"], "fleet[1].count": [10, 30]}
    space = points(axes)
    resolved = [[(g.count, g.device, g.network) for g in load_scenario(sc, p).fleet] for p in space]
    assert resolved == [
        [(20, "jetson-agx-orin-64gb", "ethernet-1gbit"), (10, "a100-80gb", "lte")],
        [(20, "jetson-agx-orin-64gb", "ethernet-1gbit"), (30, "a100-80gb", "lte")],
        [(20, "jetson-agx-orin-64gb", "lte"), (10, "a100-80gb", "lte")],
        [(20, "jetson-agx-orin-64gb", "lte"), (30, "a100-80gb", "lte")],
    ]
    # the axis value itself is as written, for every point, after all of them were applied
    assert fleet[0]["network"] == "lte" and fleet[1]["count"] == 10
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({"scenario": sc.name, "axes": axes}, sort_keys=False))
    t = run_sweep(spec, tmp_path / "out").table
    written = '[{"count": 20, "device": "jetson-agx-orin-64gb", "network": "lte"}, ' \
              '{"count": 10, "device": "a100-80gb", "network": "lte"}]'
    assert t["fleet"].tolist() == [written] * 4
    assert t["fleet[0].network"].tolist() == ["ethernet-1gbit", "ethernet-1gbit", "lte", "lte"]
    assert t["status"].tolist() == ["ok"] * 4
    # the gigabit points download faster than the LTE ones: the network each point ran on is its own
    assert t["sim_time_s"][0] < t["sim_time_s"][2]


def test_one_value_set_at_two_paths_is_two_copies():
    raw = {"fleet": [{"count": 1}, {"count": 2}]}
    link = {"distribution": "fixed"}
    apply_overrides(raw, {"fleet[0].link": link, "fleet[1].link": link, "fleet[1].link.distribution": "lognormal"})
    assert raw["fleet"][0]["link"] == {"distribution": "fixed"} and link == {"distribution": "fixed"}
    assert raw["fleet"][1]["link"] == {"distribution": "lognormal"}
