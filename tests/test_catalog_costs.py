"""Catalog counts against the reference table; pure cost functions against hand-worked numbers."""

import math

import pytest

from simfl.catalog import CATALOG, steps_for_samples, trainable_params
from simfl.costs import (co2_kg, energy_cost, energy_j, granularity, interpolate, kwh, network_energy_j,
                         transfer_time_s)

# shared/reference/network-and-models.md
REFERENCE = {
    "flan-t5-small": (76_961_152, 688_128, 22_020_096),
    "flan-t5-base": (247_577_856, 1_769_472, 56_623_104),
    "flan-t5-large": (783_150_080, 4_718_592, 150_994_944),
    "flan-t5-xl": (2_849_757_184, 9_437_184, 301_989_888),
}


@pytest.mark.parametrize("name", REFERENCE)
def test_param_counts_match_reference(name):
    total, lora, bits = REFERENCE[name]
    arch = CATALOG[name]
    assert arch.total_params() == total
    assert arch.lora_params(16, ["q", "v"]) == lora
    assert trainable_params(name, "lora", 16, ["q", "v"]) * 32 == bits
    assert trainable_params(name, "full", 16, ["q", "v"]) == total


def test_peft_reported_total_for_base():
    arch = CATALOG["flan-t5-base"]
    assert arch.total_params() + arch.lora_params(16, ["q", "v"]) == 249_347_328


def test_lora_scales_with_rank_and_targets():
    arch = CATALOG["flan-t5-small"]
    assert arch.lora_params(8, ["q", "k", "v", "o"]) == arch.lora_params(16, ["q", "v"])  # same r x targets
    assert arch.lora_params(32, ["q", "v"]) == 2 * arch.lora_params(16, ["q", "v"])


def test_forward_flops_small_by_hand():
    a = CATALOG["flan-t5-small"]
    d, i, f, v, se, sd = 512, 384, 1024, 32128, 512, 95
    enc = 8 * se * d * i + 4 * se * se * i + 6 * se * d * f
    dec = 8 * sd * d * i + 4 * sd * sd * i + 4 * sd * d * i + 4 * se * d * i + 4 * sd * se * i + 6 * sd * d * f
    assert a.forward_flops(512, 95) == 8 * enc + 8 * dec + 2 * sd * d * v


def test_pure_costs():
    assert transfer_time_s(22_020_096, 10e6, 0.05) == pytest.approx(2.2520096)
    assert energy_j(28.1, 1.46) == pytest.approx(41.026)
    assert network_energy_j(1e6, 2e6, 76.2e-6, 19e-6) == pytest.approx(76.2 + 38.0)
    assert kwh(3.6e6) == 1.0
    assert co2_kg(2.0, 380) == pytest.approx(0.76)
    assert energy_cost(2.0, 0.30) == pytest.approx(0.60)
    assert granularity(1.5, 3.0) == 0.5 and granularity(1.0, 0.0) == math.inf
    assert steps_for_samples(147, 8, 2) == 2 * 19
    with pytest.raises(ValueError):
        transfer_time_s(1, 0)


def test_interpolate_between_beyond_and_single_point():
    xs, ys = [1, 8, 16], [0.55, 0.73, 1.15]
    assert interpolate(xs, ys, 8) == (0.73, False)
    y, ext = interpolate(xs, ys, 4)
    assert y == pytest.approx(0.55 + 0.18 * 3 / 7) and not ext
    y, ext = interpolate(xs, ys, 32)  # the 8-16 segment extended: 1.15 + 0.42 * 2
    assert y == pytest.approx(1.99) and ext
    assert interpolate([4], [2.0], 8) == (2.0, True)


def test_cost_function_edges():
    assert transfer_time_s(1e6, 1e6) == 1.0  # no latency unless given
    assert transfer_time_s(1, 0.5) == 2.0  # rates below 1 bit/s are still rates
    with pytest.raises(ValueError, match=r"^rate_bps must be positive, got -1$"):
        transfer_time_s(1, -1)
    assert granularity(1.0, 0.5) == 2.0  # T_comm below 1 s is still T_comm
    assert energy_cost(2.0, 0.3) == pytest.approx(0.6, rel=1e-15)
    assert co2_kg(2.0, 400.0) == pytest.approx(0.8, rel=1e-15)


