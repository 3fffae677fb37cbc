"""The model catalog: FLAN-T5 (encoder-decoder) and decoder-only LLM architectures, with the parameter,
LoRA and FLOP counts derived from their published configurations."""

from __future__ import annotations

from dataclasses import dataclass

# Every FLAN-T5 (T5 v1.1) shares these; source: the models' published config.json,
# cross-checked in shared/reference/network-and-models.md.
VOCAB_SIZE = 32128
D_KV = 64
RELATIVE_ATTENTION_BUCKETS = 32

# LoRA targets: which attention projections get an adapter, with (in, out) as
# functions of (d_model, inner dim a = heads * d_kv).
_PROJECTIONS = {"q": "d->a", "k": "d->a", "v": "d->a", "o": "a->d"}
# LoRA targets: the attention projections every model has; decoder-only models also the feed-forward's
ATTENTION_LORA_TARGETS = ("q", "k", "v", "o")
FEED_FORWARD_LORA_TARGETS = ("gate", "up", "down")
LORA_TARGETS = ATTENTION_LORA_TARGETS + FEED_FORWARD_LORA_TARGETS
FUSED = {"q": "qkv", "k": "qkv", "v": "qkv", "gate": "gate_up", "up": "gate_up"}  # Phi-3's fused projections


@dataclass(frozen=True)
class T5Architecture:
    """An encoder-decoder T5 v1.1 shape (gated-GELU feed-forward, untied LM head)."""

    name: str
    d_model: int
    d_ff: int
    num_heads: int
    num_layers: int  # encoder layers
    num_decoder_layers: int
    vocab_size: int = VOCAB_SIZE
    d_kv: int = D_KV
    hf_name: str = ""
    gated: bool = True  # T5 v1.1 and FLAN-T5: gated-GELU (wi_0, wi_1, wo); the original T5: ReLU (wi, wo)
    tied_embeddings: bool = False  # FLAN-T5 unties its LM head; the original T5 ties it
    source: str = ""

    @property
    def inner_dim(self) -> int:
        return self.num_heads * self.d_kv

    @property
    def ff_matrices(self) -> int:
        return 3 if self.gated else 2

    def total_params(self) -> int:
        """Parameter count of the whole model, as transformers reports it."""
        d, a, f, m = self.d_model, self.inner_dim, self.d_ff, self.ff_matrices
        embeddings = (1 if self.tied_embeddings else 2) * self.vocab_size * d  # input embedding (+ LM head)
        encoder_layer = 4 * d * a + m * d * f + 2 * d  # q,k,v,o; wi_0, wi_1, wo; 2 layer norms
        decoder_layer = 8 * d * a + m * d * f + 3 * d  # self + cross attention; 3 layer norms
        relative_bias = 2 * RELATIVE_ATTENTION_BUCKETS * self.num_heads  # first layer of each stack
        final_norms = 2 * d
        return (
            embeddings
            + self.num_layers * encoder_layer
            + self.num_decoder_layers * decoder_layer
            + relative_bias
            + final_norms
        )

    def lora_params(self, r: int, targets: tuple[str, ...] | list[str]) -> int:
        """Trainable LoRA parameters: r * (in + out) per adapted projection.

        Encoder layers have one attention block, decoder layers two (self and cross).
        """
        unknown = sorted(set(targets) - set(_PROJECTIONS))
        if unknown:
            raise ValueError(f"unknown LoRA target(s) {unknown}; known: {sorted(_PROJECTIONS)}")
        # q, k, v map d -> a and o maps a -> d: each adapter is r * (d + a) either way.
        per_block = len(set(targets)) * r * (self.d_model + self.inner_dim)
        blocks = self.num_layers + 2 * self.num_decoder_layers
        return per_block * blocks

    def forward_flops(self, encoder_len: int, decoder_len: int) -> float:
        """Exact forward FLOPs of one sequence (matmuls only, 2 FLOPs per multiply-add).

        Formula of shared/reference/network-and-models.md: the encoder sees S_e
        tokens, the decoder S_d, cross-attention reads the encoder output.
        """
        d, a, f, v = self.d_model, self.inner_dim, self.d_ff, self.vocab_size
        se, sd, ff = encoder_len, decoder_len, 2 * self.ff_matrices
        encoder = 8 * se * d * a + 4 * se**2 * a + ff * se * d * f
        decoder = (
            8 * sd * d * a + 4 * sd**2 * a  # self-attention
            + 4 * sd * d * a + 4 * se * d * a + 4 * sd * se * a  # cross-attention
            + ff * sd * d * f  # feed-forward
        )
        return float(self.num_layers * encoder + self.num_decoder_layers * decoder + 2 * sd * d * v)

    def attention_flops(self, encoder_len: int, decoder_len: int) -> float:
        """The part of forward_flops in attention's two activation-by-activation matmuls (scores and values),
        which backward differentiates on both operands whatever is trained."""
        a, se, sd = self.inner_dim, encoder_len, decoder_len
        return float(self.num_layers * 4 * se**2 * a + self.num_decoder_layers * (4 * sd**2 * a + 4 * sd * se * a))

    def blocks(self) -> int:
        """Attention and feed-forward blocks: what a step launches kernels for (encoder 2 a layer, decoder 3)."""
        return 2 * self.num_layers + 3 * self.num_decoder_layers

    def activation_terms(self, encoder_len: int, decoder_len: int) -> dict[str, float]:
        """Sizes (in elements, one sample) that a training step's saved activations scale with:
        hidden (tokens x d_model per block), projections (query-side tokens x (q + output) plus key-side
        tokens x (k + v), per attention block), feed_forward (tokens x d_ff), scores (heads x queries x keys)
        and logits (decoder tokens x vocabulary)."""
        d, a, f, h = self.d_model, self.inner_dim, self.d_ff, self.num_heads
        se, sd, le, ld = encoder_len, decoder_len, self.num_layers, self.num_decoder_layers
        return {
            "hidden": float(d * (2 * le * se + 3 * ld * sd)),
            "projections": float(le * (2 * se * a + 2 * se * a) + ld * (4 * sd * a + 2 * sd * a + 2 * se * a)),
            "feed_forward": float(f * (le * se + ld * sd)),
            "scores": float(h * (le * se * se + ld * (sd * sd + sd * se))),
            "logits": float(sd * self.vocab_size),
        }

    def lora_forward_flops(self, r: int, targets, encoder_len: int, decoder_len: int) -> float:
        """Forward FLOPs of the LoRA adapters (2 r (in + out) a token), each projection over the tokens it reads:
        queries and outputs over the query side, keys and values over the key side (the encoder for cross)."""
        per_token = 2 * r * (self.d_model + self.inner_dim)
        se, sd = encoder_len, decoder_len
        tokens = {"q": self.num_layers * se + self.num_decoder_layers * 2 * sd,
                  "o": self.num_layers * se + self.num_decoder_layers * 2 * sd,
                  "k": self.num_layers * se + self.num_decoder_layers * (sd + se),
                  "v": self.num_layers * se + self.num_decoder_layers * (sd + se)}
        return float(per_token * sum(tokens[t] for t in set(targets)))


