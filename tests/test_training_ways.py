"""How a step trains (precision, optimizer state, checkpointing, quantized base), worked by hand on decoder-tiny,
and the memory answers a planner asked for."""

from __future__ import annotations

import pytest

from simfl.catalog import CATALOG
from simfl.config.load import load_model
from simfl.config.profiles import HardwareProfile
from simfl.hardware.lookup import step_cost
from simfl.hardware.model import Datasheet
from simfl.hardware.predict import shipped, unmeasured_ways
from simfl.hardware.work import (activation_bytes_per_sample, checkpoint_bytes_per_sample, resident_bytes, step_work,
                                 weight_bytes)
from simfl.training import TrainingConfig

# decoder-tiny: d 64, f 128, 4 heads of 16 (a 64), 2 KV heads (kv 32), 2 layers, vocabulary 512, tied head.
# A layer: attention 64x64 + 2 (64x32) + 64x64 = 12,288, feed-forward 3 x 64 x 128 = 24,576, norms 128: 36,992;
# two of them 73,984, the embedding 32,768 and the final norm 64: 106,816. LoRA r 16 on q (64 -> 64) and v
# (64 -> 32): 16 x (128 + 96) = 3,584 a layer, 7,168 in all.
TOTAL, EMBEDDING, TRAINABLE = 106_816, 32_768, 7_168
TINY = CATALOG["decoder-tiny"]


def tiny(**kw) -> TrainingConfig:
    return TrainingConfig("decoder-tiny", seq_len=8, target_len=4, **kw)


def test_the_counts_these_rules_start_from():
    assert (TINY.total_params(), TINY.lora_params(16, ["q", "v"])) == (TOTAL, TRAINABLE)


def test_weights_take_the_bytes_of_their_precision_or_quantization():
    assert weight_bytes(tiny(), TINY, TOTAL) == 4 * TOTAL  # fp32, as the seed paper
    assert weight_bytes(tiny(precision="tf32"), TINY, TOTAL) == 4 * TOTAL  # tf32 tensors are fp32
    assert weight_bytes(tiny(precision="bf16"), TINY, TOTAL) == 2 * TOTAL  # a LoRA base in half precision
    # QLoRA: the blocks' 74,048 weights at 4 bits + an 8-bit absmax per 64 (0.515625 B), the embedding in bf16
    assert weight_bytes(tiny(precision="bf16", quantization="nf4"), TINY, TOTAL) == 74_048 * 0.515625 + 2 * EMBEDDING
    assert weight_bytes(tiny(precision="bf16", quantization="int8"), TINY, TOTAL) == 74_048 + 2 * EMBEDDING
    # full fine-tuning keeps fp32 master weights under mixed precision
    assert weight_bytes(tiny(finetuning="full", precision="bf16"), TINY, TOTAL) == 4 * TOTAL


def test_resident_memory_counts_optimizer_state_and_autocast_copies():
    # LoRA fp32: the base, 4 B an adapter parameter, AdamW's two fp32 moments (8 B), 8-bit AdamW's two bytes
    assert resident_bytes(tiny(optimizer="sgd"), TINY, TOTAL, TRAINABLE) == 4 * TOTAL + 4 * TRAINABLE
    assert resident_bytes(tiny(optimizer="adamw"), TINY, TOTAL, TRAINABLE) == 4 * TOTAL + 12 * TRAINABLE
    assert resident_bytes(tiny(optimizer="adamw-8bit"), TINY, TOTAL, TRAINABLE) == 4 * TOTAL + 6 * TRAINABLE
    # full bf16 AdamW: fp32 weights, fp32 gradients, two fp32 moments, and autocast's bf16 copy: 18 B a parameter
    full = tiny(finetuning="full", precision="bf16", optimizer="adamw")
    assert resident_bytes(full, TINY, TOTAL, TOTAL) == 18 * TOTAL


def test_checkpointing_keeps_layer_inputs_and_runs_the_forward_again():
    # 12 tokens (8 prompt + 4 target) x d 64 x 2 layers: 1,536 elements, 6,144 B in fp32 and 3,072 B in bf16
    assert checkpoint_bytes_per_sample(tiny(), TINY) == 6144
    assert checkpoint_bytes_per_sample(tiny(precision="bf16"), TINY) == 3072
    plain, ckpt = step_work(tiny(batch_size=2)), step_work(tiny(batch_size=2, gradient_checkpointing=True))
    f_all, f_ad = TINY.forward_flops(8, 4), TINY.lora_forward_flops(16, ("q", "v"), 8, 4)
    assert ckpt.flops - plain.flops == pytest.approx(2 * (f_all + f_ad))  # one more forward of the batch
    act = activation_bytes_per_sample(tiny())
    assert ckpt.activation_bytes == pytest.approx(2 * (6144 + act / 2))  # inputs kept, one layer alive
    assert plain.activation_bytes == pytest.approx(2 * act)


