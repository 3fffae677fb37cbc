"""Profile lookup: interpolation, extrapolation warnings, OOM and coverage errors; shipped data files."""

import re

import numpy as np
import pytest
import yaml

from simfl.config.load import REPO_ROOT, load_model
from simfl.config.profiles import HardwareProfile, NetworkModel
from simfl.errors import ScenarioError
from simfl.hardware.lookup import step_cost
from simfl.partition import dirichlet_counts
from simfl.training import TrainingConfig

ORIN = load_model(HardwareProfile, REPO_ROOT / "hardware_profiles/jetson-agx-orin-64gb.yaml")


def test_measured_point_is_returned_exactly():
    c = step_cost(ORIN, TrainingConfig("flan-t5-small", "lora", "backprop", 512, batch_size=8))
    assert (c.step_time_s, c.power_w, c.estimated_because) == (0.73, 28.1, ())


def test_batch_between_points_is_interpolated():
    c = step_cost(ORIN, TrainingConfig("flan-t5-small", "lora", "backprop", 512, batch_size=4))
    assert c.step_time_s == pytest.approx(0.55 + (0.73 - 0.55) * 3 / 7)
    assert c.power_w == pytest.approx(16.7 + (28.1 - 16.7) * 3 / 7)
    assert c.estimated_because == ()


def test_batch_beyond_points_is_predicted_by_the_model_and_flagged():
    a100 = load_model(HardwareProfile, REPO_ROOT / "hardware_profiles/a100-80gb.yaml")
    c = step_cost(a100, TrainingConfig("flan-t5-small", "lora", "backprop", 512, batch_size=160))
    # The A100's measured steps grow 0.30 s per 64 samples from batch 64 to 128 (0.51 s to 0.81 s): the model
    # continues about that line (0.96 s at 160), not the flat line of its batches 1 to 16.
    assert 0.96 * 0.9 < c.step_time_s < 0.96 * 1.1
    assert len(c.estimated_because) == 1
    assert c.estimated_because[0].startswith("predicted by the hardware model (fitted to 15 measured points of "
                                             "a100-80gb); 80 % interval -")
    assert "within device validation" in c.estimated_because[0]


def test_a_batch_predicted_not_to_fit_is_an_error_that_says_predicted():
    # The example: batch 4096 on the Orin once ran with a warning.
    with pytest.raises(ScenarioError, match=r"jetson-agx-orin-64gb cannot train flan-t5-small lora backprop "
                                            r"seq_len 512 at batch 4096: out of memory \(predicted by the hardware "
                                            r"model: needs [0-9.]+ GB of 64.0 GB\)"):
        step_cost(ORIN, TrainingConfig("flan-t5-small", "lora", "backprop", 512, batch_size=4096))
    # Measured to run wins over the model: every measured batch of the Orin runs.
    for batch in (1, 8, 16, 32, 64, 128):
        step_cost(ORIN, TrainingConfig("flan-t5-small", "lora", "backprop", 512, batch_size=batch))


def test_oom_batch_and_above_are_errors():
    for batch in (16, 24):
        with pytest.raises(ScenarioError, match=f"jetson-agx-orin-64gb cannot train flan-t5-large lora backprop "
                                                f"seq_len 512 at batch {batch}: out of memory \\(measured OOM at "
                                                f"batch 16\\)"):
            step_cost(ORIN, TrainingConfig("flan-t5-large", "lora", "backprop", 512, batch_size=batch))


def test_configurations_nobody_measured_come_from_the_model():
    # Full fine-tuning, forward gradient, another sequence length, another rank: none measured on the Orin.
    lora = step_cost(ORIN, TrainingConfig("flan-t5-base", "lora", "backprop", 512, batch_size=8)).step_time_s
    full = step_cost(ORIN, TrainingConfig("flan-t5-base", "full", "backprop", 512, batch_size=8))
    assert full.estimated_because and lora < full.step_time_s < 1.6 * lora
    fg = step_cost(ORIN, TrainingConfig("flan-t5-base", method="forward_gradient", batch_size=8, perturbations=16))
    assert fg.step_time_s > 3 * lora
    short = step_cost(ORIN, TrainingConfig("flan-t5-base", "lora", "backprop", 128, batch_size=8))
    assert short.step_time_s < lora and short.estimated_because
    r64 = step_cost(ORIN, TrainingConfig("flan-t5-base", "lora", "backprop", 512, batch_size=8, lora_r=64))
    r16 = step_cost(ORIN, TrainingConfig("flan-t5-base", batch_size=8, lora_r=17))  # unmeasured rank, near 16
    assert r64.step_time_s > r16.step_time_s and r64.estimated_because


def test_datasheet_only_profile_is_estimated_with_the_cross_device_error():
    nano = load_model(HardwareProfile, REPO_ROOT / "hardware_profiles/jetson-orin-nano-8gb.yaml")
    assert nano.training == [] and nano.estimated
    c = step_cost(nano, TrainingConfig("flan-t5-small", "lora", "backprop", 512, batch_size=8))
    assert c.estimated_because[0].startswith("predicted by the hardware model (datasheet of jetson-orin-nano-8gb "
                                             "with soc-gpu class parameters (jetson-agx-orin-64gb))")
    assert "other device validation" in c.estimated_because[0]


