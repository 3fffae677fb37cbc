"""The scenario schema: what a user writes in a scenario YAML file."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from simfl.catalog import CATALOG
from simfl.config.base import StrictModel
from simfl.config.profiles import Finetuning, HardwareProfile, NetworkModel, TrainingMethod


# The population is built in memory before a run: 1,000,000 clients took 2.7 s and 324 MB here.
MAX_POPULATION = 10_000_000


class _Frozen(StrictModel):
    pass


class ModelSpec(_Frozen):
    name: str = Field(description="Catalog model: " + ", ".join(CATALOG))
    finetuning: Finetuning = Field("lora", description="lora trains adapters; full trains all weights.")
    lora_r: int = Field(16, gt=0, description="LoRA rank.")
    lora_alpha: float = Field(32.0, gt=0, description="LoRA scaling numerator.")
    lora_targets: list[Literal["q", "k", "v", "o"]] = Field(
        default_factory=lambda: ["q", "v"], min_length=1, description="Adapted attention projections."
    )
    bits_per_param: int = Field(32, gt=0, description="Bits per parameter on the wire.")

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in CATALOG:
            raise ValueError(f"unknown model {v!r}; known: {', '.join(CATALOG)}")
        return v


class TrainingSpec(_Frozen):
    batch_size: int = Field(gt=0, description="Samples per local step.")
    local_steps: int | None = Field(None, gt=0, description="Steps per client per round.")
    local_epochs: int | None = Field(
        None, gt=0, description="Instead of local_steps: passes over the client's own samples."
    )
    seq_len: int = Field(512, gt=0, description="Input tokens per sample.")
    target_len: int = Field(95, gt=0, description="Output tokens per sample.")
    method: TrainingMethod = Field("backprop", description="backprop or forward_gradient.")
    perturbations: int | None = Field(
        None, gt=0, description="forward_gradient: perturbations per step (selects the profile entries)."
    )

    @model_validator(mode="after")
    def _steps_or_epochs(self) -> "TrainingSpec":
        if (self.local_steps is None) == (self.local_epochs is None):
            raise ValueError("give exactly one of local_steps and local_epochs")
        if self.method == "forward_gradient" and self.perturbations is None:
            raise ValueError("method forward_gradient needs perturbations")
        return self


class PartitionSpec(_Frozen):
    dirichlet_alpha: float = Field(1.0, gt=0, description="Concentration of the Dirichlet split.")
    samples: int = Field(14732, gt=0, description="Training samples split over the population.")


class FederationSpec(_Frozen):
    clients_per_round: int = Field(gt=0, description="K: uploads the server waits for.")
    rounds: int = Field(gt=0, description="FL rounds to simulate.")
    over_selection: float = Field(0.0, ge=0, description="Select ceil(K*(1+o)); close at the K-th upload.")
    deadline_s: float | None = Field(None, gt=0, description="Uploads not finished by then are late.")
    dropout_prob: float = Field(0.0, ge=0, le=1, description="Chance a selected client fails mid-work.")
    partition: PartitionSpec = Field(default_factory=PartitionSpec)

    @property
    def clients_selected(self) -> int:
        # round() guards against 10 * 1.1 = 11.000000000000002 selecting 12.
        return math.ceil(round(self.clients_per_round * (1 + self.over_selection), 9))


class CellSpec(_Frozen):
    downlink_bps: float = Field(gt=0, description="Capacity shared by all downloads in the cell.")
    uplink_bps: float = Field(gt=0, description="Capacity shared by all uploads in the cell.")


class FleetGroup(_Frozen):
    count: int = Field(gt=0, description="Clients in this group.")
    device: str = Field(description="Hardware profile name or path.")
    network: str = Field(description="Network model name or path.")
    cell: str | None = Field(None, description="Shared radio cell (a key of cells).")


class ServerSpec(_Frozen):
    device: str = Field(description="Hardware profile name or path; needs an aggregation entry.")
    network: str = Field(description="Network model name or path of the server's link.")


class AccountingSpec(_Frozen):
    carbon_g_per_kwh: float = Field(475.0, ge=0, description="Grid carbon intensity.")
    price_per_kwh: float = Field(0.30, ge=0, description="Energy price per kWh.")
    currency: str = "EUR"


class ForwardGradientSpec(_Frozen):
    perturbations: int = Field(16, gt=0, description="Random directions per local step (P).")
    mode: Literal["auto", "jvp", "fd"] = Field("auto", description="Forward-mode AD, finite differences, or auto.")
    client_lr: float = Field(0.01, gt=0, description="Client SGD learning rate on the estimate.")
    server_optimizer: Literal["fedavg", "fedavgm", "fedadam", "fedadamw"] = "fedavg"
    server: dict[str, float] = Field(default_factory=dict, description="Server optimizer hyperparameters.")
    discriminative: int = Field(1, ge=1, description="Candidates per kept perturbation (FwdLLM sampling).")
    lora_r: int | None = Field(
        None, gt=0, description="Adapter rank of the forward-gradient run (default: model.lora_r); its "
                                "uploads are priced at this adapter's size."
    )
    lora_targets: list[Literal["q", "k", "v", "o"]] | None = Field(None, min_length=1)


class TrainSpec(_Frozen):
    """Real federated training on the simulated clock (`simfl train`)."""

    data: str = Field("tiny-dialogsum", description="tiny-dialogsum (generated) or a JSONL file of dialogue/summary.")
    tokenizer: str | None = Field(None, description="Tokenizer NAME_OR_PATH (needed with a JSONL file).")
    pretrained: str | None = Field(None, description="Weights NAME_OR_PATH; default: random weights.")
    arch: str | None = Field(
        None, description="Catalog model to train instead of model.name, as a stand-in whose loss curve is "
                          "measured while time and energy are priced for model.name."
    )
    pretrain_steps: int = Field(
        300, ge=0, description="Random-weight stand-in only: central copy-task steps before federated LoRA."
    )
    train_examples: int = Field(2000, gt=0)
    val_examples: int = Field(200, gt=0)
    seq_len: int = Field(32, gt=0)
    target_len: int = Field(16, gt=0)
    eval_every: int = Field(10, gt=0, description="Rounds between validation-loss measurements.")
    client_lr: float = Field(1.0, gt=0, description="Client SGD learning rate (1.0 in the seed paper).")
    optimizers: dict[Literal["fedavg", "fedavgm", "fedadam", "fedadamw"], dict[str, float]] = Field(
        default_factory=lambda: {"fedavg": {}, "fedavgm": {}, "fedadam": {}, "fedadamw": {}},
        description="Server optimizers to compare, each with its hyperparameters (eta, beta, ...).",
    )
    forward_gradient: ForwardGradientSpec | None = Field(None, description="Also run forward-gradient clients.")
    target_val_loss: float | None = Field(None, gt=0, description="Stop a run when val loss reaches it.")


class Scenario(_Frozen):
    """A what-if scenario. `hardware` and `networks` hold the resolved data files."""

    name: str = Field(min_length=1)
    seed: int = Field(0, ge=0)
    description: str | None = None
    model: ModelSpec
    training: TrainingSpec
    federation: FederationSpec
    cells: dict[str, CellSpec] = Field(default_factory=dict)
    fleet: list[FleetGroup] = Field(min_length=1)
    server: ServerSpec
    accounting: AccountingSpec = Field(default_factory=AccountingSpec)
    train: TrainSpec | None = Field(None, description="Settings of `simfl train`; ignored by `simfl run`.")
    hardware: dict[str, HardwareProfile] = Field(
        default_factory=dict, description="Profiles by the name the fleet uses; filled by the loader."
    )
    networks: dict[str, NetworkModel] = Field(
        default_factory=dict, description="Network models by the name the fleet uses; filled by the loader."
    )

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
        selected = self.federation.clients_selected
        if selected > self.population:
            fed = self.federation
            raise ValueError(
                f"federation selects {selected} clients a round (clients_per_round {fed.clients_per_round}, "
                f"over_selection {fed.over_selection:g}) but the fleet has {self.population}"
            )
        return self
