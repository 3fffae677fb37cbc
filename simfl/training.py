"""The training configuration of a model: its one type, the choices of each field, every default, one check."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from simfl.catalog import (ATTENTION_LORA_TARGETS, BUILTIN_MODELS, CATALOG, FEED_FORWARD_LORA_TARGETS, LORA_TARGETS,
                           T5Architecture)
from simfl.errors import ScenarioError, short

FINETUNING = ("lora", "full")  # lora trains adapters; full trains every weight
METHODS = ("backprop", "forward_gradient")  # forward_gradient: FwdLLM's perturbed forward passes, no backward
OPTIMIZERS = ("sgd", "adamw", "adamw-8bit")  # sgd: no momentum, lr 1.0, as in the seed paper; adamw-8bit: AdamW
# with both moments kept in 8 bits (bitsandbytes), a byte each a trainable parameter
# Arithmetic of the step: fp32; tf32 (fp32 tensors, matmuls on tensor cores); bf16 and fp16 (mixed precision:
# autocast runs matmuls in half precision, a frozen base is held in half precision, trained weights keep fp32
# master copies, as transformers and peft do)
# bf16-true: everything in bf16 (weights, gradients, optimizer state, no fp32 master copies), as torchtune and
# Lightning's "bf16-true" train
PRECISIONS = ("fp32", "tf32", "bf16", "fp16", "bf16-true")
# The frozen base weights of LoRA: as trained (none), or quantized (QLoRA: int8 LLM.int8, nf4 4-bit NormalFloat)
QUANTIZATIONS = ("none", "int8", "nf4")

# The defaults, each here and nowhere else: the seed paper's LoRA FLAN-T5 setup, which simfl calibrate measures
DEFAULT_FINETUNING = "lora"
DEFAULT_METHOD = "backprop"
DEFAULT_SEQ_LEN = 512  # input tokens per sample
DEFAULT_TARGET_LEN = 95  # output tokens per sample
DEFAULT_BATCH_SIZE = 1
DEFAULT_LORA_R = 16
DEFAULT_LORA_ALPHA = 32.0
DEFAULT_LORA_TARGETS = ("q", "v")
DEFAULT_OPTIMIZER = "sgd"
DEFAULT_PRECISION = "fp32"
DEFAULT_QUANTIZATION = "none"
DEFAULT_GRADIENT_CHECKPOINTING = False
DEFAULT_LR = {"sgd": 1.0, "adamw": 1e-4}  # of each optimizer, where none is given
DEFAULT_PERTURBATIONS = 16  # forward_gradient's P where a command line or `simfl train` names none


def lora_targets_of(model: str) -> tuple[str, ...]:
    """The LoRA targets `model` has: q, k, v, o in an encoder-decoder (T5) model, also gate, up, down in a
    decoder-only one."""
    return ATTENTION_LORA_TARGETS if isinstance(CATALOG[model], T5Architecture) else LORA_TARGETS


def check_lora_targets(model: str, targets: tuple[str, ...] | list[str]) -> None:
    """Raise ValueError, one sentence, unless `targets` are some of the LoRA targets `model` has."""
    if not targets:
        raise ValueError(f"give at least one LoRA target of {', '.join(lora_targets_of(model))}")
    unknown = [t for t in targets if t not in LORA_TARGETS]
    if unknown:
        raise ValueError(f"unknown LoRA target{'s' if len(unknown) > 1 else ''} {', '.join(map(str, unknown))}; "
                         f"known: {', '.join(LORA_TARGETS)}")
    missing = [t for t in targets if t not in lora_targets_of(model)]
    if missing:
        raise ValueError(f"{model} is an encoder-decoder model: its LoRA targets are "
                         f"{', '.join(ATTENTION_LORA_TARGETS)}, not {', '.join(missing)}")


def default_adapter(target_len: int, lora_r: int, lora_targets) -> bool:
    """True when the target length, rank and targets are the defaults: a description leaves them out."""
    return (target_len, lora_r, tuple(sorted(lora_targets))) == (DEFAULT_TARGET_LEN, DEFAULT_LORA_R,
                                                                  tuple(sorted(DEFAULT_LORA_TARGETS)))


def _choice(field: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ScenarioError(f"expected {', '.join(allowed[:-1])} or {allowed[-1]}, got {short(value)}", field=field)


def _positive(field: str, value: object, integer: bool = True) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (number and 0 < value < math.inf and (not integer or value == int(value))):
        shown = f"{value:g}" if isinstance(value, float) else short(value)
        raise ScenarioError(f"must be a positive {'integer' if integer else 'number'}, got {shown}", field=field)


@dataclass(frozen=True)
class TrainingConfig:
    """One training configuration of a model: what a profile point, a scenario's fleet group or a command line
    names. check() says in one sentence, naming the field, what is wrong with it."""

    model: str
    finetuning: str = DEFAULT_FINETUNING  # one of FINETUNING
    method: str = DEFAULT_METHOD  # one of METHODS
    seq_len: int = DEFAULT_SEQ_LEN
    target_len: int = DEFAULT_TARGET_LEN
    batch_size: int = DEFAULT_BATCH_SIZE
    lora_r: int = DEFAULT_LORA_R
    lora_targets: tuple[str, ...] = DEFAULT_LORA_TARGETS
    perturbations: int | None = None  # forward_gradient: random directions per step
    optimizer: str = DEFAULT_OPTIMIZER  # one of OPTIMIZERS
    lora_alpha: float = DEFAULT_LORA_ALPHA  # the adapters' scale numerator; no part of a step's cost
    precision: str = DEFAULT_PRECISION  # one of PRECISIONS
    quantization: str = DEFAULT_QUANTIZATION  # one of QUANTIZATIONS: the frozen base weights (LoRA only)
    gradient_checkpointing: bool = DEFAULT_GRADIENT_CHECKPOINTING  # keep each layer's input, recompute the rest

    def at_batch(self, batch_size: int) -> TrainingConfig:
        return replace(self, batch_size=batch_size)

    def key(self) -> tuple:
        """What a measured point must share with this configuration to stand for it (every batch size):
        everything but the batch and lora_alpha."""
        return (self.model, self.finetuning, self.method, self.seq_len, self.target_len, self.lora_r,
                frozenset(self.lora_targets), self.perturbations if self.method == "forward_gradient" else None,
                self.optimizer, self.precision, self.quantization, self.gradient_checkpointing)

    def how(self) -> str:
        """How it trains, where that differs from the seed paper's fp32, SGD, no checkpointing, no quantization:
        '' or e.g. ' bf16 adamw checkpointing nf4'."""
        parts = [self.precision if self.precision != DEFAULT_PRECISION else "",
                 self.optimizer if self.optimizer != DEFAULT_OPTIMIZER else "",
                 "checkpointing" if self.gradient_checkpointing else "",
                 self.quantization if self.quantization != DEFAULT_QUANTIZATION else ""]
        return "".join(f" {p}" for p in parts if p)

    def check(self) -> TrainingConfig:
        """This configuration, if every field is one simfl can train; else a ScenarioError (a ValueError) whose
        field is the TrainingConfig field at fault and whose message is one sentence."""
        if self.model not in CATALOG:
            raise ScenarioError(f"unknown model {short(self.model)}; known: {', '.join(BUILTIN_MODELS)}", field="model")
        _choice("finetuning", self.finetuning, FINETUNING)
        _choice("method", self.method, METHODS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("precision", self.precision, PRECISIONS)
        _choice("quantization", self.quantization, QUANTIZATIONS)
        if self.quantization != "none" and self.finetuning != "lora":
            raise ScenarioError(f"quantization {self.quantization} quantizes the frozen base weights of LoRA "
                                f"(QLoRA); finetuning {self.finetuning} trains them", field="quantization")
        if self.gradient_checkpointing and self.method != "backprop":
            raise ScenarioError(f"gradient_checkpointing saves activations for a backward pass; method "
                                f"{self.method} has none", field="gradient_checkpointing")
        for name in ("seq_len", "target_len", "batch_size", "lora_r"):
            _positive(name, getattr(self, name))
        _positive("lora_alpha", self.lora_alpha, integer=False)
        if self.method == "forward_gradient" and (self.perturbations is None or self.perturbations < 1):
            raise ScenarioError(f"method forward_gradient needs at least one perturbation, got {self.perturbations}",
                                field="perturbations")
        try:
            check_lora_targets(self.model, self.lora_targets)
        except ValueError as e:
            raise ScenarioError(str(e), field="lora_targets") from None
        return self