def test_a_profile_without_datasheet_fields_says_what_it_lacks():
    bare = ORIN.model_copy(update={"device_class": None})
    with pytest.raises(ScenarioError, match="profile jetson-agx-orin-64gb did not measure flan-t5-small lora "
                                            "backprop seq_len 256 at batch 8, and it lacks device_class, which the "
                                            "hardware model needs to predict it; it measured: flan-t5-base"):
        step_cost(bare, TrainingConfig("flan-t5-small", "lora", "backprop", 256, batch_size=8))
    with pytest.raises(ScenarioError, match="cannot train flan-t5-xl .* at batch 1: out of memory"):
        step_cost(ORIN, TrainingConfig("flan-t5-xl", "lora", "backprop", 512, batch_size=1))


def test_every_shipped_data_file_is_valid_and_sourced():
    for p in sorted((REPO_ROOT / "hardware_profiles").glob("*.yaml")):
        h = load_model(HardwareProfile, p)
        assert h.name == p.stem and h.source
        assert h.estimated == bool(h.method)
    for p in sorted((REPO_ROOT / "network_models").glob("*.yaml")):
        n = load_model(NetworkModel, p)
        assert n.name == p.stem and n.source


def test_paper_profiles_carry_every_measured_point():
    a100 = load_model(HardwareProfile, REPO_ROOT / "hardware_profiles/a100-80gb.yaml")
    measured = [p for p in a100.training + ORIN.training if not p.estimated]
    assert len(measured) == 30  # every row of paper-facts.md Tables 2+4, OOM rows included
    assert sum(p.oom for p in measured) == 3
    assert measured == a100.training + ORIN.training  # nothing derived: the model predicts the rest


def test_wired_chain_sums_to_reference():
    n = load_model(NetworkModel, REPO_ROOT / "network_models/ethernet-1gbit.yaml")
    assert n.energy_per_bit_up_j == pytest.approx(188.5e-9)
    lte = load_model(NetworkModel, REPO_ROOT / "network_models/lte.yaml")
    assert lte.energy_per_bit_up_j == pytest.approx(19e-6 + 188.5e-9)
    assert lte.energy_per_bit_down_j == pytest.approx(76.2e-6 + 188.5e-9)


def test_paper_lte_reproduces_table1_full_small():
    n = load_model(NetworkModel, REPO_ROOT / "network_models/paper-lte.yaml")
    bits_per_round = 10 * 2 * 76_961_152 * 32
    assert bits_per_round * n.energy_per_bit_up_j / 3.6e6 == pytest.approx(0.81, abs=0.005)


def test_partition_sums_is_seeded_and_more_even_with_larger_alpha():
    a = dirichlet_counts(14732, 100, 1.0, np.random.default_rng(0))
    b = dirichlet_counts(14732, 100, 1.0, np.random.default_rng(0))
    assert a.sum() == 14732 and (a >= 1).all() and (a == b).all()
    cv = lambda alpha: np.mean([  # noqa: E731  coefficient of variation, averaged over seeds
        (c := dirichlet_counts(14732, 100, alpha, np.random.default_rng(s))).std() / c.mean() for s in range(20)])
    assert cv(0.1) > cv(1.0) > cv(10.0)
    tiny = dirichlet_counts(20, 20, 0.01, np.random.default_rng(1))
    assert (tiny == 1).all()
    with pytest.raises(ValueError):
        dirichlet_counts(5, 10, 1.0, np.random.default_rng(0))


def test_derived_points_are_never_called_measured():
    from simfl.config.profiles import TrainingPoint

    base = dict(model="flan-t5-small", finetuning="full", method="backprop", seq_len=512)
    derived = ORIN.model_copy(update={"training": [
        TrainingPoint(**base, batch_size=1, step_time_s=1.0, estimated=True, derivation="by hand"),
        TrainingPoint(**base, batch_size=8, step_time_s=2.0, estimated=True, derivation="by hand"),
        TrainingPoint(**base, batch_size=16, oom=True, estimated=True, derivation="by hand")]})
    with pytest.raises(ScenarioError, match=r"out of memory \(estimated OOM at batch 16\)"):
        step_cost(derived, TrainingConfig("flan-t5-small", "full", "backprop", 512, batch_size=16))
    c = step_cost(derived, TrainingConfig("flan-t5-small", "full", "backprop", 512, batch_size=4))
    assert c.step_time_s == pytest.approx(1.0 + 3 / 7)
    assert c.estimated_because == ("batch 1 entry is estimated: by hand", "batch 8 entry is estimated: by hand")


def _profile_with(rows):
    from simfl.config.profiles import HardwareProfile

    return HardwareProfile.model_validate({"name": "p", "source": "test", "estimated": False, "peak_flops": 1e14,
                                           "memory_bytes": 6e10, "training": rows})


