"""Which host a profile was measured on, which host this is, and whether they are the same (no torch here).

A profile's step times are its host's: another CPU model, another core count or another GPU trains at
another speed (an Intel Xeon ran the shipped AMD EPYC emulation profile's steps 2.2x slower). The rule,
used by `simfl emulate` (refuses) and `simfl run` (warns):

- the CPU model string (/proc/cpuinfo "model name") must be the same, and so must the logical core count
  (os.cpu_count(): the machine's, not this process's affinity, since calibration pins itself to cores);
- where the profile records which of SPEED_FLAGS its CPU had, this CPU must have the same ones;
- for a GPU profile (device_class gpu or soc-gpu), the GPU name must be the same too.

A profile records its host in `provenance` (written by simfl calibrate): `cpu` (the model), `cpu_cores`,
`cpu_flags` (the SPEED_FLAGS present, space-separated) and `gpu`. `cpu_model` is read as `cpu`.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache

# CPU features that change how fast a training step runs (vector width, BF16/INT8 dot products, AMX tiles).
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8")


@dataclass(frozen=True)
class HostId:
    """A host as far as speed goes. None: not known (not recorded, or not readable here)."""

    cpu_model: str | None
    cpu_cores: int | None
    cpu_flags: frozenset[str] | None = None  # the SPEED_FLAGS present; None where not recorded
    gpu: str | None = None

    def describe(self, gpu: bool = False) -> str:
        """'AMD EPYC, 2 cores' (', GPU NVIDIA H200' when asked): what the error and warning lines say."""
        parts = [self.cpu_model or "an unrecorded CPU",
                 f"{self.cpu_cores} cores" if self.cpu_cores else "cores not recorded"]
        if gpu:
            parts.append(f"GPU {self.gpu}" if self.gpu else "no GPU")
        return ", ".join(parts)

    def provenance(self) -> dict:
        """The keys calibrate writes into a profile's provenance (cpu kept under its old name)."""
        out: dict = {"cpu": self.cpu_model, "cpu_cores": self.cpu_cores}
        if self.cpu_flags is not None:
            out["cpu_flags"] = " ".join(f for f in SPEED_FLAGS if f in self.cpu_flags)
        if self.gpu:
            out["gpu"] = self.gpu
        return out


def _cpuinfo(path: str = "/proc/cpuinfo") -> tuple[str | None, frozenset[str] | None]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return None, None
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), None)
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith(("flags", "Features"))), None)
    return model, (frozenset(f for f in SPEED_FLAGS if f in flags) if flags is not None else None)


@lru_cache(maxsize=1)
def gpu_name() -> str | None:
    """The first GPU's name from nvidia-smi (no torch, no NVML import), or None when there is none."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        r = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                           timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    names = [line.strip() for line in r.stdout.splitlines() if line.strip()]
    return names[0] if r.returncode == 0 and names else None


def here(gpu: bool = False) -> HostId:
    """This host. The GPU is looked up only when asked (it runs nvidia-smi)."""
    model, flags = _cpuinfo()
    return HostId(model or platform.processor() or platform.machine() or None, os.cpu_count(), flags,
                  gpu_name() if gpu else None)


def of_profile(provenance: dict | None) -> HostId | None:
    """The host a profile's provenance records; None when it records no CPU model (no host record)."""
    p = provenance or {}
    model = p.get("cpu_model") or p.get("cpu")
    if not model:
        return None
    cores = p.get("cpu_cores")
    flags = p.get("cpu_flags")
    return HostId(str(model), int(cores) if isinstance(cores, (int, float)) and cores > 0 else None,
                  frozenset(str(flags).split()) if flags is not None else None, p.get("gpu") or None)


def same_host(profile_host: HostId | None, this: HostId, gpu: bool = False) -> tuple[bool, str]:
    """Whether a profile measured on `profile_host` is this host's; the reason when it is not (a phrase:
    'its CPU is AMD EPYC, this one is Intel Xeon')."""
    if profile_host is None:
        return False, "it records no host it was measured on (no provenance cpu)"
    if profile_host.cpu_model != this.cpu_model:
        return False, f"its CPU is {profile_host.cpu_model!r}, this one is {this.cpu_model!r}"
    if profile_host.cpu_cores is None:
        return False, "it records no core count (provenance cpu_cores)"
    if profile_host.cpu_cores != this.cpu_cores:
        return False, f"it had {profile_host.cpu_cores} cores, this machine has {this.cpu_cores}"
    if profile_host.cpu_flags is not None and this.cpu_flags is not None \
            and profile_host.cpu_flags != this.cpu_flags:
        only_there = sorted(profile_host.cpu_flags - this.cpu_flags)
        only_here = sorted(this.cpu_flags - profile_host.cpu_flags)
        said = [f"its CPU had {', '.join(only_there)} and this one does not"] if only_there else []
        said += [f"this CPU has {', '.join(only_here)} and its did not"] if only_here else []
        return False, "; ".join(said)
    if gpu and profile_host.gpu != this.gpu:
        return False, f"its GPU is {profile_host.gpu!r}, this one is {this.gpu!r}"
    return True, "same CPU model and core count" + (" and GPU" if gpu else "")
