"""Messages a new user misread (issue 19): a misspelt key, fewer than K uploads because clients were offline,
and a data file beside the scenario found by its bare name."""

from pathlib import Path

import pytest
import yaml

from simfl.config.load import REPO_ROOT, load_scenario
from simfl.errors import ScenarioError
from tests.test_cli import scenario_file, simfl

# -- a misspelt key is named, with the closest field of where it was written ---------------------------------


def _two_groups(s):
    s["fleet"].append({"count": 20, "device": "jetson-orin-nano-8gb", "network": "lte"})


MISSPELT = {
    "top level": (lambda s: s.update(sed=3), "sed: unknown field 'sed'; did you mean 'seed'?"),
    "federation, hiding the required field": (
        lambda s: s["federation"].update(clients_per_rnd=s["federation"].pop("clients_per_round")),
        "federation.clients_per_rnd: unknown field 'clients_per_rnd'; did you mean 'clients_per_round'?"),
    "fleet[1]": (lambda s: (_two_groups(s), s["fleet"][1].update(devise=s["fleet"][1].pop("device"))),
                 "fleet[1].devise: unknown field 'devise'; did you mean 'device'?"),
    "fleet[0].availability, a member of a union": (
        lambda s: s.update(start_time="2022-01-01T00:00:00+00:00", fleet=[{**s["fleet"][0], "availability": {
            "kind": "diurnal", "start_hr": 22, "end_hour": 6}}]),
        "fleet[0].availability.start_hr: unknown field 'start_hr'; did you mean 'start_hour'?"),
    "fleet[0].speed, an optional model": (
        lambda s: s["fleet"][0].update(speed={"distribution": "lognormal", "sigmaa": 0.1}),
        "fleet[0].speed.sigmaa: unknown field 'sigmaa'; did you mean 'sigma'?"),
    "a cell of a mapping": (lambda s: s.update(cells={"a": {"downlink_bps": 1e8, "uplink_bp": 1e7}}),
                            "cells.a.uplink_bp: unknown field 'uplink_bp'; did you mean 'uplink_bps'?"),
    "nothing close": (lambda s: s["accounting"].update(tax=0.2),
                      "accounting.tax: unknown field 'tax'; the fields here are carbon_g_per_kwh, "
                      "carbon_intensity_file, price_per_kwh, currency, exchange_rates, hardware_charge, jobs"),
}


@pytest.mark.parametrize("case", MISSPELT)
def test_a_misspelt_scenario_key_is_named_with_the_closest_field(tmp_path, case):
    mutate, expected = MISSPELT[case]
    f = scenario_file(tmp_path, mutate)
    with pytest.raises(ScenarioError) as e:
        load_scenario(f)
    assert str(e.value) == f"{f}: {expected}"


def test_a_misspelt_set_path_gets_the_same_suggestion(tmp_path):
    f = scenario_file(tmp_path)
    r = simfl("run", f, "--out", tmp_path / "out", "--set", "federation.clients_per_rnd=3")
    assert r.returncode == 2 and not (tmp_path / "out").exists()
    assert r.stderr == (f"error: {f}: federation.clients_per_rnd: unknown field 'clients_per_rnd'; did you mean "
                        "'clients_per_round'?\n")


def test_a_misspelt_key_in_a_profile_and_a_network_model_file(tmp_path):
    profile = yaml.safe_load((REPO_ROOT / "hardware_profiles/jetson-agx-orin-64gb.yaml").read_text())
    profile["training"][0]["step_time"] = profile["training"][0].pop("step_time_s")
    (tmp_path / "my-orin.yaml").write_text(yaml.safe_dump(profile))
    net = yaml.safe_load((REPO_ROOT / "network_models/lte.yaml").read_text())
    net["uplink_bsp"] = net.pop("uplink_bps")
    (tmp_path / "my-lte.yaml").write_text(yaml.safe_dump(net))
    f = scenario_file(tmp_path, lambda s: s["fleet"][0].update(device="my-orin.yaml"))
    with pytest.raises(ScenarioError) as e:
        load_scenario(f)
    assert str(e.value) == (f"{tmp_path / 'my-orin.yaml'}: training[0].step_time: unknown field 'step_time'; "
                            "did you mean 'step_time_s'?")
    g = scenario_file(tmp_path, lambda s: s["fleet"][0].update(network="my-lte.yaml"))
    with pytest.raises(ScenarioError) as e:
        load_scenario(g)
    assert str(e.value) == f"{tmp_path / 'my-lte.yaml'}: uplink_bsp: unknown field 'uplink_bsp'; did you mean 'uplink_bps'?"


