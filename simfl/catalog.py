"""The model catalog: FLAN-T5 architectures and the parameter and FLOP counts derived from them."""

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

    @property
    def inner_dim(self) -> int:
        return self.num_heads * self.d_kv

    def total_params(self) -> int:
        """Parameter count of the whole model, as transformers reports it."""
        d, a, f = self.d_model, self.inner_dim, self.d_ff
        embeddings = 2 * self.vocab_size * d  # shared input embedding + untied LM head
        encoder_layer = 4 * d * a + 3 * d * f + 2 * d  # q,k,v,o; wi_0, wi_1, wo; 2 layer norms
        decoder_layer = 8 * d * a + 3 * d * f + 3 * d  # self + cross attention; 3 layer norms
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
        se, sd = encoder_len, decoder_len
        encoder = 8 * se * d * a + 4 * se**2 * a + 6 * se * d * f
        decoder = (
            8 * sd * d * a + 4 * sd**2 * a  # self-attention
            + 4 * sd * d * a + 4 * se * d * a + 4 * sd * se * a  # cross-attention
            + 6 * sd * d * f  # feed-forward
        )
        return float(self.num_layers * encoder + self.num_decoder_layers * decoder + 2 * sd * d * v)


CATALOG: dict[str, T5Architecture] = {
    arch.name: arch
    for arch in (
        T5Architecture("flan-t5-small", 512, 1024, 6, 8, 8, hf_name="google/flan-t5-small"),
        T5Architecture("flan-t5-base", 768, 2048, 12, 12, 12, hf_name="google/flan-t5-base"),
        T5Architecture("flan-t5-large", 1024, 2816, 16, 24, 24, hf_name="google/flan-t5-large"),
        T5Architecture("flan-t5-xl", 2048, 5120, 32, 24, 24, hf_name="google/flan-t5-xl"),
        # Not a released model: two layers, d_model 64, for end-to-end tests and quick tries
        # of `simfl calibrate`; it runs a step in milliseconds on a CPU.
        T5Architecture("t5-tiny", 64, 128, 2, 2, 2, vocab_size=512, d_kv=32),
    )
}


def get_architecture(name: str) -> T5Architecture:
    try:
        return CATALOG[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(CATALOG)}") from None


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