def test_interpolate_picks_the_segment_around_x():
    xs, ys = [1, 2, 4, 8], [1.0, 3.0, 4.0, 10.0]
    assert interpolate(xs, ys, 3) == (3.5, False)  # the 2-4 segment
    assert interpolate(xs, ys, 6) == (7.0, False)  # the 4-8 segment, inside the range: not extrapolated
    assert interpolate(xs, ys, 10) == (13.0, True)  # the 4-8 line extended
    assert interpolate(xs, ys, 0) == (-1.0, True)  # the 1-2 line extended
    for bad in (([1, 2], [1.0]), ([], [])):
        with pytest.raises(ValueError, match="^interpolate needs matching, non-empty xs and ys$"):
            interpolate(*bad, 1)


# -- decoder-only models ----------------------------------------------------------------------------------

def test_decoder_counts_by_hand():
    from simfl.catalog import DecoderArchitecture

    # d 4, 2 heads of 2 (a 4), 1 KV head (kv 2), f 8, 1 layer, vocab 10, tied, q/k/v biases
    a = DecoderArchitecture("hand", 4, 8, 2, 1, 2, 1, 10, qkv_bias=True)
    # attention 4x4 + 2 (4x2) + 4x4 + biases 4 + 2 + 2 = 56; MLP 3 x 4 x 8 = 96; 2 norms 8; embeddings 40; final 4
    assert a.total_params() == 56 + 96 + 8 + 40 + 4
    # LoRA r 2: q 2 (4 + 4) = 16, v 2 (4 + 2) = 12, down 2 (8 + 4) = 24
    assert a.lora_params(2, ["q", "v", "down"]) == 16 + 12 + 24
    # S = 3: projections 2 x 3 x (16 + 16 + 16) = 288; scores and values 4 x 9 x 4 = 144; MLP 6 x 3 x 4 x 8 = 576;
    # head 2 x 3 x 4 x 10 = 240
    assert a.forward_flops(2, 1) == 288 + 144 + 576 + 240
    with pytest.raises(ValueError, match="unknown LoRA target"):
        a.lora_params(2, ["wi"])


@pytest.mark.parametrize("name", ["qwen2.5-0.5b", "llama-3.2-1b", "gemma-3-270m", "decoder-tiny"])
def test_decoder_counts_equal_transformers_and_peft(name):
    torch = pytest.importorskip("torch", reason="the calibrate extra (torch, transformers, peft) is not installed")
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from simfl.lm.model import DECODER_TARGETS, decoder_config
    from simfl.catalog import CATALOG

    arch = CATALOG[name]
    with torch.device("meta"):  # the real shapes, no memory
        model = AutoModelForCausalLM.from_config(decoder_config(arch))
    assert sum(p.numel() for p in model.parameters()) == arch.total_params()
    targets = ["q", "k", "v", "o", "gate", "up", "down"]
    lora = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=8, target_modules=[DECODER_TARGETS[t] for t in targets]))
    assert sum(p.numel() for p in lora.parameters() if p.requires_grad) == arch.lora_params(8, targets)


def test_published_totals():
    from simfl.catalog import CATALOG

    # the parameter counts the model cards state: Qwen2.5-0.5B 0.49 B, Llama 3.2 1B 1.24 B, Gemma 3 270M 268 M
    assert CATALOG["qwen2.5-0.5b"].total_params() == 494_032_768
    assert CATALOG["llama-3.2-1b"].total_params() == 1_235_814_400
    assert CATALOG["gemma-3-270m"].total_params() == 268_098_176


def test_decoder_flops_equal_torch_flop_counter():
    torch = pytest.importorskip("torch", reason="the calibrate extra (torch, transformers, peft) is not installed")
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModelForCausalLM

    from simfl.lm.model import decoder_config
    from simfl.catalog import CATALOG, DecoderArchitecture

    gemma_like = DecoderArchitecture("g", 64, 128, 4, 1, 32, 6, 512, norms_per_layer=4, qk_norm=True,
                                     sliding_window=8, global_every=6)
    for arch in (CATALOG["decoder-tiny"], gemma_like):
        model = AutoModelForCausalLM.from_config(decoder_config(arch), attn_implementation="eager")
        with FlopCounterMode(display=False) as counter:
            model(torch.randint(2, 500, (1, 24)))
        assert counter.get_total_flops() == arch.forward_flops(16, 8)