@dataclass(frozen=True)
class DecoderArchitecture:
    """A decoder-only transformer of the Llama family (RMSNorm, rotary positions, grouped-query attention,
    gated-SiLU/GELU feed-forward), as transformers builds Llama, Qwen2 and Gemma 3 text models.

    A training sample is one sequence: the prompt (seq_len tokens) followed by its target (target_len),
    the causal LM loss over all of it.
    """

    name: str
    d_model: int  # hidden_size
    d_ff: int  # intermediate_size
    num_heads: int
    num_kv_heads: int
    head_dim: int
    num_layers: int
    vocab_size: int
    tied_embeddings: bool = True
    qkv_bias: bool = False  # Qwen2: biases on q, k, v
    norms_per_layer: int = 2  # Llama, Qwen2: input and post-attention; Gemma 3: four
    qk_norm: bool = False  # Gemma 3: RMSNorm of each head's queries and keys (head_dim weights each)
    sliding_window: int | None = None  # Gemma 3: local layers attend to this many tokens (masking only)
    global_every: int = 1  # Gemma 3: every 6th layer is global, the rest sliding
    hf_name: str = ""
    source: str = ""
    fused: bool = False  # Phi-3: q, k, v are one projection (qkv_proj), gate and up one (gate_up_proj)
    model_type: str = ""  # the config.json's model_type, when built from one (hf_config.py)

    @property
    def inner_dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    def _projection_dims(self) -> dict[str, tuple[int, int]]:
        d, a, kv, f = self.d_model, self.inner_dim, self.kv_dim, self.d_ff
        if self.fused:
            return {"qkv": (d, a + 2 * kv), "o": (a, d), "gate_up": (d, 2 * f), "down": (f, d)}
        return {"q": (d, a), "k": (d, kv), "v": (d, kv), "o": (a, d), "gate": (d, f), "up": (d, f), "down": (f, d)}

    def adapted(self, targets) -> set[str]:
        """The projections that get an adapter for LoRA `targets` (q, k, v, o, gate, up, down): with fused
        projections (Phi-3), any of q, k, v adapts the whole qkv_proj, and gate or up the whole gate_up_proj."""
        unknown = sorted(set(targets) - set(LORA_TARGETS))
        if unknown:
            raise ValueError(f"unknown LoRA target(s) {unknown}; known: {sorted(LORA_TARGETS)}")
        if not self.fused:
            return set(targets)
        return {FUSED.get(t, t) for t in targets}

    def total_params(self) -> int:
        """Parameter count of the whole model, as transformers reports it (a tied head counted once)."""
        d, a, kv, f = self.d_model, self.inner_dim, self.kv_dim, self.d_ff
        attention = d * a + 2 * d * kv + a * d + (a + 2 * kv if self.qkv_bias else 0)
        layer = attention + 3 * d * f + self.norms_per_layer * d + (2 * self.head_dim if self.qk_norm else 0)
        embeddings = self.vocab_size * d * (1 if self.tied_embeddings else 2)
        return embeddings + self.num_layers * layer + d  # + the final norm

    def lora_params(self, r: int, targets: tuple[str, ...] | list[str]) -> int:
        """Trainable LoRA parameters: r * (in + out) per adapted projection and layer. Targets q, k, v, o
        (attention) and gate, up, down (feed-forward)."""
        dims = self._projection_dims()
        return self.num_layers * sum(r * (dims[t][0] + dims[t][1]) for t in self.adapted(targets))

    def forward_flops(self, encoder_len: int, decoder_len: int) -> float:
        """Exact forward FLOPs of one sample, prompt and target as one sequence of S tokens (matmuls only,
        2 FLOPs per multiply-add): per layer 2 S (d a + 2 d kv + a d) for the projections, 4 S^2 a for scores
        and values, 6 S d f for the feed-forward; 2 S d V for the head. The attention kernels transformers
        runs (eager, SDPA) compute the whole S x S score matrix and mask it, for causal and sliding-window
        layers alike, so S^2 is what the hardware does; torch's FLOP counter agrees (tests/test_catalog_costs.py)."""
        s = encoder_len + decoder_len
        d, a, kv, f = self.d_model, self.inner_dim, self.kv_dim, self.d_ff
        per_layer = 2 * s * (d * a + 2 * d * kv + a * d) + 4 * s * s * a + 6 * s * d * f
        return float(self.num_layers * per_layer + 2 * s * d * self.vocab_size)

    def attention_flops(self, encoder_len: int, decoder_len: int) -> float:
        """The scores and values part of forward_flops (4 S^2 a a layer)."""
        s = encoder_len + decoder_len
        return float(self.num_layers * 4 * s * s * self.inner_dim)

    def blocks(self) -> int:
        """Attention and feed-forward blocks: two a layer."""
        return 2 * self.num_layers

    def activation_terms(self, encoder_len: int, decoder_len: int) -> dict[str, float]:
        """As T5Architecture.activation_terms, over the one sequence of prompt and target."""
        s, n = encoder_len + decoder_len, self.num_layers
        return {
            "hidden": float(2 * n * s * self.d_model),
            "projections": float(n * s * (2 * self.inner_dim + 2 * self.kv_dim)),
            "feed_forward": float(n * s * self.d_ff),
            "scores": float(n * self.num_heads * s * s),
            "logits": float(s * self.vocab_size),
        }

    def lora_forward_flops(self, r: int, targets, encoder_len: int, decoder_len: int) -> float:
        """Forward FLOPs of the LoRA adapters: 2 r (in + out) a token and adapted projection."""
        s, dims = encoder_len + decoder_len, self._projection_dims()
        return float(self.num_layers * s * sum(2 * r * (dims[t][0] + dims[t][1]) for t in self.adapted(targets)))


