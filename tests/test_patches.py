"""Tied and patched choices: fleet[*].FIELD, devices.NAME.FIELD and networks.NAME.FIELD from --set, the scenario's
own patch:, a sweep axis or a plan choice; and a tie: setting several paths from one axis."""

from __future__ import annotations

import pytest

from simfl.build import build
from simfl.config.load import ScenarioSource, dump_scenario, load_scenario
from simfl.errors import ScenarioError
from simfl.plan.spec import PlanSpec, SweepSpec, load_spec

BASE = """
name: patches
seed: 3
model: {name: flan-t5-small}
training: {batch_size: 1, local_steps: 2}
federation: {clients_per_round: 2, rounds: 2}
fleet:
  - {count: 2, device: jetson-agx-orin-64gb, network: lte}
  - {count: 2, device: jetson-agx-orin-64gb, network: ethernet-1gbit}
server: {device: a100-80gb, network: ethernet-10gbit}
"""


@pytest.fixture
def base(tmp_path):
    path = tmp_path / "base.yaml"
    path.write_text(BASE)
    return path


def test_set_patches_a_network_model_and_the_resolved_copy_keeps_it(base, tmp_path):
    sc = load_scenario(base, {"networks.lte.uplink_bps": 5e6})
    lte = sc.networks["lte"]
    assert lte.uplink_bps == 5e6 and "patched: uplink_bps = 5000000.0 (--set)" in lte.source
    # the group on LTE uploads at the patched rate: 688,128 x 32 bits at 5 Mbit/s (the server's 10 Gbit/s is faster)
    (g_lte, g_eth) = build(sc).inputs.groups
    assert g_lte.link.uplink_bps == 5e6 and g_eth.link.uplink_bps != 5e6
    (tmp_path / "r.yaml").write_text(dump_scenario(sc))
    assert load_scenario(tmp_path / "r.yaml").networks["lte"].uplink_bps == 5e6
    # the unpatched file is what another load gets (the per-process cache is not changed by a patch)
    assert load_scenario(base).networks["lte"].uplink_bps != 5e6


def test_the_scenario_patches_its_own_devices(base):
    base.write_text(BASE + "patch:\n  devices.jetson-agx-orin-64gb.power_limit_w: 30.0\n")
    sc = load_scenario(base)
    assert sc.hardware["jetson-agx-orin-64gb"].power_limit_w == 30.0
    assert "(the scenario's patch)" in sc.hardware["jetson-agx-orin-64gb"].source
    base.write_text(BASE + "patch:\n  fleet[0].count: 3\n")
    with pytest.raises(ScenarioError, match="patch: expected a mapping of devices.NAME.FIELD or networks.NAME.FIELD"):
        load_scenario(base)


def test_every_group_at_once(base):
    sc = load_scenario(base, {"fleet[*].device": "jetson-orin-nx-16gb", "fleet[*].network": "lte"})
    assert [(g.device, g.network) for g in sc.fleet] == [("jetson-orin-nx-16gb", "lte")] * 2


@pytest.mark.parametrize("path, value, message", [
    ("networks.wifi.uplink_bps", 1e6, "the scenario uses no network 'wifi'; it uses: ethernet-10gbit, ethernet-1gbit, lte"),
    ("networks.lte.uplnk_bps", 1e6, "unknown field 'uplnk_bps'; did you mean 'uplink_bps'"),
    ("networks.lte.uplink_bps", -1, "networks.lte.uplink_bps: Input should be greater than 0"),
    ("devices.a100-80gb.memory_bytes", "lots", "hardware.a100-80gb.memory_bytes: Input should be a valid number"),
    ("server[*].device", "x", "server is not a list"),
])
def test_a_bad_patch_is_one_line_naming_it(base, path, value, message):
    with pytest.raises(ScenarioError, match=message):
        load_scenario(base, {path: value})


SWEEP = """
scenario: base.yaml
tie:
  device:
    - fleet[0].device
    - fleet[1].device
%s:
  device: [jetson-agx-orin-64gb, jetson-orin-nx-16gb]
  devices.jetson-orin-nx-16gb.power_limit_w: [15.0, 25.0]
%s
"""


