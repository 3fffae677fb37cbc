"""The host rule: a profile's step times are its host's (same CPU model and core count, same GPU)."""

from pathlib import Path

import pytest
import yaml

from simfl import hostid
from simfl.config.load import REPO_ROOT, load_model
from simfl.config.profiles import HardwareProfile
from simfl.hostid import HostId, of_profile, same_host

EPYC = HostId("AMD EPYC", 2, frozenset({"avx2", "fma", "avx512f", "avx512_bf16"}))
XEON = HostId("Intel(R) Xeon(R) Platinum 8480+", 2, frozenset({"avx2", "fma", "avx512f", "amx_tile"}))


@pytest.mark.parametrize("profile, this, same, reason", [
    (HostId("AMD EPYC", 2), EPYC, True, "same CPU model and core count"),
    (HostId("AMD EPYC", 2), XEON, False, "its CPU is 'AMD EPYC', this one is 'Intel(R) Xeon(R) Platinum 8480+'"),
    (HostId("AMD EPYC", 2), HostId("AMD EPYC", 4), False, "it had 2 cores, this machine has 4"),
    (HostId("AMD EPYC", None), EPYC, False, "it records no core count (provenance cpu_cores)"),
    (None, EPYC, False, "it records no host it was measured on (no provenance cpu)"),
    (HostId("AMD EPYC", 2, frozenset({"avx2", "fma", "avx512f"})), EPYC, False,
     "this CPU has avx512_bf16 and its did not"),
    (HostId("AMD EPYC", 2, frozenset({"avx2", "fma", "avx512f", "avx512_bf16", "amx_tile"})), EPYC, False,
     "its CPU had amx_tile and this one does not"),
    (HostId("AMD EPYC", 2, EPYC.cpu_flags), EPYC, True, "same CPU model and core count"),
])
def test_same_host_needs_the_cpu_model_cores_and_recorded_flags(profile, this, same, reason):
    assert same_host(profile, this) == (same, reason)


def test_a_gpu_profile_needs_the_same_gpu_too():
    a100 = HostId("AMD EPYC 7763 64-Core Processor", 32, None, "NVIDIA A100-SXM4-80GB")
    h200 = HostId("AMD EPYC 7763 64-Core Processor", 32, None, "NVIDIA H200")
    assert same_host(a100, h200) == (True, "same CPU model and core count")  # a CPU-only comparison
    assert same_host(a100, h200, gpu=True) == (False, "its GPU is 'NVIDIA A100-SXM4-80GB', this one is 'NVIDIA H200'")
    assert same_host(a100, a100, gpu=True) == (True, "same CPU model and core count and GPU")


def test_provenance_round_trips_and_keeps_the_old_cpu_key():
    host = HostId("AMD EPYC", 2, frozenset({"avx512f", "avx2"}), "NVIDIA H200")
    prov = host.provenance()
    assert prov == {"cpu": "AMD EPYC", "cpu_cores": 2, "cpu_flags": "avx2 avx512f", "gpu": "NVIDIA H200"}
    assert of_profile(prov) == host
    assert of_profile({"cpu_model": "AMD EPYC", "cpu_cores": 2}) == HostId("AMD EPYC", 2)
    assert of_profile({"host": "vm"}) is None and of_profile(None) is None
    assert host.describe(gpu=True) == "AMD EPYC, 2 cores, GPU NVIDIA H200"
    assert HostId("AMD EPYC", None).describe() == "AMD EPYC, cores not recorded"


def test_this_host_is_read_from_cpuinfo(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
                    "flags\t\t: fpu sse2 avx2 fma avx512f amx_tile amx_bf16 hypervisor\n\n"
                    "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n")
    real = hostid._cpuinfo
    monkeypatch.setattr(hostid, "_cpuinfo", lambda: real(str(info)))
    monkeypatch.setattr(hostid.os, "cpu_count", lambda: 8)
    h = hostid.here()
    assert h == HostId("Intel(R) Xeon(R) Platinum 8480+", 8, frozenset({"avx2", "fma", "avx512f", "amx_tile",
                                                                         "amx_bf16"}))
    assert h.provenance()["cpu_flags"] == "avx2 fma avx512f amx_tile amx_bf16"


@pytest.mark.parametrize("name", ["cpu-1core-epyc-emulate", "cpu-2core-epyc", "cpu-2core-epyc-llm"])
def test_the_shipped_cpu_profiles_record_their_host(name):
    p = load_model(HardwareProfile, REPO_ROOT / "hardware_profiles" / f"{name}.yaml")
    assert of_profile(p.provenance) == HostId("AMD EPYC", 2)  # the 2-core VM they were measured on
    assert "added by hand" in p.provenance["cpu_cores_source"]


def test_calibration_records_this_host():
    torch = pytest.importorskip("torch")
    from simfl.calibrate.runner import device_facts

    facts = device_facts(torch.device("cpu"))
    assert of_profile(facts) == hostid.here()
    assert {"host", "cpu", "cpu_cores", "cpu_flags", "memory_bytes"} <= set(facts)


# -- simfl emulate: real compute only with a profile of this host, or one calibrated here ----------------------

