"""The clients' profile of an emulation that trains for real: measured on this host, or calibrated here first.

A profile's step times are its host's (simfl/hostid.py): the shipped emulation profile, measured on a 2-core
AMD EPYC VM, put an Intel Xeon's compute at 1/2.2 of what it took. So real compute (`--compute train`) with a
profile another host measured is refused in one line, unless `--calibrate` measures the clients' steps here
first, the way `make fidelity` does (calibrate_here, shared with scripts/fidelity.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from simfl.config.scenario import Scenario
from simfl.errors import ScenarioError
from simfl.hostid import HostId, here, of_profile, same_host
from simfl.training import (DEFAULT_LORA_ALPHA, DEFAULT_LORA_R, DEFAULT_LORA_TARGETS, DEFAULT_SEQ_LEN,
                            DEFAULT_TARGET_LEN)

SHIPPED_MATCHING = "shipped-and-matching"  # the profile as the scenario names it, measured on this host's kind
CALIBRATED_HERE = "calibrated-here"  # measured on this machine just before the emulation
SLEPT = "slept"  # --compute sleep: the profile's step times are slept, whatever host measured them


def check_clients_profile(sc: Scenario, compute: str, this: HostId | None = None) -> dict:
    """For real compute, every client group's profile must have been measured on this host (same CPU model and
    core count): one line naming both hosts and the two ways out otherwise. Returns what predicted, for
    emulation.json's `profile`."""
    devices = list(dict.fromkeys(g.device for g in sc.fleet))
    if compute != "train":
        return {"devices": devices, "predicted_with": SLEPT}
    this = this or here()
    for i, g in enumerate(sc.fleet):
        measured_on = of_profile(sc.hardware[g.device].provenance)
        same, why = same_host(measured_on, this)
        if not same:
            there = measured_on.describe() if measured_on else "a host it does not record"
            raise ScenarioError(
                f"{g.device!r} was measured on {there}, not on this machine ({this.describe()}): {why}, so real "
                "compute here would not take its step times; add --calibrate to calibrate it here first (as make "
                "fidelity does), or use --compute sleep", field=f"fleet[{i}].device")
    calibrated = any((sc.hardware[d].provenance or {}).get("calibrated_here") for d in devices)
    return {"devices": devices, "predicted_with": CALIBRATED_HERE if calibrated else SHIPPED_MATCHING,
            "host": this.describe()}


def calibrate_here(profile: dict, folder: Path, *, model: str, batch_sizes: list[int],
                   seq_len: int = DEFAULT_SEQ_LEN, target_len: int = DEFAULT_TARGET_LEN, lora_r: int = DEFAULT_LORA_R,
                   lora_alpha: float = DEFAULT_LORA_ALPHA, lora_targets: tuple[str, ...] = DEFAULT_LORA_TARGETS,
                   name: str | None = None) -> Path:
    """`profile` measured now, as emulated clients train: LoRA steps of `model` at each batch size on every core
    at once, each run pinned to its core with one torch thread; step times are the mean over the cores, the
    rest (aggregation, memory) from `profile`, the provenance this host's. Writes and returns NAME.yaml."""
    folder.mkdir(parents=True, exist_ok=True)
    name = name or f"{profile['name']}-here"
    runs = []
    for core in sorted(os.sched_getaffinity(0)):
        out, log = folder / f"{name}-core{core}.yaml", folder / f"{name}-core{core}.log"
        cmd = [sys.executable, "-m", "simfl", "calibrate", "--name", f"core{core}", "--models", model,
               "--batch-sizes", ",".join(map(str, batch_sizes)), "--seq-len", str(seq_len),
               "--target-len", str(target_len), "--lora-r", str(lora_r), "--lora-alpha", str(lora_alpha),
               "--lora-targets", ",".join(lora_targets), "--threads", "1", "--power", "none", "--idle-s", "0",
               "--device", "cpu", "--out", str(out)]
        with open(log, "w") as f:
            runs.append((out, log, subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT,
                                                    preexec_fn=lambda core=core: os.sched_setaffinity(0, {core}))))
    failed = [(log, p.wait()) for _, log, p in runs]
    for log, rc in failed:
        if rc != 0:
            last = (log.read_text().strip().splitlines() or ["no output"])[-1]
            raise ScenarioError(f"calibrating {profile['name']} here failed ({log.name}): {last}", field="--calibrate")
    measured = [yaml.safe_load(out.read_text()) for out, _, _ in runs]
    points = []
    for i, first in enumerate(measured[0]["training"]):
        same = [m["training"][i] for m in measured]
        if first.get("oom"):
            points.append(first)
            continue
        points.append({**first, **{k: round(sum(p[k] for p in same) / len(same), 6)
                                   for k in ("step_time_s", "step_time_p90_s")}})
    steps = "; ".join(f"batch {p['batch_size']}: " + ", ".join(f"{m['training'][i]['step_time_s']:.4f}"
                                                                for m in measured)
                      for i, p in enumerate(points) if not p.get("oom"))
    fresh = dict(profile)  # its step-time spread (speed) too, as make fidelity has always kept it
    fresh.update(name=name, training=points,
                 source=f"calibrated here just before use: {len(measured)} concurrent pinned calibrations (one torch "
                        f"thread each) of {model}, step times {steps} s; the rest from {profile['name']}",
                 provenance={**measured[0]["provenance"], "calibrated_here": "yes", "based_on": profile["name"]})
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(fresh, sort_keys=False))
    return path


def calibrated_scenario(sc: Scenario, folder: Path) -> Scenario:
    """The scenario with each client group's profile calibrated here for the scenario's model and batch sizes
    (the server, where it uses a client's profile, takes the calibrated one too, as make fidelity does)."""
    from simfl.config.load import load_model
    from simfl.config.profiles import HardwareProfile

    hardware = dict(sc.hardware)
    for device in dict.fromkeys(g.device for g in sc.fleet):
        batches = sorted({g.batch_size or sc.training.batch_size for g in sc.fleet if g.device == device})
        profile = sc.hardware[device].model_dump(mode="json", exclude_none=True)
        path = calibrate_here(profile, folder, model=sc.model.name, batch_sizes=batches,
                              seq_len=sc.training.seq_len, target_len=sc.training.target_len,
                              lora_r=sc.model.lora_r, lora_alpha=sc.model.lora_alpha,
                              lora_targets=tuple(sc.model.lora_targets))
        hardware[device] = load_model(HardwareProfile, path)
    return sc.model_copy(update={"hardware": hardware})
