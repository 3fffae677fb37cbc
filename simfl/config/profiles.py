"""Schemas of the data files: hardware profiles and network models."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from simfl.config.base import StrictModel
from simfl.config.limits import MAX_SIGMA, Int64
from simfl.training import (DEFAULT_GRADIENT_CHECKPOINTING, DEFAULT_LORA_R, DEFAULT_LORA_TARGETS, DEFAULT_METHOD,
                            DEFAULT_OPTIMIZER, DEFAULT_PRECISION, DEFAULT_QUANTIZATION, DEFAULT_TARGET_LEN, FINETUNING,
                            LORA_TARGETS, METHODS, OPTIMIZERS, PRECISIONS, QUANTIZATIONS, TrainingConfig,
                            default_adapter)

Finetuning = Literal[FINETUNING]
TrainingMethod = Literal[METHODS]
LoraTarget = Literal[LORA_TARGETS]
Optimizer = Literal[OPTIMIZERS]
Precision = Literal[PRECISIONS]
Quantization = Literal[QUANTIZATIONS]


class _Frozen(StrictModel):
    pass


class TrainingPoint(_Frozen):
    """One measured (or derived) training-step configuration on a device."""

    model: str = Field(description="Catalog model name, e.g. flan-t5-small.")
    finetuning: Finetuning = Field(description="lora or full.")
    method: TrainingMethod = Field(DEFAULT_METHOD, description="Client training method.")
    seq_len: Int64 = Field(gt=0, description="Input sequence length in tokens.")
    target_len: Int64 = Field(DEFAULT_TARGET_LEN, gt=0, description=f"Output tokens per sample ({DEFAULT_TARGET_LEN}: "
                                                                    "the seed paper's and calibrate's).")
    lora_r: Int64 = Field(DEFAULT_LORA_R, gt=0,
                          description=f"LoRA rank of the measured adapters ({DEFAULT_LORA_R}: the seed paper's).")
    lora_targets: list[LoraTarget] = Field(
        default_factory=lambda: list(DEFAULT_LORA_TARGETS), min_length=1,
        description=f"Adapted projections ({', '.join(DEFAULT_LORA_TARGETS)}: the paper's).")
    batch_size: Int64 = Field(gt=0, description="Samples per training step.")
    # How the steps trained; absent: the seed paper's way (sgd, fp32, no quantization, no checkpointing)
    optimizer: Optimizer | None = Field(None, description=f"Client optimizer (absent: {DEFAULT_OPTIMIZER}).")
    precision: Precision | None = Field(None, description=f"Arithmetic of the steps (absent: {DEFAULT_PRECISION}).")
    quantization: Quantization | None = Field(None, description="Frozen base weights: int8 or nf4 (absent: "
                                                               f"{DEFAULT_QUANTIZATION}).")
    gradient_checkpointing: bool | None = Field(None, description="Whether the steps recomputed activations "
                                                                  f"(absent: {DEFAULT_GRADIENT_CHECKPOINTING}).")
    oom: bool = Field(False, description="True when this batch ran out of device memory.")
    step_time_s: float | None = Field(None, gt=0, description="Wall time of one training step.")
    power_w: float | None = Field(None, gt=0, description="Average device power during steps.")
    estimated: bool = Field(False, description="True when derived rather than measured.")
    derivation: str | None = Field(None, description="How an estimated point was derived.")
    perturbations: Int64 | None = Field(None, gt=0, description="Forward-gradient perturbations per step.")
    step_time_p90_s: float | None = Field(None, gt=0, description="90th percentile step time.")
    energy_per_step_j: float | None = Field(None, gt=0, description="Measured energy of one step.")
    tokens_per_s: float | None = Field(None, gt=0, description="Input tokens processed per second.")
    peak_memory_bytes: float | None = Field(None, gt=0, description="Peak device memory of a step.")
    mfu: float | None = Field(None, ge=0, description="Model FLOP utilization (fraction of peak).")
    phases_s: dict[str, float] | None = Field(None, description="Median seconds per step phase.")

    @property
    def point_key(self) -> tuple:
        """What the step-time lookup matches a configuration and batch on (simfl/hardware/lookup.py)."""
        return (*self.training_config.key(), self.batch_size)

    @property
    def training_config(self) -> TrainingConfig:
        """The configuration this point measured, at its batch size."""
        return TrainingConfig(self.model, self.finetuning, self.method, self.seq_len, self.target_len, self.batch_size,
                              self.lora_r, tuple(self.lora_targets), self.perturbations,
                              self.optimizer or DEFAULT_OPTIMIZER, precision=self.precision or DEFAULT_PRECISION,
                              quantization=self.quantization or DEFAULT_QUANTIZATION,
                              gradient_checkpointing=bool(self.gradient_checkpointing))

    def describe(self) -> str:
        """'flan-t5-small lora backprop seq_len 512 batch 4', with what differs from the defaults."""
        out = f"{self.model} {self.finetuning} {self.method} seq_len {self.seq_len}"
        if self.method == "forward_gradient":
            out += f" perturbations {self.perturbations}"
        if not default_adapter(self.target_len, self.lora_r, self.lora_targets):
            out += f" target_len {self.target_len} lora_r {self.lora_r} targets {','.join(self.lora_targets)}"
        return f"{out}{self.training_config.how()} batch {self.batch_size}"

    @model_validator(mode="after")
    def _measured_or_oom(self) -> "TrainingPoint":
        if not self.oom and self.step_time_s is None:
            raise ValueError("step_time_s is required unless oom is true")
        if self.estimated and not self.derivation:
            raise ValueError("an estimated training point must say its derivation")
        return self


class AggregationSpec(_Frozen):
    params_per_s: float = Field(gt=0, description="Parameters the device aggregates per second, per upload.")
    power_w: float | None = Field(None, gt=0, description="Device power while aggregating; without it "
                                  "aggregation energy is not counted (no power backend measured it).")
    estimated: bool = Field(False, description="True when these figures are assumed or derived, not measured.")
    source: str | None = Field(None, description="Where these numbers come from.")

    @model_validator(mode="after")
    def _estimate_says_source(self) -> "AggregationSpec":
        if self.estimated and not self.source:
            raise ValueError("an estimated aggregation entry must say its source")
        return self


class HardwarePrice(_Frozen):
    """What the device costs: bought (a price spread over its service life), rented by the hour, or both (a
    device one can buy or rent: the scenario's accounting.hardware_charge says which the job pays)."""

    purchase: float | None = Field(None, gt=0, description="Purchase price of one device.")
    service_life_years: float | None = Field(None, gt=0, description="Years a purchase is written off over.")
    rental_per_hour: float | None = Field(None, gt=0, description="Rental price of one device per hour.")
    currency: str = Field(min_length=1, description="Currency of the prices, e.g. EUR.")
    source: str = Field(min_length=1, description="Where the prices come from.")
    purchase_range: list[float] | None = Field(
        None, min_length=2, max_length=2,
        description="[low, high] of the purchase price where the source gives a range: read as its 5th and "
                          "95th percentiles, replicates draw the price (simfl/uncertainty.py).")
    rental_per_hour_range: list[float] | None = Field(
        None, min_length=2, max_length=2,
        description="[low, high] of the rental price where the source gives a range, drawn likewise.")

    @model_validator(mode="after")
    def _ranges_hold_their_price(self) -> "HardwarePrice":
        for name, value, rng in (("purchase", self.purchase, self.purchase_range),
                                 ("rental_per_hour", self.rental_per_hour, self.rental_per_hour_range)):
            if rng is None:
                continue
            if value is None:
                raise ValueError(f"{name}_range needs {name}")
            low, high = rng
            if not (0 < low < high and low <= value <= high):
                raise ValueError(f"{name}_range must be [low, high] with 0 < low < high around {name} {value:g} "
                                 f"(got [{low:g}, {high:g}])")
        return self

    @model_validator(mode="after")
    def _bought_or_rented(self) -> "HardwarePrice":
        if self.purchase is None and self.rental_per_hour is None:
            raise ValueError("give purchase (with service_life_years), rental_per_hour, or both")
        if (self.purchase is None) != (self.service_life_years is None):
            raise ValueError("purchase and service_life_years go together")
        return self

    @property
    def per_hour(self) -> float:
        """What holding one device costs per hour: its purchase's share of its life where it is bought, else its
        rental."""
        if self.purchase is not None:
            return self.purchase / (self.service_life_years * HOURS_PER_YEAR)
        return self.rental_per_hour


class EmbodiedCarbon(_Frozen):
    """The CO2e of making one device (cradle to gate, as its source states), shared over its service life like its
    purchase price (or charged whole, per job, where the scenario charges purchases)."""

    co2e_kg: float = Field(gt=0, description="kg CO2e to make one device.")
    service_life_years: float | None = Field(
        None, gt=0, description="Years it is shared over (default: the price's service_life_years).")
    source: str = Field(min_length=1, description="Where the figure comes from, and what it covers.")


HOURS_PER_YEAR = 365.25 * 24


class DataPrice(_Frozen):
    """What moving data over a network costs (mobile plans), per GB (10^9 bytes) in either direction."""

    per_gb: float = Field(ge=0, description="Price per GB moved.")
    currency: str = Field(min_length=1)
    source: str = Field(min_length=1)


class SpeedSpread(_Frozen):
    """The spread of step time this device showed: a lognormal multiplier with median 1."""

    sigma: float = Field(gt=0, le=MAX_SIGMA, description="Log-sd of the step-time multiplier.")
    per: Literal["client", "round"] = Field("round", description="What the spread describes: rounds of one "
                                                                  "device (round) or devices of one model (client).")
    source: str = Field(min_length=1, description="How it was measured.")


class PeakFlops(_Frozen):
    """A datasheet's dense peak FLOP/s at each precision it lists (tensor cores where the device has them)."""

    fp32: float | None = Field(None, gt=0, description="FP32 (vector units).")
    tf32: float | None = Field(None, gt=0, description="TF32 tensor cores, dense.")
    bf16: float | None = Field(None, gt=0, description="BF16 tensor cores (or a CPU's BF16 dot products), dense.")
    fp16: float | None = Field(None, gt=0, description="FP16 tensor cores, dense.")
    int8: float | None = Field(None, gt=0, description="INT8 tensor cores, dense (operations per second).")
    source: str = Field(min_length=1, description="The datasheet each figure is read from.")

    def table(self) -> tuple[tuple[str, float], ...]:
        return tuple((k, v) for k in ("fp32", "tf32", "bf16", "fp16", "int8") if (v := getattr(self, k)) is not None)


class WholeMachine(_Frozen):
    """A profile of a machine as bought and run (a workstation, a developer kit), not its bare component: its
    price and idle power are the whole machine's, its speed and memory the component's."""

    component: str = Field(min_length=1, description="The profile of the bare component the machine is built "
                                                     "around, e.g. jetson-agx-orin-64gb.")
    includes: str = Field(min_length=1, description="What the price and idle power cover, e.g. module, carrier "
                                                    "board, power supply and SSD.")
    source: str = Field(min_length=1, description="Where the machine's figures come from.")


class HardwareProfile(_Frozen):
    """A device: its limits, its idle power and its measured training steps."""

    name: str
    source: str = Field(min_length=1, description="Where the numbers come from.")
    estimated: bool = Field(description="True for spec-derived profiles.")
    method: str | None = Field(None, description="How an estimated profile was derived.")
    device_class: Literal["gpu", "soc-gpu", "cpu"] | None = Field(
        None, description="What the hardware model treats it as: a discrete GPU, a GPU system-on-chip with "
                          "shared memory (Jetson), or a CPU.")
    peak_flops: float = Field(gt=0, description="Peak dense FLOP/s at the precision trained (the MFU peak).")
    peak_flops_by_precision: PeakFlops | None = Field(
        None, description="The datasheet's peaks by precision: a step at another precision than fp32 runs at the "
                          "fp32 rate times their ratio, capped at that precision's peak (docs/hardware-model.md).")
    memory_bytes: float = Field(gt=0, description="Device memory available to training.")
    memory_bandwidth_bytes_per_s: float | None = Field(None, gt=0, description="Datasheet memory bandwidth.")
    power_limit_w: float | None = Field(None, gt=0, description="Datasheet power limit (TDP or board maximum).")
    idle_power_w: float | None = Field(
        None, ge=0, description="Power when idle or waiting on the network; absent when not measured."
    )
    idle_power_source: str | None = None
    idle_power_estimated: bool = Field(False, description="True when idle_power_w is assumed, not measured.")
    aggregation: AggregationSpec | None = Field(None, description="Used when the device is the server.")
    price: HardwarePrice | None = Field(None, description="Purchase or rental price: the hardware cost of a run.")
    embodied: EmbodiedCarbon | None = Field(
        None, description="Embodied carbon of one device, with its source; absent where no source publishes one "
                          "(then a run says it is not counted).")
    whole_machine: WholeMachine | None = Field(
        None, description="Set when this profile is a whole machine (price and idle power of the machine, speed "
                          "and memory of its component): which component, what it includes, and the source.")
    speed: SpeedSpread | None = Field(None, description="Measured step-time spread: the default `speed` of "
                                                        "fleet groups of this device.")
    training: list[TrainingPoint] = Field(default_factory=list)
    provenance: dict[str, str | int | float | None] | None = Field(
        None, description="How a calibrated profile was measured (host, versions, command). The host it was "
                          "measured on: cpu (the CPU model, /proc/cpuinfo), cpu_cores (logical cores), cpu_flags "
                          "(which of simfl.hostid.SPEED_FLAGS it had) and gpu; simfl emulate and run compare them "
                          "with this machine (simfl/hostid.py)."
    )

    @model_validator(mode="after")
    def _embodied_has_a_life(self) -> "HardwareProfile":
        if self.embodied is not None and self.embodied.service_life_years is None and (
                self.price is None or self.price.service_life_years is None):
            raise ValueError("embodied: give service_life_years (there is no purchase life to share it over)")
        return self

    @model_validator(mode="after")
    def _estimated_has_method(self) -> "HardwareProfile":
        if self.estimated and not self.method:
            raise ValueError("an estimated profile must state its method")
        if self.idle_power_estimated and not self.idle_power_source:
            raise ValueError("an estimated idle power must say its source (idle_power_source)")
        return self

    @model_validator(mode="after")
    def _one_row_per_point(self) -> "HardwareProfile":
        """A configuration is measured once at each batch: with two rows the lookup would price it, and
        interpolate the batches around it, from whichever row won. Identical rows are refused too: the
        file says one thing twice, which a hand edit or a merge of two calibrations does by mistake."""
        first: dict[tuple, int] = {}
        for i, p in enumerate(self.training):
            j = first.setdefault(p.point_key, i)
            if j == i:
                continue
            q = self.training[j]
            seen = lambda t: "oom" if t.oom else f"step_time_s {t.step_time_s:g}"  # noqa: E731
            what = ("the same row twice: keep one" if p == q else f"{seen(q)} and {seen(p)}: keep the one "
                    "you trust")
            raise ValueError(f"training[{j}] and training[{i}] are both {p.describe()} ({what})")
        return self

    def datasheet(self):
        """The device's datasheet for the hardware model; None when device_class or the bandwidth is missing."""
        from simfl.hardware.model import Datasheet

        if self.device_class is None or self.memory_bandwidth_bytes_per_s is None:
            return None
        peaks = self.peak_flops_by_precision.table() if self.peak_flops_by_precision else ()
        return Datasheet(self.device_class, self.peak_flops, self.memory_bytes, self.memory_bandwidth_bytes_per_s,
                         self.power_limit_w, self.idle_power_w, peaks)


class PathElement(_Frozen):
    """One kind of equipment on the path from client to data center, with its per-bit energy."""

    element: str
    count: Int64 = Field(1, ge=0)
    energy_per_bit_j: float | None = Field(None, ge=0, description="Both directions.")
    energy_per_bit_up_j: float | None = Field(None, ge=0, description="Client-to-server direction.")
    energy_per_bit_down_j: float | None = Field(None, ge=0, description="Server-to-client direction.")
    source: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> "PathElement":
        both = self.energy_per_bit_j is not None
        split = self.energy_per_bit_up_j is not None or self.energy_per_bit_down_j is not None
        if both == split:
            raise ValueError(
                "give either energy_per_bit_j or both energy_per_bit_up_j and energy_per_bit_down_j"
            )
        if split and (self.energy_per_bit_up_j is None or self.energy_per_bit_down_j is None):
            raise ValueError("energy_per_bit_up_j and energy_per_bit_down_j go together")
        return self

    @property
    def up_j(self) -> float:
        return self.count * (self.energy_per_bit_j if self.energy_per_bit_up_j is None else self.energy_per_bit_up_j)

    @property
    def down_j(self) -> float:
        return self.count * (
            self.energy_per_bit_j if self.energy_per_bit_down_j is None else self.energy_per_bit_down_j
        )


class LinkComponent(_Frozen):
    """One operator's measured links: a lognormal in (downlink bps, uplink bps, one-way latency s)."""

    name: str
    weight: float = Field(gt=0, description="Share of this component (e.g. its count of measurements).")
    log_mean: list[float] = Field(min_length=3, max_length=3,
                                  description="Means of ln downlink bps, ln uplink bps, ln one-way latency s.")
    log_cov: list[list[float]] = Field(description="3 x 3 covariance of the same logs.")

    @model_validator(mode="after")
    def _covariance(self) -> "LinkComponent":
        import numpy as np

        c = np.array(self.log_cov, dtype=float) if all(len(r) == 3 for r in self.log_cov) else None
        if c is None or c.shape != (3, 3):
            raise ValueError("log_cov must be a 3 x 3 matrix")
        if not np.allclose(c, c.T):
            raise ValueError("log_cov must be symmetric")
        try:
            np.linalg.cholesky(c)
        except np.linalg.LinAlgError:
            raise ValueError("log_cov must be positive definite") from None
        return self


class LinkDistribution(_Frozen):
    """Measured links of a network: fitted per-operator lognormals, or the measurements themselves."""

    source: str = Field(min_length=1)
    operators: list[LinkComponent] | None = Field(None, min_length=1)
    samples: list[list[float]] | None = Field(
        None, min_length=1, description="Rows of (downlink_bps, uplink_bps, latency_s), drawn uniformly.")

    @model_validator(mode="after")
    def _one_form(self) -> "LinkDistribution":
        if (self.operators is None) == (self.samples is None):
            raise ValueError("give either operators or samples")
        for i, row in enumerate(self.samples or []):
            if len(row) != 3 or not (row[0] > 0 and row[1] > 0 and row[2] >= 0):
                raise ValueError(f"samples[{i}] must be (downlink_bps > 0, uplink_bps > 0, latency_s >= 0)")
        return self


class NetworkModel(_Frozen):
    """An access link (rates and latency) and the per-bit energy chain behind it."""

    name: str
    source: str = Field(min_length=1)
    downlink_bps: float = Field(gt=0, description="Rate towards the device.")
    uplink_bps: float = Field(gt=0, description="Rate away from the device.")
    latency_s: float = Field(ge=0, description="One-way latency added to every transfer.")
    derivation: str | None = None
    path: list[PathElement] = Field(default_factory=list)
    distribution: LinkDistribution | None = Field(
        None, description="Measured spread of (downlink, uplink, latency): used by `link: {distribution: empirical}`.")
    data_price: DataPrice | None = Field(None, description="Price of the bytes a client moves (mobile plans).")

    @property
    def energy_per_bit_up_j(self) -> float:
        return sum(e.up_j for e in self.path)

    @property
    def energy_per_bit_down_j(self) -> float:
        return sum(e.down_j for e in self.path)