def _emulation_scenario(**overrides):
    from simfl import load_scenario

    return load_scenario(REPO_ROOT / "scenarios/emulate/lte-two-clients.yaml", overrides or None)


def test_real_compute_with_another_hosts_profile_is_refused_naming_both_and_the_ways_out():
    from simfl.emulate.profile import check_clients_profile
    from simfl.errors import ScenarioError

    sc = _emulation_scenario()
    xeon = HostId("Intel(R) Xeon(R) Platinum 8480+", 16)
    with pytest.raises(ScenarioError) as e:
        check_clients_profile(sc, "train", xeon)
    assert str(e.value) == (
        "fleet[0].device: 'cpu-1core-epyc-emulate' was measured on AMD EPYC, 2 cores, not on this machine "
        "(Intel(R) Xeon(R) Platinum 8480+, 16 cores): its CPU is 'AMD EPYC', this one is 'Intel(R) Xeon(R) "
        "Platinum 8480+', so real compute here would not take its step times; add --calibrate to calibrate it "
        "here first (as make fidelity does), or use --compute sleep")
    with pytest.raises(ScenarioError, match="it had 2 cores, this machine has 4, so real compute"):
        check_clients_profile(sc, "train", HostId("AMD EPYC", 4))
    assert check_clients_profile(sc, "train", HostId("AMD EPYC", 2)) == {
        "devices": ["cpu-1core-epyc-emulate"], "predicted_with": "shipped-and-matching", "host": "AMD EPYC, 2 cores"}
    assert check_clients_profile(sc, "sleep", xeon) == {"devices": ["cpu-1core-epyc-emulate"], "predicted_with": "slept"}


def test_a_profile_with_no_host_record_is_refused_for_real_compute(tmp_path):
    from simfl.emulate.profile import check_clients_profile
    from simfl.errors import ScenarioError

    profile = yaml.safe_load((REPO_ROOT / "hardware_profiles/cpu-1core-epyc-emulate.yaml").read_text())
    del profile["provenance"]
    (tmp_path / "bare.yaml").write_text(yaml.safe_dump(profile))
    sc = _emulation_scenario(**{"fleet[0].device": str(tmp_path / "bare.yaml")})
    with pytest.raises(ScenarioError, match=r"fleet\[0\].device: '.*bare.yaml' was measured on a host it does not "
                                            r"record, not on this machine \(AMD EPYC, 2 cores\): it records no host"):
        check_clients_profile(sc, "train", HostId("AMD EPYC", 2))


def test_calibrate_here_averages_the_pinned_runs_and_records_this_host(tmp_path, monkeypatch):
    # two cores, each calibration's flan-t5-small batch 1 step 0.10 and 0.14 s: the profile's is their mean, 0.12
    import simfl.emulate.profile as ep

    monkeypatch.setattr(ep.os, "sched_getaffinity", lambda pid: {0, 1})
    step = {0: 0.10, 1: 0.14}

    class FakeCalibration:
        def __init__(self, cmd, stdout, stderr, preexec_fn):
            core = int(cmd[cmd.index("--name") + 1].removeprefix("core"))
            assert cmd[cmd.index("--threads") + 1] == "1" and cmd[cmd.index("--batch-sizes") + 1] == "1"
            out = Path(cmd[cmd.index("--out") + 1])
            out.write_text(yaml.safe_dump({"training": [{"model": "flan-t5-small", "batch_size": 1, "finetuning": "lora",
                                                         "seq_len": 512, "step_time_s": step[core],
                                                         "step_time_p90_s": step[core] + 0.01}],
                                           "provenance": {"host": "here", **HostId("AMD EPYC", 2).provenance()}}))

        def wait(self):
            return 0

    monkeypatch.setattr(ep.subprocess, "Popen", FakeCalibration)
    shipped = yaml.safe_load((REPO_ROOT / "hardware_profiles/cpu-1core-epyc-emulate.yaml").read_text())
    path = ep.calibrate_here(shipped, tmp_path, model="flan-t5-small", batch_sizes=[1])
    fresh = load_model(HardwareProfile, path)
    assert path.name == "cpu-1core-epyc-emulate-here.yaml"
    assert [(p.batch_size, p.step_time_s, p.step_time_p90_s) for p in fresh.training] == [(1, 0.12, 0.13)]
    assert fresh.aggregation == load_model(HardwareProfile, REPO_ROOT / "hardware_profiles/cpu-1core-epyc-emulate.yaml").aggregation
    assert fresh.provenance["calibrated_here"] == "yes" and of_profile(fresh.provenance) == HostId("AMD EPYC", 2)


def _cannot_emulate() -> str | None:
    from simfl.emulate.netns import check_can_emulate
    from simfl.errors import ScenarioError

    try:
        check_can_emulate()
    except ScenarioError as e:
        return e.message
    return None


