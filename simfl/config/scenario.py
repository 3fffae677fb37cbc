"""The scenario schema: what a user writes in a scenario YAML file."""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal, Union

from pydantic import AwareDatetime, Discriminator, Field, PrivateAttr, Tag, ValidationInfo, field_validator, model_validator

from simfl.catalog import BUILTIN_MODELS, CATALOG
from simfl.config.base import StrictModel
from simfl.config.files import DataFiles
from simfl.config.limits import MAX_CLIENT_ROUNDS, MAX_POPULATION, MAX_ROUNDS, MAX_SIGMA, Int64, Steps, work_error
from simfl.config.profiles import (Finetuning, HardwareProfile, LoraTarget, NetworkModel, Optimizer, Precision,
                                   Quantization, TrainingMethod)
from simfl.config.server_optimizers import (FedAdamParams, FedAdamWParams, FedAvgMParams, FedAvgParams, OptimizerName,
                                            ServerOptimizer, named)
from simfl.lora_ranks import DEFAULT_RULE, RankAggregation, group_ranks
from simfl.training import (ATTENTION_LORA_TARGETS, DEFAULT_FINETUNING, DEFAULT_GRADIENT_CHECKPOINTING,
                            DEFAULT_LORA_ALPHA, DEFAULT_LORA_R, DEFAULT_LORA_TARGETS, DEFAULT_METHOD, DEFAULT_OPTIMIZER,
                            DEFAULT_PERTURBATIONS, DEFAULT_PRECISION, DEFAULT_QUANTIZATION, DEFAULT_SEQ_LEN,
                            DEFAULT_TARGET_LEN, TrainingConfig, check_lora_targets)


class _Frozen(StrictModel):
    pass


