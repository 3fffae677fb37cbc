"""Every shipped scenario validates and runs; the Python API returns the documented shapes."""

from pathlib import Path

import pytest

import simfl
from simfl.config.load import REPO_ROOT

SHIPPED = sorted((REPO_ROOT / "scenarios").rglob("*.yaml"))


def test_there_is_the_paper_grid():
    names = {p.stem for p in (REPO_ROOT / "scenarios" / "paper").glob("*.yaml")}
    assert len(names) == 24 and "large-orin-lte-lora" in names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO_ROOT / "scenarios")))
def test_shipped_scenario_runs(path: Path):
    sc = simfl.load_scenario(path)
    short = sc.model_copy(update={"federation": sc.federation.model_copy(update={"rounds": 3})})
    result = simfl.simulate(short)
    assert result.summary["rounds_completed"] == 3
    assert len(result.rounds) == 3
    assert result.summary["energy_j"]["total"] > 0
    assert set(result.clients["status"]) <= {"completed", "dropped", "late", "surplus"}


def test_simulate_api_and_progress_callback():
    sc = simfl.load_scenario(REPO_ROOT / "scenarios" / "quickstart.yaml")
    sc = sc.model_copy(update={"federation": sc.federation.model_copy(update={"rounds": 4})})
    seen = []
    result = simfl.simulate(sc, on_round=seen.append)
    assert seen == [0, 1, 2, 3]
    assert isinstance(result.summary, dict)
    assert list(result.rounds["round"]) == [0, 1, 2, 3]
    assert len(result.clients) == 40


def test_local_epochs_follow_the_partition():
    sc = simfl.load_scenario(REPO_ROOT / "scenarios" / "mixed-fleet.yaml")
    sc = sc.model_copy(update={"federation": sc.federation.model_copy(update={"rounds": 2, "dropout_prob": 0.0,
                                                                              "deadline_s": None})})
    import numpy as np

    from simfl.build import build
    from simfl.fl.partition import dirichlet_counts
    built = build(sc, np.random.default_rng(sc.seed))
    counts = dirichlet_counts(14732, 100, 0.5, np.random.default_rng(sc.seed))
    assert built.inputs.population.steps.tolist() == [-(-int(n) // 8) for n in counts]


@pytest.mark.parametrize("k, o, selected", [(10, 0.25, 13), (10, 0.1, 11), (10, 0.3, 13), (10, 0.31, 14),
                                            (3, 0.5, 5), (7, 0.0, 7)])
def test_over_selection_rounds_up(k, o, selected):
    # ceil(K x (1 + o)): 12.5 selects 13, never 12; 10 x 1.1 = 11.000000000000002 still selects 11.
    from simfl.config.scenario import FederationSpec
    assert FederationSpec(clients_per_round=k, rounds=1, over_selection=o).clients_selected == selected
