"""The training kernel: a FLAN-T5 with LoRA (or full fine-tuning), seeded token batches, one timed step."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from simfl.catalog import Architecture, DecoderArchitecture

PHASES = ("batch_load", "forward", "loss", "backward", "optimizer_step")
FG_PHASES = ("batch_load", "perturb_and_forward", "optimizer_step")


@dataclass(frozen=True)
class KernelSpec:
    finetuning: str = "lora"  # lora | full
    lora_r: int = 16
    lora_alpha: float = 32.0
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ("q", "v")
    optimizer: str = "sgd"  # sgd (lr 1.0, no momentum, as in the seed paper) | adamw
    lr: float = 1.0
    seq_len: int = 512
    target_len: int = 95
    seed: int = 0
    pretrained: str | None = None
    data: str | None = None  # JSONL of {"dialogue"|"input": ..., "summary"|"target": ...}
    tokenizer: str | None = None  # from_pretrained(NAME_OR_PATH); needed with data
    eager_attention: bool = False  # forward-mode AD (jvp) needs it: SDPA has no forward AD on CPU
    vocab_size: int | None = None  # override the architecture's (a project-built tokenizer's size)


# peft module names of each catalog LoRA target, per architecture kind
DECODER_TARGETS = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj",
                   "gate": "gate_proj", "up": "up_proj", "down": "down_proj"}


def decoder_config(arch: DecoderArchitecture, vocab_size: int | None = None):
    """The transformers configuration of a catalog decoder (Llama, Qwen2 or Gemma 3 text)."""
    common = dict(vocab_size=vocab_size or arch.vocab_size, hidden_size=arch.d_model, intermediate_size=arch.d_ff,
                  num_hidden_layers=arch.num_layers, num_attention_heads=arch.num_heads,
                  num_key_value_heads=arch.num_kv_heads, head_dim=arch.head_dim,
                  tie_word_embeddings=arch.tied_embeddings, pad_token_id=0, bos_token_id=1, eos_token_id=1)
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
    return _for_training(model, spec, "CAUSAL_LM", [DECODER_TARGETS[t] for t in spec.lora_targets])


def _for_training(model: torch.nn.Module, spec: KernelSpec, task_type: str, targets: list[str]) -> torch.nn.Module:
    """LoRA adapters on `targets` (peft module names), or every weight trainable (full); training mode."""
    if spec.finetuning == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(task_type=task_type, r=spec.lora_r, lora_alpha=spec.lora_alpha,
                          lora_dropout=spec.lora_dropout, target_modules=targets, bias="none")
        model = get_peft_model(model, lora)
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
    if spec.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=spec.lr)
    return torch.optim.SGD(params, lr=spec.lr, momentum=0.0)


def random_batch(batch_size: int, spec: KernelSpec, vocab_size: int, gen: torch.Generator):
    """Token ids drawn uniformly (ids 2.. avoid pad 0 and eos 1), on the CPU like a data loader's output."""
    inputs = torch.randint(2, vocab_size, (batch_size, spec.seq_len), generator=gen)
    labels = torch.randint(2, vocab_size, (batch_size, spec.target_len), generator=gen)
    return inputs, labels


IGNORE_INDEX = -100  # label positions that are padding: no loss


def text_batches(spec: KernelSpec, batch_size: int, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`count` batches of real text from spec.data, tokenized to seq_len / target_len (padded, truncated)."""
    from transformers import AutoTokenizer

    from simfl.fl.data import encode, load_jsonl

    tok = AutoTokenizer.from_pretrained(spec.tokenizer)
    rows = load_jsonl(spec.data)
    chunks = [[rows[(b * batch_size + i) % len(rows)] for i in range(batch_size)] for b in range(count)]
    return [encode(chunk, tok, spec.seq_len, spec.target_len) for chunk in chunks]


def model_inputs(model, inputs: torch.Tensor, labels: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """(keyword inputs of the forward pass, the targets its logits are scored against).

    Encoder-decoder (T5): the encoder reads the prompt, the decoder the labels shifted right (padding -100
    becomes the pad id 0, as T5 does); every decoder position is scored. Decoder-only: prompt and labels
    are one sequence; position i predicts token i + 1, and only the label tokens are scored (the prompt's
    targets are -100), the usual supervised fine-tuning loss.
    """
    if getattr(getattr(model, "config", None), "is_encoder_decoder", True):  # a bare callable: T5 (simfl train)
        decoder_inputs = torch.cat([torch.zeros_like(labels[:, :1]), labels[:, :-1]], dim=1).clamp(min=0)
        return {"input_ids": inputs, "decoder_input_ids": decoder_inputs}, labels
    ids = torch.cat([inputs, labels.clamp(min=0)], dim=1)
    targets = torch.cat([torch.full_like(inputs, IGNORE_INDEX), labels], dim=1)[:, 1:]
    targets = torch.cat([targets, torch.full_like(targets[:, :1], IGNORE_INDEX)], dim=1)  # the last predicts nothing
    return {"input_ids": ids}, targets


def token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX)


def seq2seq_loss(model, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Token cross-entropy of the labels given the inputs, padding (-100) ignored (either architecture)."""
    kwargs, targets = model_inputs(model, inputs, labels)
    return token_loss(model(**kwargs).logits, targets)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # a CPU-GPU sync point: phases only add up with it


class PhaseTimer:
    """mark(phase) ends a phase: sync the device, record the time since the last mark."""

    def __init__(self, device: torch.device):
        self.device = device
        self.times: dict[str, float] = {}
        self.t = time.perf_counter()

    def mark(self, phase: str) -> None:
        _sync(self.device)
        now = time.perf_counter()
        self.times[phase] = now - self.t
        self.t = now

    def result(self, phases: tuple[str, ...]) -> dict[str, float]:
        return {**self.times, "step": sum(self.times[p] for p in phases)}


def timed_step(model, optimizer, batch, device: torch.device) -> dict[str, float]:
    """One training step, timed per phase; the phases add up to the step (sync at every boundary)."""
    timer = PhaseTimer(device)
    mark = timer.mark

    inputs, labels = batch
    inputs, labels = inputs.to(device, non_blocking=True), labels.to(device, non_blocking=True)
    kwargs, targets = model_inputs(model, inputs, labels)
    mark("batch_load")
    logits = model(**kwargs).logits
    mark("forward")
    loss = token_loss(logits, targets)
    mark("loss")
    loss.backward()
    mark("backward")
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    mark("optimizer_step")
    return timer.result(PHASES)


def timed_fg_step(fg, batch, device: torch.device, lr: float) -> dict[str, float]:
    """One forward-gradient step (FwdLLM): P perturbed forward passes, no backward, then the update."""
    timer = PhaseTimer(device)
    mark = timer.mark

    inputs, labels = (b.to(device, non_blocking=True) for b in batch)
    mark("batch_load")
    theta = {n: p.detach() for n, p in fg.model.named_parameters() if p.requires_grad}
    g, _ = fg.estimate(theta, (inputs, labels))
    mark("perturb_and_forward")
    with torch.no_grad():
        params = dict(fg.model.named_parameters())
        for n, gn in g.items():
            params[n].sub_(lr * gn)
    mark("optimizer_step")
    return timer.result(FG_PHASES)


def is_oom(e: BaseException) -> bool:
    """torch's out-of-memory error on CUDA, or an allocator failure on the CPU."""
    if isinstance(e, torch.OutOfMemoryError):
        return True
    msg = str(e).lower()
    return isinstance(e, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg)
