"""A profile's step time and power for a configuration: its measurements where they cover it, the hardware
model where they do not (flagged, with the model's expected error), and out-of-memory errors of either."""

from __future__ import annotations

from dataclasses import dataclass

from simfl.costs import interpolate, interpolation_points
from simfl.errors import ScenarioError
from simfl.hardware.predict import shipped
from simfl.uncertainty import log_sd_of
from simfl.training import TrainingConfig, default_adapter


@dataclass(frozen=True)
class StepCost:
    step_time_s: float
    power_w: float | None  # None: the profile has no power measurement for this configuration
    what: str = ""  # the configuration, e.g. "flan-t5-small lora backprop seq_len 512 batch 8"
    estimated_because: tuple[str, ...] = ()  # why these figures are not measurements; empty when they are
    memory_bytes: float | None = None  # the model's estimate of the step's peak memory, when it made one
    # the log-sd of the step time's error as a lognormal multiplier (simfl/uncertainty.py), from the stated 80 %
    # interval of the prediction's kind (not validated: the widest validated one's); None for measurements
    log_sd: float | None = None


def matching_points(profile, c: TrainingConfig) -> list:
    return [p for p in profile.training if p.training_config.key() == c.key()]


def _name(c: TrainingConfig) -> str:
    out = f"{c.model} {c.finetuning} {c.method} seq_len {c.seq_len}"
    if c.method == "forward_gradient":
        out += f" perturbations {c.perturbations}"
    if not default_adapter(c.target_len, c.lora_r, c.lora_targets):
        out += f" target_len {c.target_len}" + (f" lora_r {c.lora_r} targets {','.join(c.lora_targets)}"
                                                 if c.finetuning == "lora" else "")
    return out + c.how()


def step_cost(profile, c: TrainingConfig) -> StepCost:
    """Step time and power of configuration `c` on the profile's device.

    Between the batch sizes the profile measured for this very configuration: linear interpolation of
    the measurements. Anywhere else (another batch size, sequence length, rank, model, fine-tuning or
    training method, or a profile with datasheet fields only): the hardware model, flagged estimated.
    At or above a measured OOM batch, or where the model predicts the step does not fit: an error that
    says which.
    """
    what, batch = _name(c), c.batch_size
    points = matching_points(profile, c)
    oom = sorted((p for p in points if p.oom), key=lambda p: p.batch_size)
    if oom and batch >= oom[0].batch_size:
        kind = "estimated" if profile.estimated or oom[0].estimated else "measured"
        raise ScenarioError(f"{profile.name} cannot train {what} at batch {batch}: "
                            f"out of memory ({kind} OOM at batch {oom[0].batch_size})")
    ok = sorted((p for p in points if not p.oom), key=lambda p: p.batch_size)
    xs = [p.batch_size for p in ok]
    if ok and xs[0] <= batch <= xs[-1]:
        step_s, _ = interpolate(xs, [p.step_time_s for p in ok], batch)
        power_w = None
        if all(p.power_w is not None for p in ok):
            power_w, _ = interpolate(xs, [p.power_w for p in ok], batch)
        why = [f"spec-derived profile: {profile.method}"] if profile.estimated else []
        why += [f"batch {ok[i].batch_size} entry is estimated: {ok[i].derivation}"
                for i in interpolation_points(xs, batch) if ok[i].estimated]
        return StepCost(step_s, power_w, f"{what} batch {batch}", tuple(why))
    return _predicted(profile, c, what, ok)


def _predicted(profile, c: TrainingConfig, what: str, ok: list) -> StepCost:
    if profile.datasheet() is None:
        missing = " and ".join(f for f in ("device_class", "memory_bandwidth_bytes_per_s") if getattr(profile, f) is None)
        covered = sorted({f"{_name(p.training_config)} batch {p.batch_size}" for p in profile.training if not p.oom})
        raise ScenarioError(f"profile {profile.name} did not measure {what} at batch {c.batch_size}, and it lacks "
                            f"{missing}, which the hardware model needs to predict it; it measured: "
                            + ("; ".join(covered) or "nothing"))
    try:
        est = shipped().estimate(profile, c)
    except ValueError as e:
        raise ScenarioError(f"{profile.name}: {e}") from None
    ran_larger = any(p.batch_size >= c.batch_size for p in ok)
    if not est.fits and not ran_larger:
        raise ScenarioError(f"{profile.name} cannot train {what} at batch {c.batch_size}: out of memory "
                            f"(predicted by the hardware model: needs {est.memory_bytes / 1e9:.1f} GB of "
                            f"{est.usable_memory_bytes / 1e9:.1f} GB)")
    # a prediction whose kind was never validated is drawn as the least known validated one is, not left exact
    log_sd = log_sd_of(est.interval_80 if est.interval_80 is not None else shipped().widest_interval())
    return StepCost(est.step_time_s, est.power_w, f"{what} batch {c.batch_size}", (est.flag(),), est.memory_bytes,
                    log_sd)