@pytest.mark.parametrize("extra, expected", [
    ({"minimise": "cost_total"}, "minimise: unknown field 'minimise'; did you mean 'minimize'?"),
    ({"minimize": "cost_total", "subject_to": {"sim_time_s": {"maxx": 60}}},
     "subject_to.sim_time_s.maxx: unknown field 'maxx'; did you mean 'max'?"),
    ({"minimize": "cost_total", "search": {"methd": "auto"}},
     "search.methd: unknown field 'methd'; did you mean 'method'?"),
])
def test_a_misspelt_plan_field_is_one_line_naming_it(tmp_path, extra, expected):
    scenario_file(tmp_path, rounds=2)
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"scenario": "s.yaml", "choose": {"federation.clients_per_round": [5, 10]},
                                    **extra}))
    r = simfl("plan", plan, "--out", tmp_path / "out")
    assert r.returncode == 2 and not (tmp_path / "out").exists()
    assert r.stderr == f"error: {plan}: {expected}\n"


def test_other_errors_in_a_union_member_name_the_field_as_written(tmp_path):
    f = scenario_file(tmp_path, lambda s: s.update(start_time="2022-01-01T00:00:00+00:00", fleet=[
        {**s["fleet"][0], "availability": {"kind": "diurnal", "start_hour": 25, "end_hour": 6}}]))
    with pytest.raises(ScenarioError) as e:
        load_scenario(f)
    assert str(e.value) == f"{f}: fleet[0].availability.start_hour: Input should be less than 24 (got 25)"


# -- a bare name finds the file beside the scenario ----------------------------------------------------------

def _lte(uplink_bps: float) -> dict:
    net = yaml.safe_load((REPO_ROOT / "network_models/lte.yaml").read_text())
    return {**net, "name": "mine", "uplink_bps": uplink_bps}


def test_bare_names_find_network_and_device_files_beside_the_scenario(tmp_path):
    (tmp_path / "lte-up5.yaml").write_text(yaml.safe_dump(_lte(5e6)))
    orin = yaml.safe_load((REPO_ROOT / "hardware_profiles/jetson-agx-orin-64gb.yaml").read_text())
    (tmp_path / "my-orin.yml").write_text(yaml.safe_dump({**orin, "idle_power_w": 7.5}))
    f = scenario_file(tmp_path, lambda s: s["fleet"][0].update(network="lte-up5", device="my-orin"))
    sc = load_scenario(f)
    assert sc.networks["lte-up5"].uplink_bps == 5e6
    assert sc.hardware["my-orin"].idle_power_w == 7.5
    r = simfl("validate", f)
    assert r.returncode == 0, r.stderr


def test_the_users_file_beside_the_scenario_wins_over_shipped_and_folder_ones(tmp_path, monkeypatch):
    monkeypatch.delenv("SIMFL_DATA_PATH", raising=False)
    f = scenario_file(tmp_path)  # network: lte, a shipped name
    assert load_scenario(f).networks["lte"].uplink_bps != 3e6
    (tmp_path / "network_models").mkdir()
    (tmp_path / "network_models" / "lte.yaml").write_text(yaml.safe_dump(_lte(4e6)))
    assert load_scenario(f).networks["lte"].uplink_bps == 4e6  # the folder beside it, over the shipped one
    (tmp_path / "lte.yaml").write_text(yaml.safe_dump(_lte(3e6)))
    assert load_scenario(f).networks["lte"].uplink_bps == 3e6  # the file beside it, over both
    roots = tmp_path / "roots"
    (roots / "network_models").mkdir(parents=True)
    (roots / "network_models" / "lte.yaml").write_text(yaml.safe_dump(_lte(2e6)))
    monkeypatch.setenv("SIMFL_DATA_PATH", str(roots))
    assert load_scenario(f).networks["lte"].uplink_bps == 2e6  # SIMFL_DATA_PATH first, as the README says


def test_a_scenario_is_never_its_own_data_file(tmp_path):
    # a scenario saved as lte.yaml that names `network: lte` must find the shipped lte, not load itself
    f = scenario_file(tmp_path)
    own = tmp_path / "lte.yaml"
    f.rename(own)
    shipped = yaml.safe_load((REPO_ROOT / "network_models/lte.yaml").read_text())
    assert load_scenario(own).networks["lte"].uplink_bps == shipped["uplink_bps"]