def test_a_tie_sets_every_path_from_one_axis(base, tmp_path):
    (tmp_path / "sweep.yaml").write_text(SWEEP % ("axes", ""))
    spec, source = load_spec(tmp_path / "sweep.yaml", SweepSpec)
    assert spec.tie == {"device": ["fleet[0].device", "fleet[1].device"]}
    sc = source.load({"device": "jetson-orin-nx-16gb", "devices.jetson-orin-nx-16gb.power_limit_w": 15.0})
    assert [g.device for g in sc.fleet] == ["jetson-orin-nx-16gb"] * 2
    assert sc.hardware["jetson-orin-nx-16gb"].power_limit_w == 15.0
    # a point without the NX: its patch does nothing there (another axis chose the devices)
    sc = source.load({"device": "jetson-agx-orin-64gb", "devices.jetson-orin-nx-16gb.power_limit_w": 15.0})
    assert "jetson-orin-nx-16gb" not in sc.hardware
    (tmp_path / "plan.yaml").write_text(SWEEP % ("choose", "minimize: sim_time_s"))
    spec, source = load_spec(tmp_path / "plan.yaml", PlanSpec)
    assert source.untie({"device": "x", "federation.rounds": 3}) == {
        "fleet[0].device": "x", "fleet[1].device": "x", "federation.rounds": 3}


@pytest.mark.parametrize("tie, message", [
    ('  gpu: [server.device, "fleet[0].device"]', "tie.gpu: no axis of axes is named 'gpu'"),
    ("  device: [server.device]", "tie.device: tie at least two paths"),
    ("  device: [federation.rounds, federation.rounds2]", "is not a field of the scenario"),
    ("  seed: [federation.rounds, fleet.0]", "tie.seed: seed is a field of the scenario; name the tie something"),
])
def test_a_bad_tie_is_one_line(base, tmp_path, tie, message):
    axis = "seed: [1, 2]" if tie.strip().startswith("seed") else "device: [jetson-agx-orin-64gb]"
    text = f"scenario: base.yaml\ntie:\n{tie}\naxes:\n  {axis}\n"
    (tmp_path / "sweep.yaml").write_text(text)
    with pytest.raises(ScenarioError, match=message):
        load_spec(tmp_path / "sweep.yaml", SweepSpec)


def test_a_patch_axis_names_a_data_file_that_exists(base, tmp_path):
    (tmp_path / "sweep.yaml").write_text("scenario: base.yaml\naxes:\n  devices.gpu-9000.power_limit_w: [1.0]\n")
    with pytest.raises(ScenarioError, match="no hardware profile is named 'gpu-9000'"):
        load_spec(tmp_path / "sweep.yaml", SweepSpec)
    (tmp_path / "sweep.yaml").write_text("scenario: base.yaml\naxes:\n  networks.lte.uplnk_bps: [1.0]\n")
    with pytest.raises(ScenarioError, match="has no field 'uplnk_bps'"):
        load_spec(tmp_path / "sweep.yaml", SweepSpec)
    assert ScenarioSource.read(base).untie({"a": 1}) == {"a": 1}


def test_the_scenarios_own_patch_leaves_a_sweep_point_without_the_device_alone(base, tmp_path):
    base.write_text(BASE + "patch:\n  devices.jetson-agx-orin-64gb.idle_power_w: 9.0\n")
    (tmp_path / "sweep.yaml").write_text("scenario: base.yaml\naxes:\n  fleet[*].device: [jetson-agx-orin-64gb, "
                                         "jetson-orin-nx-16gb]\n")
    _, source = load_spec(tmp_path / "sweep.yaml", SweepSpec)
    assert source.load({"fleet[*].device": "jetson-agx-orin-64gb"}).hardware["jetson-agx-orin-64gb"].idle_power_w == 9.0
    assert "jetson-agx-orin-64gb" not in source.load({"fleet[*].device": "jetson-orin-nx-16gb"}).hardware
    with pytest.raises(ScenarioError, match="uses no device"):  # run on its own, the scenario's patch is strict
        load_scenario(base, {"fleet[*].device": "jetson-orin-nx-16gb"})
