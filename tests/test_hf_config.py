"""Any model from its config.json: parameter, LoRA and FLOP counts against transformers and peft (meta device),
the model cards' totals, and one-line errors for configs simfl cannot model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simfl.catalog import CATALOG
from simfl.hf_config import architecture_from_config, register

CONFIGS = Path(__file__).resolve().parents[1] / "model_configs"
SHIPPED = sorted(p.stem for p in CONFIGS.glob("*.json"))
ALL_TARGETS = ["q", "k", "v", "o", "gate", "up", "down"]


def config(name: str) -> dict:
    return json.loads((CONFIGS / f"{name}.json").read_text())


def arch_of(name: str):
    return architecture_from_config(config(name), name)


def test_every_family_people_fine_tune_is_shipped():
    types = {config(n)["model_type"] for n in SHIPPED}
    assert {"t5", "llama", "qwen2", "mistral", "gemma2", "phi3"} <= types


# Totals the model cards or their papers state (model_configs/SOURCES.md), and the reference table's FLAN-T5.
PUBLISHED = {"qwen2.5-0.5b": 494_032_768, "llama-3.2-3b": 3_212_749_824, "flan-t5-base": 247_577_856,
             "flan-t5-large": 783_150_080}
ROUNDED = {"llama-3.1-8b": 8.03e9, "phi-3-mini-4k-instruct": 3.8e9, "qwen2.5-7b": 7.61e9, "qwen2.5-3b": 3.09e9,
           "mistral-7b-v0.3": 7.25e9, "gemma-2-2b-it": 2.61e9, "smollm2-135m": 135e6, "smollm2-360m-instruct": 362e6}


def test_totals_match_what_the_model_cards_say():
    for name, total in PUBLISHED.items():
        assert arch_of(name).total_params() == total, name
    for name, total in ROUNDED.items():
        assert arch_of(name).total_params() == pytest.approx(total, rel=0.006), name


@pytest.mark.parametrize("name", SHIPPED)
def test_counts_equal_transformers_and_peft_on_the_meta_device(name):
    torch = pytest.importorskip("torch", reason="the calibrate extra (torch, transformers, peft) is not installed")
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM, T5ForConditionalGeneration

    cfg = config(name)
    arch = arch_of(name)
    # transformers reads the file itself (not simfl's reading of it)
    hf = AutoConfig.for_model(**{k: v for k, v in cfg.items() if k not in ("architectures", "auto_map")})
    with torch.device("meta"):
        model = (T5ForConditionalGeneration(hf) if cfg["model_type"] == "t5"
                 else AutoModelForCausalLM.from_config(hf))
        if cfg["model_type"] == "t5" and not cfg.get("tie_word_embeddings", True):
            # transformers 5 ties T5's head whatever the config says; FLAN-T5's is its own matrix (as simfl builds it)
            model.lm_head.weight = torch.nn.Parameter(model.shared.weight.detach().clone())
    assert sum(p.numel() for p in model.parameters()) == arch.total_params()
    if cfg["model_type"] == "t5":
        targets, modules, task = ["q", "k", "v", "o"], ["q", "k", "v", "o"], "SEQ_2_SEQ_LM"
    else:
        from simfl.lm.model import peft_targets

        targets, modules, task = ALL_TARGETS, peft_targets(arch, ALL_TARGETS), "CAUSAL_LM"
    lora = get_peft_model(model, LoraConfig(task_type=task, r=8, target_modules=modules))
    assert sum(p.numel() for p in lora.parameters() if p.requires_grad) == arch.lora_params(8, targets)


def small(name: str, **changes) -> dict:
    """The shipped config with two layers and a small vocabulary: the same kind of layer, cheap to run."""
    cfg = config(name)
    layers = {"num_layers": 2, "num_decoder_layers": 2} if cfg["model_type"] == "t5" else {"num_hidden_layers": 2}
    ids = {k: 0 for k in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id") if k in cfg}
    return {**cfg, **layers, "vocab_size": 512, **ids, **changes}


@pytest.mark.parametrize("name", ["phi-3-mini-4k-instruct", "mistral-7b-v0.3", "gemma-2-2b-it", "smollm2-135m",
                                  "flan-t5-base"])
def test_forward_flops_equal_torch_flop_counter(name):
    torch = pytest.importorskip("torch", reason="the calibrate extra (torch, transformers, peft) is not installed")
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoConfig, AutoModelForCausalLM, T5ForConditionalGeneration

    cfg = small(name)
    arch = architecture_from_config(cfg, f"{name}-small")
    hf = AutoConfig.for_model(**{k: v for k, v in cfg.items() if k not in ("architectures", "auto_map")})
    hf._attn_implementation = "eager"
    with torch.device("meta"):
        if cfg["model_type"] == "t5":
            model = T5ForConditionalGeneration(hf)
            run = lambda: model(input_ids=torch.zeros(1, 16, dtype=torch.long),  # noqa: E731
                                decoder_input_ids=torch.zeros(1, 8, dtype=torch.long))
        else:
            model = AutoModelForCausalLM.from_config(hf, attn_implementation="eager")
            run = lambda: model(torch.zeros(1, 24, dtype=torch.long))  # noqa: E731
        with FlopCounterMode(display=False) as counter:
            run()
    assert counter.get_total_flops() == arch.forward_flops(16, 8)


def test_the_original_t5_has_a_relu_feed_forward_and_a_tied_head():
    # t5-small: d 512, f 2048, 8 heads of 64, 6 + 6 layers, vocab 32128, ReLU (wi, wo), LM head tied: 60,506,624
    t5 = architecture_from_config({"model_type": "t5", "d_model": 512, "d_ff": 2048, "num_heads": 8, "d_kv": 64,
                                   "num_layers": 6, "vocab_size": 32128, "feed_forward_proj": "relu"}, "t5-small-orig")
    assert (t5.gated, t5.tied_embeddings, t5.num_decoder_layers) == (False, True, 6)
    assert t5.total_params() == 60_506_624


def test_fused_projections_adapt_the_whole_fused_matrix():
    # Phi-3: q, k, v in one qkv_proj (3072 -> 3 x 3072), gate and up in one gate_up_proj (3072 -> 2 x 8192)
    phi = arch_of("phi-3-mini-4k-instruct")
    qkv, gate_up = 8 * (3072 + 9216), 8 * (3072 + 16384)
    assert phi.lora_params(8, ["q"]) == phi.lora_params(8, ["q", "k", "v"]) == 32 * qkv
    assert phi.lora_params(8, ["gate", "up"]) == 32 * gate_up


@pytest.mark.parametrize("cfg, message", [
    ({"model_type": "bert", "hidden_size": 8}, "model_type: 'bert' is not a family simfl models"),
    ({"model_type": "llama", "hidden_size": 8, "num_attention_heads": 2}, "intermediate_size: expected a positive "
                                                                          "integer, got missing"),
    ({"model_type": "llama", "hidden_size": 8, "intermediate_size": 16, "num_attention_heads": 2,
      "num_hidden_layers": 1, "vocab_size": 10, "num_key_value_heads": 3}, "num_key_value_heads: 3 does not divide"),
    ({"model_type": "llama", "hidden_size": "8"}, "num_attention_heads: expected a positive integer"),
    ({"model_type": "mistral", "hidden_size": 8, "intermediate_size": 16, "num_attention_heads": 2,
      "num_hidden_layers": 1, "vocab_size": 10, "mlp_bias": True}, "mlp_bias: true is not modelled"),
    ([1, 2], "expected a JSON object, got list"),
])
def test_a_config_simfl_cannot_model_is_one_sentence(cfg, message):
    with pytest.raises(ValueError, match=message):
        architecture_from_config(cfg, "x")


def test_registering_the_same_shape_twice_is_one_model_and_another_shape_is_refused():
    same = architecture_from_config(config("qwen2.5-0.5b"), "qwen2.5-0.5b")
    assert register(same) is CATALOG["qwen2.5-0.5b"]  # the catalog's own: the same shape
    with pytest.raises(ValueError, match="names a model simfl ships, with another shape"):
        register(architecture_from_config(config("qwen2.5-3b"), "qwen2.5-0.5b"))
    # a name a config gave: the next config under it is what it means (a sweep over model.config, one name)
    first = register(architecture_from_config(config("qwen2.5-3b"), "my-sweep-model"))
    second = register(architecture_from_config(config("qwen2.5-7b"), "my-sweep-model"))
    assert CATALOG["my-sweep-model"] is second and second.total_params() != first.total_params()


SCENARIO = """
name: cfg
model: {config: %s}
training: {batch_size: 1, local_steps: 1}
federation: {clients_per_round: 1, rounds: 1}
fleet:
  - {count: 1, device: a100-80gb, network: ethernet-10gbit}