# Published configurations (config.json of each model on the Hugging Face hub).
_QWEN = "Qwen/Qwen2.5-0.5B config.json (hidden 896, intermediate 4864, 24 layers, 14 heads, 2 KV heads, vocab 151936)"
_LLAMA = ("meta-llama/Llama-3.2-1B config.json (hidden 2048, intermediate 8192, 16 layers, 32 heads, 8 KV heads, "
          "head_dim 64, vocab 128256)")
_GEMMA = ("google/gemma-3-270m config.json (hidden 640, intermediate 2048, 18 layers, 4 heads, 1 KV head, "
          "head_dim 256, vocab 262144, sliding window 512, every 6th layer global)")

DECODERS = (
    DecoderArchitecture("qwen2.5-0.5b", 896, 4864, 14, 2, 64, 24, 151936, qkv_bias=True,
                        hf_name="Qwen/Qwen2.5-0.5B", source=_QWEN),
    DecoderArchitecture("llama-3.2-1b", 2048, 8192, 32, 8, 64, 16, 128256,
                        hf_name="meta-llama/Llama-3.2-1B", source=_LLAMA),
    DecoderArchitecture("gemma-3-270m", 640, 2048, 4, 1, 256, 18, 262144, norms_per_layer=4, qk_norm=True,
                        sliding_window=512, global_every=6, hf_name="google/gemma-3-270m", source=_GEMMA),
    # Not a released model: a two-layer decoder for tests and quick tries of `simfl calibrate`.
    DecoderArchitecture("decoder-tiny", 64, 128, 4, 2, 16, 2, 512),
)