class ModelSpec(_Frozen):
    name: str = Field(description="Catalog model (" + ", ".join(BUILTIN_MODELS) + "), or the name of the model "
                                  "`config` describes (default: the config's file name).")
    config: str | None = Field(None, description="A Hugging Face config.json (a name in model_configs/, or a path) "
                                                 "of a T5, Llama, Qwen2, Mistral, Gemma or Phi-3 model: simfl "
                                                 "counts its parameters and FLOPs from it (simfl/hf_config.py).")
    finetuning: Finetuning = Field(DEFAULT_FINETUNING, description="lora trains adapters; full trains all weights.")
    lora_r: Int64 = Field(DEFAULT_LORA_R, gt=0, description="LoRA rank.")
    lora_alpha: float = Field(DEFAULT_LORA_ALPHA, gt=0, description="LoRA scaling numerator.")
    lora_targets: list[LoraTarget] = Field(
        default_factory=lambda: list(DEFAULT_LORA_TARGETS), min_length=1,
        description="Adapted projections: q, k, v, o (attention); decoder-only models also gate, up, down.")
    bits_per_param: Int64 = Field(32, gt=0, description="Bits per parameter on the wire.")
    quantization: Quantization = Field(DEFAULT_QUANTIZATION, description="The frozen base weights of LoRA: none, or "
                                                                         "quantized (QLoRA): int8 or nf4.")
    # heterogeneous LoRA ranks (fleet[i].lora_r): simfl/lora_ranks.py, simfl/fl/hetero.py
    rank_aggregation: RankAggregation | None = Field(
        None, description="Where fleet groups train different lora_r: zero_pad (HetLoRA: pad to the largest rank, "
                          "average each rank slot over the clients that have it) or stack (FLoRA: the weighted "
                          "sum of the clients' B A merged into the base weights; fedavg only). Default zero_pad; "
                          "with one rank neither applies.")

    @property
    def rank_rule(self) -> str:
        return self.rank_aggregation or DEFAULT_RULE

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in CATALOG:
            raise ValueError(f"unknown model {v!r}; known: {', '.join(BUILTIN_MODELS)}; or give model.config "
                             "(a config.json)")
        return v

    @field_validator("lora_targets")
    @classmethod
    def _targets_of_the_model(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if "name" in info.data:  # (an unknown name is said on its own)
            check_lora_targets(info.data["name"], v)
        return v

    @model_validator(mode="after")
    def _aggregation_of_adapters(self) -> "ModelSpec":
        if self.quantization != "none" and self.finetuning != "lora":
            raise ValueError(f"quantization {self.quantization} quantizes the frozen base weights of LoRA (QLoRA); "
                             f"finetuning {self.finetuning} trains them")
        if self.rank_aggregation is not None and self.finetuning != "lora":
            raise ValueError(f"rank_aggregation {self.rank_aggregation} aggregates LoRA adapters of different "
                             f"ranks; finetuning {self.finetuning} has none")
        return self


class TrainingSpec(_Frozen):
    batch_size: Int64 = Field(gt=0, description="Samples per local step.")
    local_steps: Steps | None = Field(None, gt=0, description="Steps per client per round.")
    local_epochs: Steps | None = Field(
        None, gt=0, description="Instead of local_steps: passes over the client's own samples."
    )
    seq_len: Int64 = Field(DEFAULT_SEQ_LEN, gt=0, description="Input tokens per sample.")
    target_len: Int64 = Field(DEFAULT_TARGET_LEN, gt=0, description="Output tokens per sample.")
    method: TrainingMethod = Field(DEFAULT_METHOD, description="backprop or forward_gradient.")
    perturbations: Int64 | None = Field(
        None, gt=0, description="forward_gradient: perturbations per step (selects the profile entries)."
    )
    precision: Precision = Field(DEFAULT_PRECISION, description="fp32, tf32, or mixed bf16 / fp16 (half-precision "
                                                                "matmuls and frozen weights, fp32 master copies of "
                                                                "what is trained).")
    optimizer: Optimizer = Field(DEFAULT_OPTIMIZER, description="Client optimizer: sgd (no state), adamw (two fp32 "
                                                                "moments), adamw-8bit (two 8-bit moments).")
    gradient_checkpointing: bool = Field(DEFAULT_GRADIENT_CHECKPOINTING, description="Keep each layer's input only "
                                                                                     "and recompute the rest in the "
                                                                                     "backward pass.")

    @model_validator(mode="after")
    def _steps_or_epochs(self) -> "TrainingSpec":
        if (self.local_steps is None) == (self.local_epochs is None):
            raise ValueError("give exactly one of local_steps and local_epochs")
        if self.method == "forward_gradient" and self.perturbations is None:
            raise ValueError("method forward_gradient needs perturbations")
        if self.method == "forward_gradient" and self.gradient_checkpointing:
            raise ValueError("gradient_checkpointing saves activations for a backward pass; method "
                             "forward_gradient has none")
        return self


class PartitionSpec(_Frozen):
    dirichlet_alpha: float = Field(1.0, gt=0, description="Concentration of the Dirichlet split.")
    samples: Int64 = Field(14732, gt=0, description="Training samples split over the population.")


class UniformSelectionSpec(_Frozen):
    """Clients chosen uniformly at random (the seed paper's and FedAvg's rule)."""

    kind: Literal["uniform"]


class SpeedSelectionSpec(_Frozen):
    """Prefer clients expected to finish in time, in the spirit of Oort (simfl/sim/selection.py)."""

    kind: Literal["speed"]
    explore: float = Field(0.1, ge=0, le=1, description="Share of each selection drawn uniformly among all "
                                                         "candidates (floor(explore x count) picks).")
    alpha: float = Field(2.0, ge=0, le=10, description="Penalty exponent: a client expected to take longer "
                                                        "than target_s weighs (target_s / expected_s) ** alpha.")
    target_s: float | None = Field(None, gt=0, description="The round time a client should meet (default: "
                                                           "federation.deadline_s; needed without one).")


Selection = Annotated[Union[UniformSelectionSpec, SpeedSelectionSpec], Field(discriminator="kind")]


class _Federation(_Frozen):
    """What every round policy has: how many updates an aggregation takes, how many aggregations, who fails,
    how data is split and who is selected. Each mode adds its own fields (DESIGN.md rule 11)."""

    mode: str
    clients_per_round: Int64 = Field(gt=0, description="K: uploads the server waits for (async: buffer_size; "
                                                     "window: min_updates, or 1).")
    rounds: Int64 = Field(gt=0, description="FL rounds to simulate; or {convergence: TABLE.csv} for the rounds a "
                                          "convergence table gives this K and local steps (docs/convergence.md).")
    rounds_from: str | None = Field(None, description="How the rounds were found, when a convergence table gave "
                                                      "them (set by the loader).")
    rounds_log_sd: float | None = Field(
        None, ge=0, description="The log-sd of rounds-to-target, when a convergence table gave them (set by the "
                                "loader): replicates draw the rounds as they draw other estimated inputs.")
    dropout_prob: float = Field(0.0, ge=0, le=1, description="Chance a selected client fails mid-work.")
    partition: PartitionSpec = Field(default_factory=PartitionSpec)
    selection: Selection = Field(
        default_factory=lambda: UniformSelectionSpec(kind="uniform"),
        description="Who is selected, in every mode: {kind: uniform}, or {kind: speed, explore, alpha, target_s} "
                    "(prefer clients expected to finish within target_s).")

    # the fields of every mode, for the message naming a field given in the wrong mode
    OWN: ClassVar[dict[str, set[str]]] = {"sync": {"over_selection", "deadline_s"},
                                          "async": {"concurrency", "buffer_size", "max_staleness"},
                                          "window": {"concurrency", "window_s", "min_updates", "max_staleness"}}

    @model_validator(mode="before")
    @classmethod
    def _fields_of_the_mode(cls, data):
        """A field of another mode is named as such; an asynchronous mode's K is the updates an aggregation
        waits for (given or not); over_selection 0 is what every mode has (a resolved async scenario of an
        older simfl wrote it)."""
        if not isinstance(data, dict):
            return data
        mode = data.get("mode", "sync")
        if mode in cls.OWN:
            own = cls.OWN[mode]
            others = ("concurrency", "buffer_size", "max_staleness", "window_s", "min_updates")
            for name in others:
                if data.get(name) is not None and name not in own:
                    raise ValueError(f"{name} is not a field of mode {mode}"
                                     + ("; set mode: async or window" if mode == "sync" else ""))
            if mode != "sync":
                if data.get("over_selection") or data.get("deadline_s") is not None:
                    raise ValueError(f"mode {mode} has no rounds to over-select or cut off: leave out "
                                     "over_selection and deadline_s")
                data = {k: v for k, v in data.items() if k not in ("over_selection", "deadline_s")}
                if "clients_per_round" not in data:
                    # (1 where buffer_size is missing: the after-validator then says it is needed)
                    k = (data.get("buffer_size") if mode == "async" else data.get("min_updates")) or 1
                    data = {**data, "clients_per_round": k}
        return data

    @model_validator(mode="after")
    def _target_of_the_selection(self) -> "_Federation":
        if (isinstance(self.selection, SpeedSelectionSpec) and self.selection.target_s is None
                and getattr(self, "deadline_s", None) is None):
            raise ValueError("selection kind speed needs target_s (the round time a client should meet): "
                             "there is no deadline_s to take it from")
        return self


class SyncFederation(_Federation):
    """Synchronous rounds of K uploads (simfl/sim/sync_rounds.py)."""

    mode: Literal["sync"] = Field(
        "sync", description="sync: rounds of K uploads; async: buffered asynchronous aggregation (FedBuff), "
                            "buffer_size updates at a time; window: asynchronous, aggregating every window_s "
                            "seconds or once min_updates arrived (simfl/sim/async_rounds.py).")
    over_selection: float = Field(0.0, ge=0, description="Select ceil(K*(1+o)); close at the K-th upload.")
    deadline_s: float | None = Field(None, gt=0, description="Uploads not finished by then are late.")

    @property
    def clients_selected(self) -> int:
        # round() guards against 10 * 1.1 = 11.000000000000002 selecting 12.
        return math.ceil(round(self.clients_per_round * (1 + self.over_selection), 9))


class _AsyncFederation(_Federation):
    """What both asynchronous modes have: jobs in flight, and the staleness beyond which updates are dropped."""

    concurrency: Int64 | None = Field(None, gt=0, description="async, window: client jobs in flight at once.")
    max_staleness: Int64 | None = Field(None, ge=0, description="async, window: updates more versions old than "
                                                              "this are discarded (default: none is).")

    @property
    def clients_selected(self) -> int:
        return self.concurrency  # the jobs in flight

    @model_validator(mode="after")
    def _k_is_the_aggregations_updates(self) -> "_AsyncFederation":
        if self.concurrency is None:
            raise ValueError(f"mode {self.mode} needs concurrency (client jobs in flight at once)")
        k = self.aggregation_updates
        if self.clients_per_round != k:
            raise ValueError(f"clients_per_round is {k} in mode {self.mode} (the updates an aggregation waits "
                             f"for); leave it out")
        return self


class AsyncFederation(_AsyncFederation):
    """Buffered asynchronous aggregation, FedBuff (simfl/sim/async_rounds.py)."""

    mode: Literal["async"]
    buffer_size: Int64 | None = Field(None, gt=0, description="async: updates per aggregation.")

    @property
    def aggregation_updates(self) -> int:
        if self.buffer_size is None:
            raise ValueError("mode async needs buffer_size (updates per aggregation)")
        return self.buffer_size


class WindowFederation(_AsyncFederation):
    """Asynchronous aggregation by time window, as APPFL does (simfl/sim/async_rounds.py)."""

    mode: Literal["window"]
    window_s: float | None = Field(None, gt=0, description="window: aggregate what arrived every window_s.")
    min_updates: Int64 | None = Field(None, gt=0, description="window: aggregate as soon as this many arrived.")

    @property
    def aggregation_updates(self) -> int:
        if self.window_s is None and self.min_updates is None:
            raise ValueError("mode window needs window_s, min_updates or both")
        return self.min_updates or 1


def _mode_of(value) -> str | None:
    """The round policy a federation names: its mode, sync when it names none."""
    if isinstance(value, dict):
        return str(value.get("mode", "sync"))
    return getattr(value, "mode", None)


FederationSpec = Annotated[
    Union[Annotated[SyncFederation, Tag("sync")], Annotated[AsyncFederation, Tag("async")],
          Annotated[WindowFederation, Tag("window")]],
    Discriminator(_mode_of),
]


class CellSpec(_Frozen):
    downlink_bps: float = Field(gt=0, description="Capacity shared by all downloads in the cell.")
    uplink_bps: float = Field(gt=0, description="Capacity shared by all uploads in the cell.")


class SpeedSpec(_Frozen):
    """A step-time multiplier with median 1."""

    distribution: Literal["fixed", "lognormal"] = Field("fixed", description="fixed (always 1) or lognormal.")
    sigma: float = Field(0.0, ge=0, le=MAX_SIGMA, description="lognormal: the log-sd of the multiplier (at most 10: "
                                                              "beyond, a draw can overflow to 0 or inf).")
    per: Literal["client", "round"] = Field(
        "client", description="client: drawn once per client for the run; round: drawn anew each client-round.")

    @model_validator(mode="after")
    def _sigma_given(self) -> "SpeedSpec":
        if self.distribution == "lognormal" and self.sigma <= 0:
            raise ValueError("lognormal needs sigma > 0 (sigma is the log-sd of the multiplier)")
        if self.distribution == "fixed" and self.sigma != 0:
            raise ValueError(f"distribution fixed takes no sigma (got {self.sigma:g}); use lognormal")
        return self


class LinkVariation(SpeedSpec):
    """How a member's link differs from the network model's rates: a multiplier on both rates (lognormal),
    or (downlink, uplink, latency) drawn from the network model's measured `distribution` (empirical)."""

    distribution: Literal["fixed", "lognormal", "empirical"] = Field(
        "fixed", description="fixed, lognormal (multiplier on both rates) or empirical (the network's distribution).")

    @model_validator(mode="after")
    def _sigma_given(self) -> "LinkVariation":
        if self.distribution == "empirical":
            if self.sigma != 0:
                raise ValueError("distribution empirical takes no sigma: the network model's distribution is used")
            return self
        return SpeedSpec._sigma_given(self)


class AlwaysAvailable(_Frozen):
    kind: Literal["always"]


class TraceAvailability(_Frozen):
    kind: Literal["trace"]
    file: str = Field(description="CSV client,start_s,end_s (client: 0-based index within the group; seconds "
                                  "of simulated time; online over [start_s, end_s)). Relative to the scenario.")


class DiurnalAvailability(_Frozen):
    kind: Literal["diurnal"]
    start_hour: float = Field(ge=0, lt=24, description="Local hour the daily window opens (e.g. 22).")
    end_hour: float = Field(ge=0, lt=24, description="Local hour it closes (e.g. 6: wraps past midnight).")
    utc_offset_h: float | None = Field(
        None, ge=-14, le=14, description="The group's local time zone; default: the offset of start_time.")
    jitter_h: float = Field(0.0, ge=0, le=12, description="Each client's window shifted by a uniform draw in +-jitter_h.")

    @model_validator(mode="after")
    def _window(self) -> "DiurnalAvailability":
        if self.start_hour == self.end_hour:
            raise ValueError(f"start_hour and end_hour are both {self.start_hour:g}: an empty or full-day window; "
                             "use kind: always for always online")
        return self


class OnOffAvailability(_Frozen):
    kind: Literal["on_off"]
    mean_on_s: float = Field(gt=0, description="Mean online period, seconds (exponential).")
    mean_off_s: float = Field(gt=0, description="Mean offline period, seconds (exponential).")


Availability = Annotated[Union[AlwaysAvailable, TraceAvailability, DiurnalAvailability, OnOffAvailability],
                         Field(discriminator="kind")]


class FleetGroup(_Frozen):
    count: Int64 = Field(gt=0, description="Clients in this group.")
    device: str = Field(description="Hardware profile name or path.")
    network: str = Field(description="Network model name or path.")
    cell: str | None = Field(None, description="Shared radio cell (a key of cells).")
    speed: SpeedSpec | None = Field(
        None, description="Step-time multiplier; default: the profile's measured spread if it has one, else fixed.")
    link: LinkVariation = Field(default_factory=LinkVariation, description="How members' links vary.")
    availability: Availability = Field(default_factory=lambda: AlwaysAvailable(kind="always"))
    batch_size: Int64 | None = Field(None, gt=0, description="This group's batch size (default: training.batch_size).")
    local_steps: Steps | None = Field(None, gt=0, description="This group's local steps (default: training's).")
    local_epochs: Steps | None = Field(None, gt=0, description="This group's local epochs (default: training's).")
    dropout_prob: float | None = Field(None, ge=0, le=1, description="This group's dropout (default: federation's).")
    lora_r: Int64 | None = Field(None, gt=0, description="This group's LoRA rank (default: model.lora_r); "
                                                         "model.rank_aggregation says how ranks are aggregated.")
    precision: Precision | None = Field(None, description="This group's precision (default: training.precision).")
    gradient_checkpointing: bool | None = Field(None, description="Whether this group recomputes activations "
                                                                  "(default: training.gradient_checkpointing).")

    @model_validator(mode="after")
    def _one_of_steps_or_epochs(self) -> "FleetGroup":
        if self.local_steps is not None and self.local_epochs is not None:
            raise ValueError("give at most one of local_steps and local_epochs")
        return self


class ServerSpec(_Frozen):
    device: str = Field(description="Hardware profile name or path; needs an aggregation entry.")
    network: str = Field(description="Network model name or path of the server's link.")


class AccountingSpec(_Frozen):
    carbon_g_per_kwh: float = Field(475.0, ge=0, description="Grid carbon intensity.")
    carbon_intensity_file: str | None = Field(
        None, description="Instead of carbon_g_per_kwh: CSV time,g_per_kwh (ISO 8601 times; each value holds "
                          "until the next row). Needs start_time. Relative to the scenario.")
    price_per_kwh: float = Field(0.30, ge=0, description="Energy price per kWh.")
    currency: str = Field("EUR", description="The one currency of every cost figure.")
    exchange_rates: dict[str, float] = Field(
        default_factory=dict, description="Units of `currency` per unit of another currency, for prices given in "
                                          "it (e.g. {EUR: 1.09} when counting in USD).")
    hardware_charge: Literal["life_share", "purchase", "rental"] = Field(
        "life_share", description="What the job pays for the hardware it holds: life_share (a bought device's "
                                  "purchase times the job's share of its service life; a rented one by the hour), "
                                  "purchase (every purchase whole, shared over `jobs`), or rental (every device by "
                                  "the hour at its rental_per_hour). Embodied carbon is charged the same way.")
    jobs: Int64 = Field(1, gt=0, description="With hardware_charge: purchase, the jobs the purchases (and their "
                                             "embodied carbon) are shared over: cost_total is then the cost per job.")

    @model_validator(mode="after")
    def _jobs_share_purchases(self) -> "AccountingSpec":
        if "jobs" in self.model_fields_set and self.jobs != 1 and self.hardware_charge != "purchase":
            raise ValueError(f"jobs shares purchases over jobs, but hardware_charge is {self.hardware_charge}: "
                             "set hardware_charge: purchase")
        return self

    @model_validator(mode="after")
    def _one_intensity(self) -> "AccountingSpec":
        if self.carbon_intensity_file is not None and "carbon_g_per_kwh" in self.model_fields_set:
            raise ValueError("give carbon_g_per_kwh or carbon_intensity_file, not both")
        return self


class ForwardGradientSpec(_Frozen):
    perturbations: Int64 = Field(DEFAULT_PERTURBATIONS, gt=0, description="Random directions per local step (P).")
    mode: Literal["auto", "jvp", "fd"] = Field("auto", description="Forward-mode AD, finite differences, or auto.")
    client_lr: float = Field(0.01, gt=0, description="Client SGD learning rate on the estimate.")
    server_optimizer: OptimizerName = Field("fedavg", description="The server optimizer of the forward-gradient run.")
    server: ServerOptimizer = Field(
        default_factory=FedAvgParams, description="Its hyperparameters (simfl/config/server_optimizers.py: eta, "
                                                  "beta, beta_1, beta_2, epsilon, weight_decay).")
    discriminative: Int64 = Field(1, ge=1, description="Candidates per kept perturbation (FwdLLM sampling).")
    lora_r: Int64 | None = Field(
        None, gt=0, description="Adapter rank of the forward-gradient run (default: model.lora_r); its "
                                "uploads are priced at this adapter's size."
    )
    lora_targets: list[Literal[ATTENTION_LORA_TARGETS]] | None = Field(None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _server_named(cls, data):
        """`server` holds the hyperparameters of server_optimizer: checked against that optimizer's class."""
        if isinstance(data, dict):
            data = {**data, "server": named(data.get("server", {}), data.get("server_optimizer", "fedavg"))}
        return data

    @model_validator(mode="after")
    def _server_matches(self) -> "ForwardGradientSpec":
        if self.server.optimizer != self.server_optimizer:
            raise ValueError(f"server holds the hyperparameters of {self.server.optimizer}, but server_optimizer is "
                             f"{self.server_optimizer}")
        return self


class TrainSpec(_Frozen):
    """Real federated training on the simulated clock (`simfl train`)."""

    data: str = Field("tiny-dialogsum", description="tiny-dialogsum (generated) or a JSONL file of dialogue/summary.")
    tokenizer: str | None = Field(None, description="Tokenizer NAME_OR_PATH (needed with a JSONL file).")
    pretrained: str | None = Field(None, description="Weights NAME_OR_PATH; default: random weights.")
    arch: str | None = Field(
        None, description="Catalog model to train instead of model.name, as a stand-in whose loss curve is "
                          "measured while time and energy are priced for model.name."
    )
    pretrain_steps: Int64 = Field(
        300, ge=0, description="Random-weight stand-in only: central copy-task steps before federated LoRA."
    )
    train_examples: Int64 = Field(2000, gt=0)
    val_examples: Int64 = Field(200, gt=0)
    seq_len: Int64 = Field(32, gt=0)
    target_len: Int64 = Field(16, gt=0)
    eval_every: Int64 = Field(10, gt=0, description="Rounds between validation-loss measurements.")
    client_lr: float = Field(1.0, gt=0, description="Client SGD learning rate (1.0 in the seed paper).")
    staleness_exponent: float = Field(0.5, ge=0, description="Asynchronous modes: an update s versions stale is "
                                                             "weighted (1 + s)^-a (FedBuff's 1/sqrt(1+s) at 0.5; "
                                                             "0: not down-weighted).")
    optimizers: dict[OptimizerName, ServerOptimizer] = Field(
        default_factory=lambda: {"fedavg": FedAvgParams(), "fedavgm": FedAvgMParams(), "fedadam": FedAdamParams(),
                                 "fedadamw": FedAdamWParams()},
        description="Server optimizers to compare, each with its hyperparameters (simfl/config/server_optimizers.py: "
                    "eta, beta, beta_1, beta_2, epsilon, weight_decay).",
    )
    forward_gradient: ForwardGradientSpec | None = Field(None, description="Also run forward-gradient clients.")
    target_val_loss: float | None = Field(None, gt=0, description="Stop a run when val loss reaches it.")

    @field_validator("optimizers", mode="before")
    @classmethod
    def _optimizers_named(cls, v):
        """Each entry's hyperparameters are checked against the class of the optimizer its key names."""
        return {k: named(h, k) for k, h in v.items()} if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _keys_match(self) -> "TrainSpec":
        for name, params in self.optimizers.items():
            if params.optimizer != name:
                raise ValueError(f"optimizers.{name} holds the hyperparameters of {params.optimizer}")
        return self


class TransportSpec(_Frozen):
    """What a transfer costs beyond bits / rate, as measured by emulation (docs/fidelity.md)."""

    framing_factor: float = Field(1.0, ge=1.0, description="Bytes on the wire per payload byte (TCP/IP over "
                                                           "Ethernet: 1514 / 1448 = 1.0456).")
    per_transfer_s: float = Field(0.0, ge=0.0, description="Fixed time every transfer adds (the framework's "
                                                           "hand-off).")
    serialization_bytes_per_s: float | None = Field(
        None, gt=0, description="Payload bytes per second the framework serializes and copies on top of the wire "
                                "time (Flower 1.42 here: 3.3e8); each transfer adds payload / this.")
    source: str = Field(min_length=1, description="Where these figures come from.")

    def added_s(self, payload_bits: float) -> float:
        """The time a transfer of payload_bits takes beyond wire bits / rate."""
        serial_s = payload_bits / 8 / self.serialization_bytes_per_s if self.serialization_bytes_per_s else 0.0
        return self.per_transfer_s + serial_s


class Scenario(_Frozen):
    """A what-if scenario. `hardware` and `networks` hold the resolved data files."""

    name: str = Field(min_length=1)
    seed: Int64 = Field(0, ge=0)
    description: str | None = None
    start_time: AwareDatetime | None = Field(
        None, description="Wall clock at simulated t = 0, ISO 8601 with its UTC offset; needed by a carbon "
                          "intensity file and diurnal availability.")
    model: ModelSpec
    training: TrainingSpec
    federation: FederationSpec
    cells: dict[str, CellSpec] = Field(default_factory=dict)
    fleet: list[FleetGroup] = Field(min_length=1)
    server: ServerSpec
    accounting: AccountingSpec = Field(default_factory=AccountingSpec)
    transport: TransportSpec | None = Field(None, description="Transfer overheads beyond bits / rate; none by "
                                                              "default.")
    train: TrainSpec | None = Field(None, description="Settings of `simfl train`; ignored by `simfl run`.")
    hardware: dict[str, HardwareProfile] = Field(
        default_factory=dict, description="Profiles by the name the fleet uses; filled by the loader."
    )
    networks: dict[str, NetworkModel] = Field(
        default_factory=dict, description="Network models by the name the fleet uses; filled by the loader."
    )
    _files: DataFiles = PrivateAttr(default_factory=DataFiles)

    @property
    def data_files(self) -> DataFiles:
        """The availability traces and carbon series this scenario names, read once (by the loader, which checks
        them) and shared by its copies: build reads none of them again."""
        return self._files

    @field_validator("start_time", mode="before")
    @classmethod
    def _iso(cls, v):
        """ISO 8601 text (strict models take no text for datetimes otherwise); it must carry its UTC offset."""
        if isinstance(v, str):
            from datetime import datetime

            try:
                v = datetime.fromisoformat(v)
            except ValueError:
                raise ValueError("start_time must be ISO 8601, e.g. 2026-06-01T00:00:00+02:00") from None
        if hasattr(v, "tzinfo") and v.tzinfo is None:
            raise ValueError("start_time needs its UTC offset, e.g. 2026-06-01T00:00:00+02:00")
        return v

    @property
    def population(self) -> int:
        return sum(g.count for g in self.fleet)

    @model_validator(mode="after")
    def _consistent(self) -> "Scenario":
        if self.population > MAX_POPULATION:
            raise ValueError(f"fleet: {self.population:,} clients in all; simfl builds at most {MAX_POPULATION:,} "
                             f"(each client is held in memory, about 300 bytes)")
        for i, g in enumerate(self.fleet):
            if g.cell is not None and g.cell not in self.cells:
                raise ValueError(f"fleet[{i}].cell {g.cell!r} is not a key of cells")
            if g.availability.kind == "diurnal" and self.start_time is None:
                raise ValueError(f"fleet[{i}].availability: diurnal availability needs start_time (the wall clock "
                                 "at t = 0)")
            if g.lora_r is not None and self.model.finetuning != "lora":
                raise ValueError(f"fleet[{i}].lora_r: a LoRA rank ({g.lora_r}) needs model.finetuning lora, not "
                                 f"{self.model.finetuning}")
            if g.link.distribution == "empirical" and g.network in self.networks \
                    and self.networks[g.network].distribution is None:
                raise ValueError(f"fleet[{i}].link: network {g.network!r} has no measured distribution; "
                                 "empirical links need one (e.g. lte-errant)")
        if self.accounting.carbon_intensity_file is not None and self.start_time is None:
            raise ValueError("accounting.carbon_intensity_file needs start_time (the wall clock at t = 0)")
        fed = self.federation
        # (an over_selection such as 1e308 makes K (1 + o) infinite: more than any fleet, not an OverflowError)
        sync = isinstance(fed, SyncFederation)
        finite = not sync or math.isfinite(fed.clients_per_round * (1 + fed.over_selection))
        selected = fed.clients_selected if finite else math.inf
        if selected > self.population:
            if not sync:
                raise ValueError(f"federation.concurrency is {fed.concurrency} client jobs at once, but the fleet "
                                 f"has {self.population} clients")
            raise ValueError(
                f"federation selects {selected if finite else 'too many to count:'} clients a round "
                f"(clients_per_round {fed.clients_per_round}, over_selection {fed.over_selection:g}) but the fleet "
                f"has {self.population}"
            )
        if fed.rounds > MAX_ROUNDS:
            raise ValueError("federation.rounds: " + work_error("rounds", fed.rounds, MAX_ROUNDS,
                                                                "each round is simulated event by event"))
        if self.client_rounds > MAX_CLIENT_ROUNDS:
            raise ValueError(f"federation: {fed.rounds:,} rounds x {self.client_rounds // fed.rounds:,} clients a "
                             "round = " + work_error("client-rounds", self.client_rounds, MAX_CLIENT_ROUNDS,
                                                     "each is simulated; about five hours of one core"))
        return self

    def training_config(self, group: int) -> TrainingConfig:
        """What fleet group `group` trains: its batch size (or training's), its LoRA rank (or the model's), the
        model's targets."""
        m, tr, g = self.model, self.training, self.fleet[group]
        return TrainingConfig(m.name, m.finetuning, tr.method, tr.seq_len, tr.target_len,
                              g.batch_size or tr.batch_size, self.lora_ranks[group], tuple(m.lora_targets),
                              tr.perturbations, tr.optimizer, lora_alpha=m.lora_alpha,
                              precision=g.precision or tr.precision, quantization=m.quantization,
                              gradient_checkpointing=(tr.gradient_checkpointing if g.gradient_checkpointing is None
                                                      else g.gradient_checkpointing))

    @property
    def lora_ranks(self) -> list[int]:
        """Each fleet group's LoRA rank: fleet[i].lora_r, else model.lora_r."""
        return group_ranks(self.model.lora_r, [g.lora_r for g in self.fleet])

    @property
    def client_rounds(self) -> int:
        """The client jobs a run is asked for: rounds x the clients selected a round (asynchronous modes: x the
        jobs in flight, or the updates an aggregation waits for where that is more)."""
        fed = self.federation
        return fed.rounds * max(fed.clients_selected, fed.clients_per_round)