def test_two_rows_for_one_configuration_and_batch_are_an_error_naming_both():
    from pydantic import ValidationError

    row = {"model": "flan-t5-small", "finetuning": "lora", "seq_len": 512}
    cases = [
        ([{**row, "batch_size": 2, "step_time_s": 0.3}, {**row, "batch_size": 4, "step_time_s": 0.61},
          {**row, "batch_size": 8, "step_time_s": 1.2}, {**row, "batch_size": 4, "step_time_s": 0.93}],
         "training[1] and training[3] are both flan-t5-small lora backprop seq_len 512 batch 4 (step_time_s 0.61 "
         "and step_time_s 0.93: keep the one you trust)"),
        ([{**row, "batch_size": 4, "step_time_s": 0.61}, {**row, "batch_size": 4, "oom": True}],
         "training[0] and training[1] are both flan-t5-small lora backprop seq_len 512 batch 4 (step_time_s 0.61 "
         "and oom: keep the one you trust)"),
        ([{**row, "batch_size": 4, "step_time_s": 0.61}, {**row, "batch_size": 4, "step_time_s": 0.61}],
         "training[0] and training[1] are both flan-t5-small lora backprop seq_len 512 batch 4 (the same row twice: "
         "keep one)"),
        # the lookup matches adapters as a set: [v, q] is [q, v]
        ([{**row, "batch_size": 4, "step_time_s": 0.61}, {**row, "batch_size": 4, "step_time_s": 0.7,
                                                         "lora_targets": ["v", "q"]}],
         "training[0] and training[1] are both flan-t5-small lora backprop seq_len 512 batch 4"),
    ]
    for rows, message in cases:
        with pytest.raises(ValidationError, match=re.escape(message)):
            _profile_with(rows)
    # another rank, sequence length or method is another configuration: no clash
    _profile_with([{**row, "batch_size": 4, "step_time_s": 0.61}, {**row, "batch_size": 4, "step_time_s": 0.7,
                                                                   "lora_r": 8},
                   {**row, "batch_size": 4, "step_time_s": 0.9, "seq_len": 256}])


def test_a_contradictory_profile_is_one_line_through_the_cli(tmp_path):
    from tests.test_cli import QUICK, simfl

    row = {"model": "flan-t5-small", "finetuning": "lora", "seq_len": 512, "batch_size": 8}
    p = tmp_path / "dup.yaml"
    p.write_text(yaml.safe_dump({"name": "dup", "source": "test", "estimated": False, "peak_flops": 1e14,
                                 "memory_bytes": 6e10, "training": [{**row, "step_time_s": 0.5},
                                                                    {**row, "step_time_s": 0.9}]}))
    r = simfl("validate", QUICK, "--set", f"fleet[0].device={p}")
    assert r.returncode == 2 and r.stderr == (f"error: {p}: training[0] and training[1] are both flan-t5-small lora "
                                              "backprop seq_len 512 batch 8 (step_time_s 0.5 and step_time_s 0.9: "
                                              "keep the one you trust)\n")


def test_whole_machines_carry_the_machines_price_and_the_components_speed():
    node = load_model(HardwareProfile, REPO_ROOT / "hardware_profiles/jetson-agx-orin-64gb-node.yaml")
    # the seed paper's testbed node: EUR 2,400 an Orin plus a tenth of the EUR 700 of SSDs = EUR 2,470, written
    # off over 5 years of 8,766 h (365.25 days): 2470 / (5 x 8766) = 0.05636 EUR an hour
    assert node.price.purchase == 2470.0 and node.whole_machine.component == "jetson-agx-orin-64gb"
    assert node.price.per_hour == pytest.approx(2470.0 / (5 * 365.25 * 24))
    assert node.training == ORIN.training  # the component's measured steps
    assert "SSD" in node.whole_machine.includes and node.whole_machine.source.startswith("seed paper")
    kit = load_model(HardwareProfile, REPO_ROOT / "hardware_profiles/jetson-orin-nano-super-devkit.yaml")
    # USD 249 at 0.92 EUR per USD = EUR 229.08; no source gave its idle power, so it has none and no step power
    assert kit.price.purchase == 229.08 and kit.whole_machine.component == "jetson-orin-nano-8gb"
    assert kit.idle_power_w is None and "Idle power: not found" in kit.source
    cost = step_cost(kit, TrainingConfig("flan-t5-small", batch_size=8))
    assert cost.power_w is None and cost.estimated_because
    # the Super kit's datasheet: 67 of the AGX Orin's 275 TOPS, so 42.5 x 67 / 275 = 10.35 TFLOP/s, 102 GB/s, 25 W
    assert kit.peak_flops == pytest.approx(10.35e12) and kit.memory_bandwidth_bytes_per_s == 102e9
    assert kit.power_limit_w == 25.0


def test_a_whole_machine_must_say_what_it_includes(tmp_path):
    data = yaml.safe_load((REPO_ROOT / "hardware_profiles/jetson-orin-nano-super-devkit.yaml").read_text())
    del data["whole_machine"]["includes"]
    path = tmp_path / "jetson-orin-nano-super-devkit.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError, match="whole_machine.includes"):
        load_model(HardwareProfile, path)