def test_autocast_keeps_probabilities_and_logits_in_fp32_and_the_measured_share_of_the_rest():
    from simfl.hardware.work import activation_coefficients

    fam = activation_coefficients()["t5"]
    r = fam["half_precision"]["rest_factor"]  # measured: scripts/measure_activations.py half
    t5 = CATALOG["t5-tiny"]
    terms = t5.activation_terms(8, 4)
    c = fam["bytes_per_element"]
    # t5-tiny, 8 input and 4 target tokens: the attention probabilities and the logits at their fp32 bytes, every
    # other term at r of its fp32 bytes
    kept = c["scores"] * terms["scores"] + c["logits"] * terms["logits"]
    rest = sum(c[k] * terms[k] for k in ("hidden", "projections", "feed_forward"))

    def t5_tiny(**kw):
        return TrainingConfig("t5-tiny", seq_len=8, target_len=4, **kw)

    assert activation_bytes_per_sample(t5_tiny()) == pytest.approx(kept + rest)
    assert activation_bytes_per_sample(t5_tiny(precision="bf16")) == pytest.approx(kept + r * rest)
    assert activation_bytes_per_sample(t5_tiny(precision="fp16")) == pytest.approx(kept + r * rest)
    # bf16-true (weights and all in bf16; not measured here) keeps half of everything
    assert activation_bytes_per_sample(t5_tiny(precision="bf16-true")) == pytest.approx((kept + rest) / 2)
    assert step_work(t5_tiny(precision="bf16")).precision == "bf16"
    # flan-t5-small LoRA and flan-t5-base full keep 0.82 of their fp32 bytes under bf16 (measured); with the
    # probabilities and logits held at fp32 the rest keeps between half and all of its bytes
    assert 0.5 < r < 1


def test_another_precision_runs_at_the_datasheets_ratio_never_beyond_its_peak():
    sheet = Datasheet("gpu", 312e12, 80e9, 2e12, peaks=(("fp32", 19.5e12), ("bf16", 312e12)))
    assert sheet.rate_at("fp32", 10e12) == (10e12, False)
    assert sheet.rate_at("bf16", 10e12) == (160e12, True)  # x 312 / 19.5 = 16
    assert sheet.rate_at("bf16", 100e12) == (312e12, True)  # capped at the bf16 peak
    assert sheet.rate_at("tf32", 10e12) == (10e12, False)  # not listed: unscaled
    assert Datasheet("cpu", 1e12, 8e9, 4e10).rate_at("bf16", 5e11) == (5e11, False)  # no table at all


def test_a_config_nothing_measured_says_its_error_is_not_validated():
    orin_nx = load_model(HardwareProfile, _profile("jetson-orin-nx-16gb"))
    c = TrainingConfig("qwen2.5-0.5b", seq_len=1024, batch_size=4, precision="bf16", gradient_checkpointing=True)
    assert unmeasured_ways(c, []) == ["bf16", "checkpointing"]
    est = shipped().estimate(orin_nx, c)
    # published runs validated such steps on GPUs only: a Jetson's error is not validated
    assert (est.error_kind, est.expected_error) == ("other_configuration", None)
    assert "bf16, checkpointing not measured" in est.flag() and "not validated" in est.flag()
    # on a GPU the published runs' calibration half states it (simfl/hardware/other_configuration.yaml)
    a100 = load_model(HardwareProfile, _profile("a100-80gb"))
    est = shipped().estimate(a100, c)
    assert est.interval_80 == shipped().errors["other_configuration"]["gpu"]["interval_80"]
    assert est.error_kind == "other_configuration" and est.expected_error == shipped().errors[
        "other_configuration"]["gpu"]["median"]
    plain = shipped().estimate(orin_nx, TrainingConfig("qwen2.5-0.5b", seq_len=1024, batch_size=4))
    assert plain.error_kind != "other_configuration" and plain.expected_error is not None


def test_qwen_at_1024_tokens_fits_an_orin_nx_in_bf16_with_checkpointing_and_not_without():
    # a new user's plan ruled the Orin NX out ("needs 26.5 GB of 16 GB"); bf16 and checkpointing bring it in
    orin_nx = load_model(HardwareProfile, _profile("jetson-orin-nx-16gb"))
    c = TrainingConfig("qwen2.5-0.5b", seq_len=1024, batch_size=4)
    assert not shipped().estimate(orin_nx, c).fits
    assert shipped().estimate(orin_nx, TrainingConfig("qwen2.5-0.5b", seq_len=1024, batch_size=4,
                                                      precision="bf16", gradient_checkpointing=True)).fits
    assert step_cost(orin_nx, TrainingConfig("qwen2.5-0.5b", seq_len=1024, batch_size=4, precision="bf16",
                                             gradient_checkpointing=True)).step_time_s > 0


@pytest.mark.parametrize("config, field, message", [
    (TrainingConfig("flan-t5-small", finetuning="full", quantization="nf4"), "quantization",
     "quantization nf4 quantizes the frozen base weights of LoRA (QLoRA); finetuning full trains them"),
    (TrainingConfig("flan-t5-small", method="forward_gradient", perturbations=4, gradient_checkpointing=True),
     "gradient_checkpointing", "gradient_checkpointing saves activations for a backward pass; method "
                               "forward_gradient has none"),
    (TrainingConfig("flan-t5-small", precision="fp8"), "precision", "expected fp32, tf32, bf16, fp16 or bf16-true, got 'fp8'"),
    (TrainingConfig("flan-t5-small", quantization="nf3"), "quantization", "expected none, int8 or nf4, got 'nf3'"),
])
def test_a_way_simfl_cannot_model_is_one_sentence(config, field, message):
    with pytest.raises(ValueError) as e:
        config.check()
    assert (e.value.field, e.value.message) == (field, message)


def _profile(name: str):
    from simfl.config.datadirs import PROFILE_DIR, REPO_ROOT

    return REPO_ROOT / PROFILE_DIR / f"{name}.yaml"