def test_a_bare_name_not_found_still_lists_the_data_folders(tmp_path):
    f = scenario_file(tmp_path, lambda s: s["fleet"][0].update(network="lte-up5"))
    with pytest.raises(ScenarioError, match=r"fleet\[0\].network: unknown network model 'lte-up5'; available: "
                                            r"3g-errant, ethernet-10gbit"):
        load_scenario(f)


# -- fewer than K uploads: the cause is named, availability included -----------------------------------------

def _trace(tmp_path, rows) -> str:
    (tmp_path / "online.csv").write_text("client,start_s,end_s\n" + "".join(f"{c},{a},{b}\n" for c, a, b in rows))
    return "online.csv"


def _warnings(f):
    from simfl import simulate

    return [w for w in simulate(load_scenario(f)).summary["warnings"] if not w.startswith("this run rests on")]


def test_clients_offline_are_named_as_the_cause_not_the_deadline_or_dropout(tmp_path):
    # 3 of the 100 clients are ever online: each of the 5 rounds selects those 3 and aggregates 3 < K = 10
    trace = _trace(tmp_path, [(c, 0, 1e9) for c in range(3)])
    f = scenario_file(tmp_path, lambda s: s["fleet"][0].update(availability={"kind": "trace", "file": trace}))
    assert _warnings(f) == ["5 of 5 rounds aggregated fewer than K = 10 uploads; fewer than K = 10 clients were "
                            "online (in 5 of these 5 rounds), as few as 3 of the 100 in round 0; see "
                            "fleet[0].availability"]


def test_one_round_short_of_clients_online_names_it(tmp_path):
    # one round, with 4 of the 100 clients online: it selects those 4 and aggregates 4 < K = 10
    trace = _trace(tmp_path, [(c, 0, 1e9) for c in range(4)])
    f = scenario_file(tmp_path, lambda s: s["fleet"][0].update(availability={"kind": "trace", "file": trace}),
                      rounds=1)
    assert _warnings(f) == ["1 of 1 rounds aggregated fewer than K = 10 uploads; only 4 of the 100 clients were "
                            "online in round 0; see fleet[0].availability"]


def test_clients_going_offline_mid_round_are_availability_too(tmp_path):
    # 12 clients online over [0, 0.5) s only: round 0 selects 10 of them, and all go offline before their
    # upload (the download alone takes longer); then no client is ever online again and the run stops
    trace = _trace(tmp_path, [(c, 0, 0.5) for c in range(12)])
    f = scenario_file(tmp_path, lambda s: s["fleet"][0].update(availability={"kind": "trace", "file": trace}))
    w = _warnings(f)
    assert w[-1] == ("NO ROUND AGGREGATED ANY UPDATE: all 1 rounds ended with 0 uploads, so this run trains "
                     "nothing; 10 selected client(s) went offline before their upload; see fleet[0].availability")


@pytest.mark.parametrize("federation, cause", [
    ({"dropout_prob": 1.0}, "50 selected client(s) dropped out (in 5 of these 5 rounds); see dropout_prob"),
    ({"deadline_s": 1.0}, "50 selected client(s) were still working at the deadline (in 5 of these 5 rounds); "
                          "see deadline_s"),
])
def test_dropout_and_the_deadline_are_blamed_for_what_they_did(tmp_path, federation, cause):
    # 5 rounds of 10 selected: each one's every client drops out, or is still working at 1 s
    f = scenario_file(tmp_path, lambda s: s["federation"].update(federation))
    assert _warnings(f) == ["NO ROUND AGGREGATED ANY UPDATE: all 5 rounds ended with 0 uploads, so this run "
                            f"trains nothing; {cause}"]
    r = simfl("run", f, "--out", tmp_path / "out", "--no-plots")
    assert r.returncode == 0 and f"; {cause}\n" in r.stderr


def test_dropout_short_of_k_counts_what_the_rounds_record(tmp_path):
    from simfl import simulate

    f = scenario_file(tmp_path, lambda s: s["federation"].update(dropout_prob=0.5), rounds=20)
    res = simulate(load_scenario(f))
    short = res.rounds[res.rounds["clients_completed"] < 10]
    dropped, hit = int(short["clients_dropped"].sum()), int((short["clients_dropped"] > 0).sum())
    assert [w for w in res.summary["warnings"] if "rounds" in w] == [f"{len(short)} of 20 rounds aggregated fewer than K = 10 uploads; {dropped} "
                                       f"selected client(s) dropped out (in {hit} of these {len(short)} rounds); "
                                       "see dropout_prob"]
    assert "deadline" not in res.summary["warnings"][0] and "online" not in res.summary["warnings"][0]