@pytest.mark.skipif(_cannot_emulate() is not None, reason="simfl emulate checks root and namespaces first")
def test_simfl_emulate_refuses_another_hosts_profile_in_one_line_writing_nothing(tmp_path):
    from tests.test_cli import simfl

    profile = yaml.safe_load((REPO_ROOT / "hardware_profiles/cpu-1core-epyc-emulate.yaml").read_text())
    profile["provenance"].update(cpu="Intel(R) Xeon(R) Platinum 8480+", cpu_cores=16)
    (tmp_path / "xeon.yaml").write_text(yaml.safe_dump(profile))
    scenario = REPO_ROOT / "scenarios/emulate/lte-two-clients.yaml"
    r = simfl("emulate", scenario, "--set", f"fleet[0].device={tmp_path / 'xeon.yaml'}", "--out", tmp_path / "x")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and not (tmp_path / "x").exists(), r.stderr
    assert r.stderr.startswith(f"error: {scenario}: fleet[0].device: '{tmp_path / 'xeon.yaml'}' was measured on Intel(R) Xeon(R) "
                               "Platinum 8480+, 16 cores, not on this machine (")
    assert r.stderr.endswith("add --calibrate to calibrate it here first (as make fidelity does), or use --compute "
                             "sleep\n")
    r = simfl("emulate", scenario, "--calibrate", "--compute", "sleep", "--out", tmp_path / "x")
    assert r.returncode == 2 and not (tmp_path / "x").exists()
    assert r.stderr == ("error: --calibrate: calibrates real steps for --compute train; sleeping clients take the "
                        "profile's step times as they are\n")


@pytest.mark.skipif(_cannot_emulate() is not None, reason="simfl emulate needs root and namespaces")
def test_simfl_emulate_calibrate_predicts_with_a_profile_measured_here_and_says_so(tmp_path):
    import json

    from tests.test_cli import simfl
    from tests.test_emulate import _flower_or_skip

    _flower_or_skip()
    out = tmp_path / "emu"
    r = simfl("emulate", REPO_ROOT / "scenarios/emulate/lte-two-clients.yaml", "--set", "model.name=t5-tiny",
              "--rounds", "1", "--calibrate", "--out", out)
    assert r.returncode == 0, r.stderr
    res = json.loads((out / "emulation.json").read_text())
    assert res["profile"] == {"devices": ["cpu-1core-epyc-emulate"], "predicted_with": "calibrated-here",
                              "host": hostid.here().describe()}
    assert f"profile: cpu-1core-epyc-emulate calibrated here just now ({hostid.here().describe()})\n" in r.stdout
    fresh = load_model(HardwareProfile, out / "calibration" / "cpu-1core-epyc-emulate-here.yaml")
    assert [(p.model, p.batch_size) for p in fresh.training] == [("t5-tiny", 1)]
    assert of_profile(fresh.provenance) == hostid.here()


# -- simfl run: a profile that names this machine but another host measured: one warning -----------------------

def _cpu_scenario(tmp_path, **provenance):
    import platform

    from tests.test_cli import scenario_file

    profile = yaml.safe_load((REPO_ROOT / "hardware_profiles/cpu-1core-epyc-emulate.yaml").read_text())
    profile["provenance"].update({"host": platform.node(), **provenance})
    (tmp_path / "box.yaml").write_text(yaml.safe_dump(profile))
    return scenario_file(tmp_path, lambda s: (s["fleet"][0].update(device="box"), s["training"].update(batch_size=1)))


def test_run_warns_when_a_profile_named_as_this_machine_was_measured_on_another(tmp_path):
    import json
    import platform

    from tests.test_cli import simfl

    this = hostid.here()
    f = _cpu_scenario(tmp_path, cpu="Intel(R) Xeon(R) Platinum 8480+", cpu_cores=16)
    r = simfl("run", f, "--out", tmp_path / "out", "--no-plots")
    assert r.returncode == 0, r.stderr
    expected = (f"fleet[0].device 'box' names this machine ({platform.node()!r}) as the host it was measured on, but it "
                f"was measured on Intel(R) Xeon(R) Platinum 8480+, 16 cores and this is {this.describe()} (its CPU is "
                f"'Intel(R) Xeon(R) Platinum 8480+', this one is {this.cpu_model!r}): its step times are that host's; "
                "run simfl calibrate here for this machine's")
    assert f"warning: {expected}\n" in r.stderr
    assert expected in json.loads((tmp_path / "out" / "summary.json").read_text())["warnings"]


@pytest.mark.parametrize("provenance", [{}, {"host": "some-other-box", "cpu": "Intel(R) Xeon(R) Platinum 8480+"}])
def test_run_does_not_warn_for_this_hosts_profile_or_one_named_for_another_host(tmp_path, provenance):
    import json

    from tests.test_cli import simfl

    this = hostid.here()
    f = _cpu_scenario(tmp_path, cpu=this.cpu_model, cpu_cores=this.cpu_cores)
    if provenance:  # a profile of another named host is a prediction for that host: nothing to warn
        f = _cpu_scenario(tmp_path, **provenance)
    r = simfl("run", f, "--out", tmp_path / "out", "--no-plots")
    assert r.returncode == 0, r.stderr
    assert "measured on" not in r.stderr
    assert not [w for w in json.loads((tmp_path / "out" / "summary.json").read_text())["warnings"] if "measured on" in w]
