"""The model: a catalog architecture built with random weights (or from_pretrained), LoRA or full
fine-tuning, and its optimizer."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from simfl.catalog import Architecture, DecoderArchitecture
from simfl.training import (DEFAULT_FINETUNING, DEFAULT_GRADIENT_CHECKPOINTING, DEFAULT_LORA_ALPHA, DEFAULT_LORA_R,
                            DEFAULT_LORA_TARGETS, DEFAULT_LR, DEFAULT_OPTIMIZER, DEFAULT_PRECISION,
                            DEFAULT_QUANTIZATION, DEFAULT_SEQ_LEN, DEFAULT_TARGET_LEN, TrainingConfig)

HALF_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "bf16-true": torch.bfloat16}


@dataclass(frozen=True)
class KernelSpec:
    """What building and stepping a model takes: the shape of a TrainingConfig (of any model, at any batch) and
    what only a real run has (dropout, learning rate, seed, weights, data)."""

    finetuning: str = DEFAULT_FINETUNING  # lora | full
    lora_r: int = DEFAULT_LORA_R
    lora_alpha: float = DEFAULT_LORA_ALPHA
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = DEFAULT_LORA_TARGETS
    optimizer: str = DEFAULT_OPTIMIZER  # sgd (lr 1.0, no momentum, as in the seed paper) | adamw
    lr: float = DEFAULT_LR[DEFAULT_OPTIMIZER]
    seq_len: int = DEFAULT_SEQ_LEN
    target_len: int = DEFAULT_TARGET_LEN
    seed: int = 0
    pretrained: str | None = None
    data: str | None = None  # JSONL of {"dialogue"|"input": ..., "summary"|"target": ...}
    tokenizer: str | None = None  # from_pretrained(NAME_OR_PATH); needed with data
    eager_attention: bool = False  # forward-mode AD (jvp) needs it: SDPA has no forward AD on CPU
    vocab_size: int | None = None  # override the architecture's (a project-built tokenizer's size)
    precision: str = DEFAULT_PRECISION  # bf16/fp16: a LoRA base held in half precision, steps under autocast
    gradient_checkpointing: bool = DEFAULT_GRADIENT_CHECKPOINTING
    quantization: str = DEFAULT_QUANTIZATION  # int8/nf4 need bitsandbytes on CUDA (refused before building)

    @property
    def autocast_dtype(self):
        """The dtype steps autocast to (None: fp32 or tf32, no autocast)."""
        return HALF_DTYPES.get(self.precision)

    @classmethod
    def of(cls, c: TrainingConfig, *, lr: float | None = None, **runtime) -> "KernelSpec":
        """The spec of configuration `c` (its model, method and batch are the caller's to use), with the
        runtime-only fields given; lr by default the optimizer's (simfl.training.DEFAULT_LR)."""
        return cls(finetuning=c.finetuning, lora_r=c.lora_r, lora_alpha=c.lora_alpha, lora_targets=c.lora_targets,
                   optimizer=c.optimizer, lr=DEFAULT_LR[c.optimizer] if lr is None else lr, seq_len=c.seq_len,
                   target_len=c.target_len, precision=c.precision, gradient_checkpointing=c.gradient_checkpointing,
                   quantization=c.quantization, **runtime)


# peft module names of each catalog LoRA target, per architecture kind
DECODER_TARGETS = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj",
                   "gate": "gate_proj", "up": "up_proj", "down": "down_proj"}


def peft_targets(arch: DecoderArchitecture, targets) -> list[str]:
    """The peft module names of LoRA `targets` (fused projections: Phi-3's qkv_proj and gate_up_proj)."""
    return sorted(f"{t}_proj" for t in arch.adapted(targets))


def decoder_config(arch: DecoderArchitecture, vocab_size: int | None = None):
    """The transformers configuration of a catalog decoder (Llama, Qwen2 or Gemma 3 text), or of one built from
    a config.json (its model_type's configuration class)."""
    common = dict(vocab_size=vocab_size or arch.vocab_size, hidden_size=arch.d_model, intermediate_size=arch.d_ff,
                  num_hidden_layers=arch.num_layers, num_attention_heads=arch.num_heads,
                  num_key_value_heads=arch.num_kv_heads, head_dim=arch.head_dim,
                  tie_word_embeddings=arch.tied_embeddings, pad_token_id=0, bos_token_id=1, eos_token_id=1)
    if arch.model_type and arch.model_type != "gemma3_text":
        from transformers import AutoConfig

        extra = {"sliding_window": arch.sliding_window} if arch.sliding_window else {}
        return AutoConfig.for_model(arch.model_type, **common, **extra)
    if arch.qk_norm:  # Gemma 3
        from transformers import Gemma3TextConfig

        return Gemma3TextConfig(**common, sliding_window=arch.sliding_window,
                                layer_types=["full_attention" if (i + 1) % arch.global_every == 0
                                             else "sliding_attention" for i in range(arch.num_layers)])
    if arch.qkv_bias:  # Qwen2
        from transformers import Qwen2Config

        return Qwen2Config(**common)
    from transformers import LlamaConfig

    return LlamaConfig(**common)


