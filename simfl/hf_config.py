"""Any model from its Hugging Face `config.json`: the catalog architecture its fields describe (T5, Llama, Qwen2,
Mistral, Gemma 1/2/3 text and Phi-3), checked field by field, and registered so every part of simfl finds it.

Only what the counts need is read: widths, heads, layers, vocabulary, whether the head is tied, biases and norms.
A field missing or of the wrong kind is a ValueError naming it; a family simfl does not model is one too.
Parameter, LoRA and FLOP counts of the result are checked against transformers on the meta device in
tests/test_hf_config.py.
"""

from __future__ import annotations

from typing import Any

from simfl.catalog import BUILTIN_MODELS, CATALOG, Architecture, DecoderArchitecture, T5Architecture

# model_type -> the family whose shape it has (fused: Phi-3 keeps q, k, v in one qkv_proj and gate, up in one
# gate_up_proj; norms: RMSNorms per layer; qk_norm: Gemma 3 normalises each head's queries and keys)
DECODER_FAMILIES = {
    "llama": dict(norms_per_layer=2),
    "mistral": dict(norms_per_layer=2),
    "qwen2": dict(norms_per_layer=2, qkv_bias=True),
    "gemma": dict(norms_per_layer=2),
    "gemma2": dict(norms_per_layer=4),
    "gemma3_text": dict(norms_per_layer=4, qk_norm=True),
    "phi3": dict(norms_per_layer=2, fused=True),
}
T5_TYPES = ("t5",)
MODEL_TYPES = (*T5_TYPES, *DECODER_FAMILIES)


def _int(cfg: dict, key: str, default: Any = None) -> int:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        shown = "missing" if key not in cfg and default is None else repr(value)
        raise ValueError(f"{key}: expected a positive integer, got {shown}")
    return value


def _bool(cfg: dict, key: str, default: bool) -> bool:
    value = cfg.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{key}: expected true or false, got {value!r}")
    return value


def architecture_from_config(cfg: Any, name: str, source: str = "") -> Architecture:
    """The architecture a config.json describes, named `name`."""
    if not isinstance(cfg, dict):
        raise ValueError(f"expected a JSON object, got {type(cfg).__name__}")
    if isinstance(cfg.get("text_config"), dict) and cfg.get("model_type") == "gemma3":
        cfg = {**cfg["text_config"], "model_type": "gemma3_text"}  # the multimodal wrapper's language model
    model_type = cfg.get("model_type")
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type: {model_type!r} is not a family simfl models; known: {', '.join(MODEL_TYPES)}")
    if model_type in T5_TYPES:
        proj = cfg.get("feed_forward_proj", "relu")
        if proj not in ("relu", "gated-gelu", "gelu", "gated-silu"):
            raise ValueError(f"feed_forward_proj: {proj!r} is not one of relu, gelu, gated-gelu, gated-silu")
        layers = _int(cfg, "num_layers")
        return T5Architecture(
            name, _int(cfg, "d_model"), _int(cfg, "d_ff"), _int(cfg, "num_heads"), layers,
            _int(cfg, "num_decoder_layers", layers), vocab_size=_int(cfg, "vocab_size"), d_kv=_int(cfg, "d_kv"),
            hf_name=str(cfg.get("_name_or_path", "")), gated=proj.startswith("gated"),
            tied_embeddings=_bool(cfg, "tie_word_embeddings", True), source=source)
    fam = DECODER_FAMILIES[model_type]
    heads = _int(cfg, "num_attention_heads")
    d = _int(cfg, "hidden_size")
    head_dim = cfg.get("head_dim") or d // heads
    if not isinstance(head_dim, int) or head_dim <= 0:
        raise ValueError(f"head_dim: expected a positive integer, got {head_dim!r}")
    kv = _int(cfg, "num_key_value_heads", heads)
    if heads % kv:
        raise ValueError(f"num_key_value_heads: {kv} does not divide num_attention_heads {heads}")
    for key in ("mlp_bias",) + (("attention_bias",) if model_type != "qwen2" else ()):
        if cfg.get(key):
            raise ValueError(f"{key}: true is not modelled (biases on every projection); simfl counts none")
    default_tied = model_type.startswith("gemma")  # Gemma ties its head whatever the file omits
    sliding = cfg.get("sliding_window") if isinstance(cfg.get("sliding_window"), int) else None
    every = cfg.get("sliding_window_pattern", 6) if model_type == "gemma3_text" else 1
    return DecoderArchitecture(
        name, d, _int(cfg, "intermediate_size"), heads, kv, head_dim, _int(cfg, "num_hidden_layers"),
        _int(cfg, "vocab_size"), tied_embeddings=_bool(cfg, "tie_word_embeddings", default_tied),
        qkv_bias=fam.get("qkv_bias", False),
        norms_per_layer=fam["norms_per_layer"], qk_norm=fam.get("qk_norm", False), sliding_window=sliding,
        global_every=every if isinstance(every, int) and every > 0 else 6,
        fused=fam.get("fused", False), model_type=model_type, hf_name=str(cfg.get("_name_or_path", "")),
        source=source)


def register(arch: Architecture) -> Architecture:
    """Make `arch` known by its name to every part of simfl (the catalog). A shipped model's name with another
    shape is refused; a name another config.json gave is taken over by this one."""
    known = CATALOG.get(arch.name)
    if known is None:
        CATALOG[arch.name] = arch
        return arch
    if shape(known) == shape(arch):
        return known  # the same model: the one already known serves
    if arch.name in BUILTIN_MODELS:
        raise ValueError(f"{arch.name!r} names a model simfl ships, with another shape; give this one another name")
    # another config.json under a name a config gave before (a sweep's axis over model.config with one
    # model.name, or the file edited): the one read now is what the name means from now on in this process
    CATALOG[arch.name] = arch
    return arch


def shape(arch: Architecture) -> tuple:
    """What the counts depend on: every field but the names and where they came from. Gemma 3's config.json and
    the catalog's have the same shape, as do a catalog model's config read from its file."""
    # (sliding windows are masking only: no parameter or FLOP depends on them)
    ignored = ("name", "hf_name", "source", "model_type", "sliding_window", "global_every")
    return type(arch).__name__, tuple(sorted((k, v) for k, v in vars(arch).items() if k not in ignored))
