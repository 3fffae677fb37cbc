"""Every shipped scenario validates and runs; the Python API returns the documented shapes."""

from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

import simfl
from simfl.config.load import REPO_ROOT

ALL_YAML = sorted((REPO_ROOT / "scenarios").rglob("*.yaml"))
# sweep and plan files sit beside the scenarios they vary (scenarios/planning/): they have axes or choose
SPECS = [p for p in ALL_YAML if {"axes", "choose"} & set(yaml.safe_load(p.read_text()))]
SHIPPED = [p for p in ALL_YAML if p not in SPECS]


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
    assert isinstance(result.summary, Mapping) and isinstance(result.summary.to_dict(), dict)
    assert list(result.rounds["round"]) == [0, 1, 2, 3]
    assert len(result.clients) == 40


def test_local_epochs_follow_the_partition():
    sc = simfl.load_scenario(REPO_ROOT / "scenarios" / "mixed-fleet.yaml")
    sc = sc.model_copy(update={"federation": sc.federation.model_copy(update={"rounds": 2, "dropout_prob": 0.0,
                                                                              "deadline_s": None})})
    from simfl.build import build
    from simfl.partition import dirichlet_counts
    from simfl.sim.streams import Streams
    built = build(sc)
    counts = dirichlet_counts(14732, 100, 0.5, Streams.from_seed(sc.seed).partition)
    assert built.inputs.population.steps.tolist() == [-(-int(n) // 8) for n in counts]


@pytest.mark.parametrize("k, o, selected", [(10, 0.25, 13), (10, 0.1, 11), (10, 0.3, 13), (10, 0.31, 14),
                                            (3, 0.5, 5), (7, 0.0, 7)])
def test_over_selection_rounds_up(k, o, selected):
    # ceil(K x (1 + o)): 12.5 selects 13, never 12; 10 x 1.1 = 11.000000000000002 still selects 11.
    from simfl.config.scenario import SyncFederation
    assert SyncFederation(clients_per_round=k, rounds=1, over_selection=o).clients_selected == selected


def test_common_random_numbers_selection_ignores_other_concerns():
    # Changing the dropout probability, the deadline or any accounting value leaves every round's
    # selection exactly as it was: each concern draws from its own stream (simfl/sim/streams.py).
    base = simfl.load_scenario(REPO_ROOT / "scenarios" / "quickstart.yaml")

    def selection(**changes):
        fed = {"rounds": 30, **{k: v for k, v in changes.items() if k in ("dropout_prob", "deadline_s")}}
        sc = base.model_copy(update={"federation": base.federation.model_copy(update=fed)})
        if "price" in changes:
            sc = sc.model_copy(update={"accounting": sc.accounting.model_copy(
                update={"price_per_kwh": changes["price"], "carbon_g_per_kwh": 10.0})})
        clients = simfl.simulate(sc).clients
        return clients.groupby("round")["client"].apply(list).tolist(), set(clients["status"])

    reference, statuses = selection()
    assert statuses == {"completed"}
    for changes in ({"dropout_prob": 0.3}, {"dropout_prob": 0.9}, {"deadline_s": 4.0}, {"price": 1.5}):
        chosen, statuses = selection(**changes)
        assert chosen == reference, changes
        if "price" not in changes:
            assert statuses != {"completed"}, changes  # the change did act on the run


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(REPO_ROOT / "scenarios")))
def test_shipped_plan_and_sweep_files_load(path: Path):
    from simfl.plan.spec import PlanSpec, SweepSpec, load_spec

    spec, scenario = load_spec(path, PlanSpec if "choose" in yaml.safe_load(path.read_text()) else SweepSpec)
    assert scenario.file.is_file()