def build_decoder(arch: DecoderArchitecture, spec: KernelSpec) -> torch.nn.Module:
    """A catalog decoder from its configuration with random weights, or pretrained; LoRA as the spec says."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(spec.seed)
    attn = {"attn_implementation": "eager"} if spec.eager_attention else {}
    if spec.pretrained:
        model = AutoModelForCausalLM.from_pretrained(spec.pretrained, **attn)
    else:
        model = AutoModelForCausalLM.from_config(decoder_config(arch, spec.vocab_size), **attn)
    return _for_training(model, spec, "CAUSAL_LM", peft_targets(arch, spec.lora_targets))


def _for_training(model: torch.nn.Module, spec: KernelSpec, task_type: str, targets: list[str]) -> torch.nn.Module:
    """LoRA adapters on `targets` (peft module names), or every weight trainable (full); training mode. Under
    bf16/fp16 a LoRA base is held in half precision (its adapters stay fp32: peft's default) and full
    fine-tuning keeps fp32 weights (autocast casts them per op); with gradient checkpointing every layer keeps
    only its input and recomputes the rest in the backward pass."""
    if spec.quantization != "none":
        raise ValueError(f"quantization {spec.quantization} needs bitsandbytes on a CUDA device")
    if spec.precision == "bf16-true" or (spec.finetuning == "lora" and spec.autocast_dtype is not None):
        model = model.to(spec.autocast_dtype)  # bf16-true: every weight (and so its gradient and moments) in bf16
    if spec.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if spec.finetuning == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(task_type=task_type, r=spec.lora_r, lora_alpha=spec.lora_alpha,
                          lora_dropout=spec.lora_dropout, target_modules=targets, bias="none")
        model = get_peft_model(model, lora, autocast_adapter_dtype=spec.precision != "bf16-true")
    else:
        for p in model.parameters():
            p.requires_grad_(True)
    model.train()
    return model


def build_model(arch: Architecture, spec: KernelSpec, base_state: dict | None = None) -> torch.nn.Module:
    """FLAN-T5 from its configuration with random weights (same FLOPs and step time), or pretrained.

    Random weights: the architecture's config, seeded. The LM head is untied from
    the shared embedding as in FLAN-T5 (transformers 5 ties it whatever the config
    says), so parameter counts match the published model.
    """
    if isinstance(arch, DecoderArchitecture):
        assert base_state is None, "a stand-in base state is a T5 feature"
        return build_decoder(arch, spec)
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(spec.seed)
    attn = {"attn_implementation": "eager"} if spec.eager_attention else {}
    if spec.pretrained:
        model = T5ForConditionalGeneration.from_pretrained(spec.pretrained, **attn)
    else:
        config = T5Config(
            vocab_size=spec.vocab_size or arch.vocab_size, d_model=arch.d_model, d_ff=arch.d_ff, d_kv=arch.d_kv,
            num_heads=arch.num_heads, num_layers=arch.num_layers, num_decoder_layers=arch.num_decoder_layers,
            feed_forward_proj="gated-gelu", tie_word_embeddings=False, decoder_start_token_id=0,
            pad_token_id=0, eos_token_id=1,
        )
        if spec.eager_attention:
            config._attn_implementation = "eager"
        model = T5ForConditionalGeneration(config)
        model.lm_head.weight = torch.nn.Parameter(model.shared.weight.detach().clone())
    if base_state is not None:
        model.load_state_dict(base_state)  # e.g. a pretrained stand-in base (simfl train)
    return _for_training(model, spec, "SEQ_2_SEQ_LM", list(spec.lora_targets))


def trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def make_optimizer(model: torch.nn.Module, spec: KernelSpec) -> torch.optim.Optimizer:
    params = trainable(model)
    if spec.optimizer == "adamw-8bit":
        raise ValueError("optimizer adamw-8bit needs bitsandbytes on a CUDA device")
    if spec.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=spec.lr)
    return torch.optim.SGD(params, lr=spec.lr, momentum=0.0)