Architecture = T5Architecture | DecoderArchitecture

CATALOG: dict[str, Architecture] = {
    arch.name: arch
    for arch in (
        T5Architecture("flan-t5-small", 512, 1024, 6, 8, 8, hf_name="google/flan-t5-small"),
        T5Architecture("flan-t5-base", 768, 2048, 12, 12, 12, hf_name="google/flan-t5-base"),
        T5Architecture("flan-t5-large", 1024, 2816, 16, 24, 24, hf_name="google/flan-t5-large"),
        T5Architecture("flan-t5-xl", 2048, 5120, 32, 24, 24, hf_name="google/flan-t5-xl"),
        # Not a released model: two layers, d_model 64, for end-to-end tests and quick tries
        # of `simfl calibrate`; it runs a step in milliseconds on a CPU.
        T5Architecture("t5-tiny", 64, 128, 2, 2, 2, vocab_size=512, d_kv=32),
        *DECODERS,
    )
}


# The models simfl ships, named in messages: models registered from a config.json (hf_config.register) are known
# too but belong to the scenario that named them
BUILTIN_MODELS: tuple[str, ...] = tuple(CATALOG)


def get_architecture(name: str) -> Architecture:
    try:
        return CATALOG[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(BUILTIN_MODELS)}") from None


def trainable_params(name: str, finetuning: str, lora_r: int, lora_targets: list[str]) -> int:
    """Parameters a client trains and sends: the LoRA adapter or the whole model."""
    arch = get_architecture(name)
    if finetuning == "full":
        return arch.total_params()
    return arch.lora_params(lora_r, lora_targets)


def transfer_bits(params: int, bits_per_param: int) -> int:
    return int(params) * int(bits_per_param)


def steps_for_samples(samples, batch_size: int, epochs: int):
    """Local steps of a client that runs `epochs` passes over `samples` in batches (an int, or an
    integer numpy array of one count per client)."""
    return epochs * -(-samples // batch_size)  # integer ceil division