server: {device: a100-80gb, network: ethernet-10gbit}
"""


def test_a_scenario_names_a_config_and_its_resolved_copy_loads_again(tmp_path):
    from simfl.build import build
    from simfl.config.load import dump_scenario, load_scenario

    (tmp_path / "s.yaml").write_text(SCENARIO % "llama-3.2-3b")
    sc = load_scenario(tmp_path / "s.yaml")
    assert sc.model.name == "llama-3.2-3b" and sc.model.config.endswith("model_configs/llama-3.2-3b.json")
    (g,) = build(sc).inputs.groups
    assert g.trainable_params == CATALOG["llama-3.2-3b"].lora_params(16, ["q", "v"]) == 4_587_520
    (tmp_path / "r.yaml").write_text(dump_scenario(sc))
    assert load_scenario(tmp_path / "r.yaml").model == sc.model
    # a path to a config.json of one's own, named after its folder
    (tmp_path / "My-Model").mkdir()
    (tmp_path / "My-Model" / "config.json").write_text(json.dumps(small("qwen2.5-0.5b")))
    (tmp_path / "s.yaml").write_text(SCENARIO % "My-Model/config.json")
    assert load_scenario(tmp_path / "s.yaml").model.name == "my-model"


@pytest.mark.parametrize("ref, message", [
    ("nope", "model.config: unknown model config 'nope'; shipped: flan-t5-base"),
    ("bad.json", "model.config: .*bad.json is not JSON"),
    ("odd.json", "model.config: .*odd.json: model_type: 'bert' is not a family simfl models"),
])
def test_a_bad_config_is_one_line_naming_the_field(tmp_path, ref, message):
    from simfl.config.load import load_scenario
    from simfl.errors import ScenarioError

    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "odd.json").write_text('{"model_type": "bert"}')
    (tmp_path / "s.yaml").write_text(SCENARIO % ref)
    with pytest.raises(ScenarioError, match=message):
        load_scenario(tmp_path / "s.yaml")
