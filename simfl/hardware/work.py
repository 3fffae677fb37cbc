"""What one training step asks of a device: FLOPs, bytes moved, activation bytes kept, kernel blocks."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from simfl.catalog import T5Architecture, get_architecture
from simfl.training import TrainingConfig

BYTES_PER_PARAM = 4  # FP32 weights, gradients and activations: how the seed paper and simfl calibrate train
# Bytes the optimizer reads and writes per trainable parameter in its update (SGD: weight, gradient in,
# weight out; AdamW also both moments in and out, in fp32 or, 8-bit AdamW, a byte each).
OPTIMIZER_UPDATE_BYTES = {"sgd": 12, "adamw": 28, "adamw-8bit": 16}
OPTIMIZER_STATE_BYTES = {"sgd": 0, "adamw": 8, "adamw-8bit": 2}  # kept between steps (SGD without momentum: none)
HALF = ("bf16", "fp16", "bf16-true")  # half-precision matmuls, activations and frozen weights
TRUE_HALF = ("bf16-true",)  # ... and trained weights, gradients and optimizer state too: no fp32 master copies
# Bytes of optimizer state per trained parameter when it is held in bf16 (bf16-true: both AdamW moments in bf16)
HALF_OPTIMIZER_STATE_BYTES = {"sgd": 0, "adamw": 4, "adamw-8bit": 2}
# ... and the bytes its update reads and writes (weight and gradient in, weight out at 2 B; moments in and out)
HALF_OPTIMIZER_UPDATE_BYTES = {"sgd": 6, "adamw": 14, "adamw-8bit": 10}
# Bytes per frozen base weight of LoRA by quantization: bitsandbytes' int8 (a byte, per-row scales negligible)
# and nf4 (4 bits, plus one 8-bit absmax per 64 weights with double quantization: 0.5 + 1/64). Embeddings and the
# LM head stay unquantized (bitsandbytes quantizes the linear layers of the blocks).
QUANTIZED_BYTES = {"int8": 1.0, "nf4": 0.5 + 1 / 64}


def element_bytes(precision: str) -> int:
    """Bytes of an activation (and of an unquantized frozen weight of LoRA) at this precision."""
    return 2 if precision in HALF else 4


def embedding_params(arch) -> int:
    """Parameters of the input embedding and LM head (not quantized by QLoRA)."""
    tied = getattr(arch, "tied_embeddings", False)
    return arch.vocab_size * arch.d_model * (1 if tied else 2)

# Saved activations of one sample: bytes per element of each of the architecture's activation_terms,
# fitted to the tensors autograd saves (scripts/measure_activations.py writes activations.yaml).
ACTIVATIONS_FILE = Path(__file__).with_name("activations.yaml")


@functools.lru_cache(maxsize=1)
def activation_coefficients() -> dict:
    import yaml

    return yaml.safe_load(ACTIVATIONS_FILE.read_text())["families"]


@dataclass(frozen=True)
class StepWork:
    """The demands of one step, the inputs of the step-time and memory model.

    flops: FLOPs the step executes; traffic_bytes: bytes it must move through device memory (weights read
    per pass, optimizer update, activations written and read back); blocks: attention and feed-forward
    blocks run (what per-kernel overhead scales with); static_bytes: memory held whatever the batch
    (weights, gradients, optimizer state); activation_bytes: saved activations of the whole batch.
    """

    flops: float
    traffic_bytes: float
    blocks: int
    static_bytes: float
    activation_bytes: float
    forward_gradient: bool
    width: int = 1  # d_model: how wide the step's matrix products are
    logits_bytes: float = 0.0  # the batch's output logits (the loss's backward makes copies of them)
    precision: str = "fp32"  # what the matmuls run at: which datasheet peak applies (model.terms_s)


def family(model: str) -> str:
    return "t5" if isinstance(get_architecture(model), T5Architecture) else "decoder"


AUTOCAST = ("bf16", "fp16")  # mixed precision: autocast casts the matmuls' inputs, the rest stays as it was
KEPT_FP32 = ("scores", "logits")  # under autocast: the softmax's probabilities and the loss's logits stay fp32


def activation_bytes_per_sample(c: TrainingConfig) -> float:
    """Bytes of activations one sample keeps for its backward pass (activations.yaml's fit).

    fp32 and tf32: the fitted bytes. Under autocast (bf16, fp16) the attention probabilities and the logits keep
    their fp32 bytes and the rest keeps the family's measured `half_precision.rest_factor` of them (measured by
    scripts/measure_activations.py half: T5's layer norms and residual stream stay fp32, so it is not 0.5).
    bf16-true (everything in bf16, not measured here): half of every term."""
    terms = get_architecture(c.model).activation_terms(c.seq_len, c.target_len)
    fam = activation_coefficients()[family(c.model)]
    by_term = {k: fam["bytes_per_element"][k] * v for k, v in terms.items()}
    total = sum(by_term.values())
    if c.precision in AUTOCAST and "half_precision" in fam:
        kept = sum(by_term[k] for k in KEPT_FP32)
        total = kept + fam["half_precision"]["rest_factor"] * (total - kept)
    elif c.precision in HALF:
        total = total * element_bytes(c.precision) / BYTES_PER_PARAM
    return total * (fam["full_factor"] if c.finetuning == "full" else 1.0)


def step_work(c: TrainingConfig) -> StepWork:
    """FLOPs and bytes of one step.

    Forward: F = F_lin + F_attn (the catalog's exact matmul count) plus the adapters' f. Backward computes
    input gradients of every matmul (F_lin), both operand gradients of attention's two activation matmuls
    (2 F_attn), and weight gradients only of what is trained: F_lin more for full fine-tuning, 2 f for
    LoRA. So full = 3 F; LoRA = 2 F_lin + 3 F_attn + 3 f. Forward gradient (a vmap of jvp over P
    directions of the adapters): the primal once, then per direction a tangent pass through the same
    matmuls (F_lin + 2 F_attn, both operands of attention varying) and the adapters (2 f); no backward.
    """
    arch = get_architecture(c.model)
    b, s, t = c.batch_size, c.seq_len, c.target_len
    f_all = arch.forward_flops(s, t)
    f_attn = arch.attention_flops(s, t)
    f_lin = f_all - f_attn
    total = arch.total_params()
    lora = c.finetuning == "lora"
    trainable = arch.lora_params(c.lora_r, c.lora_targets) if lora else total
    f_ad = arch.lora_forward_flops(c.lora_r, c.lora_targets, s, t) if lora else 0.0
    act = activation_bytes_per_sample(c)  # at the step's precision
    weights = weight_bytes(c, arch, total)  # what each pass reads
    update = trainable * (HALF_OPTIMIZER_UPDATE_BYTES if c.precision in TRUE_HALF else OPTIMIZER_UPDATE_BYTES)[
        c.optimizer]
    fg = c.method == "forward_gradient"
    if fg:
        if not c.perturbations:
            raise ValueError("forward_gradient needs perturbations")
        p = c.perturbations
        flops = b * (f_all + f_ad + p * (f_lin + 2 * f_attn + 2 * f_ad))
        traffic = ((weights + dequantize_bytes(c, arch, total)) * (1 + p) + update
                   + b * act * (1 + p))  # nothing saved: every pass streams its own
        static = weights + trainable * BYTES_PER_PARAM * (1 + p)  # the directions and the estimate
        kept = b * act  # no graph, but P tangents live at once: the memory model scales this by its own factor
    else:
        flops = b * (3 * f_all if not lora else 2 * f_lin + 3 * f_attn + 3 * f_ad)
        traffic = 2 * weights + (weights if not lora else 0) + update + 2 * b * act
        kept = b * act
        if c.gradient_checkpointing:
            # keep each layer's input only; the backward pass runs every layer's forward again first, with its
            # full activations alive for one layer at a time
            flops += b * (f_all + f_ad)
            traffic += weights + b * act
            kept = b * (checkpoint_bytes_per_sample(c, arch) + act / layers(arch))
        passes = 2 + c.gradient_checkpointing  # forward, backward (input gradients), recomputation
        traffic += passes * dequantize_bytes(c, arch, total)
        static = resident_bytes(c, arch, total, trainable)
    logits = b * arch.activation_terms(s, t)["logits"] * BYTES_PER_PARAM  # the loss upcasts to fp32
    return StepWork(float(flops), float(traffic), arch.blocks(), float(static), float(kept), fg, arch.d_model,
                    float(logits), c.precision)


def layers(arch) -> int:
    """Transformer layers a step runs through (encoder and decoder for T5)."""
    return arch.num_layers + getattr(arch, "num_decoder_layers", 0)


def checkpoint_bytes_per_sample(c: TrainingConfig, arch) -> float:
    """The layer inputs gradient checkpointing keeps of one sample: tokens x d_model at each layer."""
    tokens = (arch.num_layers * c.seq_len + arch.num_decoder_layers * c.target_len
              if hasattr(arch, "num_decoder_layers") else arch.num_layers * (c.seq_len + c.target_len))
    return float(tokens * arch.d_model * element_bytes(c.precision))


def weight_bytes(c: TrainingConfig, arch, total: int) -> float:
    """Bytes of the model's weights as a pass reads them: fp32 (fp32, tf32, and full fine-tuning's master
    weights); a LoRA base in half precision under bf16/fp16; a quantized base's blocks at their bits."""
    if c.finetuning != "lora":
        return float(total * (element_bytes(c.precision) if c.precision in TRUE_HALF else BYTES_PER_PARAM))
    if c.quantization in QUANTIZED_BYTES:
        emb = embedding_params(arch)
        return float((total - emb) * QUANTIZED_BYTES[c.quantization] + emb * element_bytes(c.precision))
    return float(total * element_bytes(c.precision))


def dequantize_bytes(c: TrainingConfig, arch, total: int) -> float:
    """Memory traffic of dequantizing a quantized base once (each pass): the half-precision copy of every
    quantized weight written and read back by the matmul."""
    if c.finetuning != "lora" or c.quantization not in QUANTIZED_BYTES:
        return 0.0
    return float((total - embedding_params(arch)) * 2 * element_bytes(c.precision))  # at the compute precision


def resident_bytes(c: TrainingConfig, arch, total: int, trainable: int) -> float:
    """Memory held whatever the batch: the weights as stored; 4 bytes a trained parameter (full fine-tuning:
    the fp32 gradients, the weights being the stored ones; LoRA: the fp32 adapters, whose gradients, as small,
    the fitted runtime bytes absorb); the optimizer's state; and under mixed-precision full fine-tuning the
    half-precision copies autocast makes of the weights."""
    if c.precision in TRUE_HALF:  # bf16 all through: trained weights (or gradients) and moments in bf16, no casts
        return float(weight_bytes(c, arch, total) + trainable * element_bytes(c.precision)
                     + trainable * HALF_OPTIMIZER_STATE_BYTES[c.optimizer])
    casts = total * element_bytes(c.precision) if c.finetuning != "lora" and c.precision in HALF else 0.0
    return float(weight_bytes(c, arch, total) + trainable * BYTES_PER_PARAM
                 + trainable * OPTIMIZER_STATE_BYTES[c.optimizer] + casts)
