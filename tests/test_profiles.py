"""Profile lookup: interpolation, extrapolation warnings, OOM and coverage errors; shipped data files."""

import numpy as np
import pytest

from simfl.build import step_cost
from simfl.config.load import REPO_ROOT, load_model
from simfl.config.profiles import HardwareProfile, NetworkModel
from simfl.errors import ScenarioError
from simfl.fl.partition import dirichlet_counts

ORIN = load_model(HardwareProfile, REPO_ROOT / "hardware_profiles/jetson-agx-orin-64gb.yaml")


def test_measured_point_is_returned_exactly():
    c = step_cost(ORIN, "flan-t5-small", "lora", "backprop", 512, 8)
    assert (c.step_time_s, c.power_w, c.estimated_because) == (0.73, 28.1, ())


def test_batch_between_points_is_interpolated():
    c = step_cost(ORIN, "flan-t5-small", "lora", "backprop", 512, 4)
    assert c.step_time_s == pytest.approx(0.55 + (0.73 - 0.55) * 3 / 7)
    assert c.power_w == pytest.approx(16.7 + (28.1 - 16.7) * 3 / 7)
    assert c.estimated_because == ()


def test_batch_beyond_points_is_extrapolated_with_warning():
    c = step_cost(ORIN, "flan-t5-small", "lora", "backprop", 512, 256)
    assert c.step_time_s == pytest.approx(8.15 + (8.15 - 4.15) * 2)
    assert c.estimated_because == ("batch 256 is outside the batch sizes [1, 8, 16, 32, 64, 128] of the profile: "
                                   "extrapolated",)


def test_oom_batch_and_above_are_errors():
    for batch in (16, 24):
        with pytest.raises(ScenarioError, match=f"jetson-agx-orin-64gb cannot train flan-t5-large lora backprop "
                                                f"seq_len 512 at batch {batch}: out of memory \\(measured OOM at "
                                                f"batch 16\\)"):
            step_cost(ORIN, "flan-t5-large", "lora", "backprop", 512, batch)


def test_estimates_never_called_measured():
    # Full fine-tuning OOM rows are derived from LoRA's: the message says estimated.
    with pytest.raises(ScenarioError, match=r"out of memory \(estimated OOM at batch 16\)"):
        step_cost(ORIN, "flan-t5-large", "full", "backprop", 512, 16)
    # A derived entry, between two derived entries, and a spec-derived profile each say why.
    c = step_cost(ORIN, "flan-t5-small", "full", "backprop", 512, 8)
    assert len(c.estimated_because) == 1 and c.estimated_because[0].startswith("batch 8 entry is estimated: ")
    c = step_cost(ORIN, "flan-t5-small", "full", "backprop", 512, 4)
    assert [w[:19] for w in c.estimated_because] == ["batch 1 entry is es", "batch 8 entry is es"]
    nano = load_model(HardwareProfile, REPO_ROOT / "hardware_profiles/jetson-orin-nano-8gb.yaml")
    c = step_cost(nano, "flan-t5-small", "lora", "backprop", 512, 8)
    assert c.estimated_because[0] == f"spec-derived profile: {nano.method}"


def test_uncovered_model_is_an_error():
    with pytest.raises(ScenarioError, match="no training entry for flan-t5-small lora backprop seq_len 256"):
        step_cost(ORIN, "flan-t5-small", "lora", "backprop", 256, 8)
    with pytest.raises(ScenarioError, match="cannot train flan-t5-xl .* at batch 1: out of memory"):
        step_cost(ORIN, "flan-t5-xl", "lora", "backprop", 512, 1)


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
    full = [p for p in ORIN.training if p.finetuning == "full"]
    assert full and all(p.estimated and p.derivation for p in full)


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
