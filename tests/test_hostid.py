"""The host rule: a profile's step times are its host's (same CPU model and core count, same GPU)."""

from pathlib import Path

import pytest

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
