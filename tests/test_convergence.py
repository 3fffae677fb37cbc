"""Rounds from a convergence table: the law's fit, exact rows, anchors, and scenarios that use them."""

import math

import pytest
import yaml

from simfl import load_scenario, simulate
from simfl.convergence import fit_law, resolve_rounds
from simfl.errors import ScenarioError
from tests.test_cli import scenario_file


def table(tmp_path, a=400.0, b=0.5, c=0.25, source=True, name="conv.csv"):
    lines = ["# source: synthetic, rounds = 400 K^-0.5 s^-0.25"] if source else []
    lines.append("clients_per_round,local_steps,dirichlet_alpha,server_optimizer,rounds_to_target")
    for k in (5, 10, 20):
        for s in (1, 2, 4):
            lines.append(f"{k},{s},1.0,fedadamw,{a * k ** -b * s ** -c}")
    lines.append("40,1,1.0,fedadamw,")  # did not reach the target: left out of the law
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def test_law_recovers_known_exponents(tmp_path):
    from simfl.convergence import read_table

    rows, source = read_table(table(tmp_path), "f")
    law = fit_law(rows)
    assert (law.a, law.b, law.c) == (pytest.approx(400.0), pytest.approx(0.5), pytest.approx(0.25))
    assert law.points == 9 and law.max_abs_log_error < 1e-9 and source.startswith("synthetic")


def test_exact_row_law_and_anchor_by_hand(tmp_path):
    t = table(tmp_path)
    fed = {"clients_per_round": 10, "partition": {"dirichlet_alpha": 1.0}}
    rounds, how, _ = resolve_rounds({"convergence": t.name}, fed, 2, tmp_path / "s.yaml")
    assert rounds == math.ceil(400 * 10 ** -0.5 * 2 ** -0.25) and how.startswith("measured in conv.csv at K 10")
    rounds, how, _ = resolve_rounds({"convergence": t.name}, {**fed, "clients_per_round": 8}, 3, tmp_path / "s.yaml")
    assert rounds == math.ceil(400 * 8 ** -0.5 * 3 ** -0.25) and how.startswith("predicted by conv.csv's law")
    # the seed paper's 856 rounds (FLAN-T5-base, K 10, 2 local steps) at K 20: 856 x 2^-0.5 = 605.3
    anchor = {"rounds": 856, "clients_per_round": 10, "local_steps": 2, "source": "seed paper"}
    rounds, how, _ = resolve_rounds({"convergence": t.name, "anchor": anchor}, {**fed, "clients_per_round": 20}, 2,
                                 tmp_path / "s.yaml")
    assert rounds == 606 and how.startswith("seed paper: 856 rounds at K 10")
    rounds, how, _ = resolve_rounds({"convergence": t.name}, {**fed, "clients_per_round": 80}, 2, tmp_path / "s.yaml")
    assert "outside the measured K 5-20" in how


def test_bad_tables_are_one_line_errors(tmp_path):
    fed = {"clients_per_round": 10}
    with pytest.raises(ScenarioError, match="has no '# source:' line"):
        resolve_rounds({"convergence": table(tmp_path, source=False).name}, fed, 2, tmp_path / "s.yaml")
    (tmp_path / "bad.csv").write_text("# source: x\nclients_per_round,rounds_to_target\n10,5\n")
    with pytest.raises(ScenarioError, match="lacks column\\(s\\) local_steps, dirichlet_alpha, server_optimizer"):
        resolve_rounds({"convergence": "bad.csv"}, fed, 2, tmp_path / "s.yaml")
    ok = table(tmp_path, name="ok.csv")
    with pytest.raises(ScenarioError, match="the run ok.csv measured at K 40 with 1 local steps did not reach"):
        resolve_rounds({"convergence": ok.name}, {"clients_per_round": 40}, 1, tmp_path / "s.yaml")
    with pytest.raises(ScenarioError, match="give training.local_steps"):
        resolve_rounds({"convergence": table(tmp_path).name}, fed, None, tmp_path / "s.yaml")


def test_a_scenario_gets_its_rounds_from_the_table_and_says_so(tmp_path):
    t = table(tmp_path)

    def conv(sc):
        sc["federation"]["rounds"] = {"convergence": t.name}
        sc["training"]["local_steps"] = 2
    path = scenario_file(tmp_path, conv)
    sc = load_scenario(path)
    assert sc.federation.rounds == math.ceil(400 * 10 ** -0.5 * 2 ** -0.25)
    twice = load_scenario(path, {"federation.clients_per_round": 20})
    assert twice.federation.rounds == math.ceil(400 * 20 ** -0.5 * 2 ** -0.25)  # more clients, fewer rounds
    r = simulate(twice)
    assert r.summary["rounds_completed"] == twice.federation.rounds
    rounds = [e for e in r.summary["estimated_inputs"] if e["field"] == "federation.rounds"]
    assert rounds and rounds[0]["reason"].startswith("measured in conv.csv at K 20")
    resolved = tmp_path / "resolved.yaml"
    from simfl.config.load import dump_scenario

    resolved.write_text(dump_scenario(twice))
    assert yaml.safe_load(resolved.read_text())["federation"]["rounds"] == twice.federation.rounds


def held_out_table(tmp_path, exact_seeds=()):
    """rounds = 400 K^-0.5 at 2 local steps, K 10's run 10 % slow; more runs at K 10 if given."""
    lines = ["# source: synthetic", "clients_per_round,local_steps,dirichlet_alpha,server_optimizer,rounds_to_target"]
    for k, f in ((5, 1.0), (10, 1.1), (20, 1.0)):
        lines.append(f"{k},2,1.0,fedavg,{400 * k ** -0.5 * f}")
    lines += [f"10,2,1.0,fedavg,{r}" for r in exact_seeds]
    p = tmp_path / "held.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_rounds_log_sd_from_held_out_runs_and_from_seeds_by_hand(tmp_path):
    t = held_out_table(tmp_path)
    fed = {"clients_per_round": 8}
    # leave K 5 out: the law through K 10 (x1.1) and K 20 predicts K 5 x 1.1 x 1.1 = 1.21 too many; K 20 likewise;
    # leave K 10 out: the exact law, 1.1 off. Held-out |log errors| ln 1.1, ln 1.21, ln 1.21: their 80th percentile
    # (linear, position 0.8 x 2 = 1.6, between two ln 1.21) is ln 1.21, the 80 % interval; drawn with log-sd
    # ln 1.21 / 1.2816 (the 90th percentile of a standard normal)
    _, how, sd = resolve_rounds({"convergence": t.name}, fed, 2, tmp_path / "s.yaml")
    assert sd == pytest.approx(math.log(1.21) / 1.2815515655446004, rel=1e-9)
    assert "80 % interval -17 % to +21 %, from 3 runs each held out" in how
    # at K 10, two more runs (seeds) measured 100 and 121 besides the 126.5: their own spread, the sample sd of logs
    t = held_out_table(tmp_path, exact_seeds=(100, 121))
    _, how, sd = resolve_rounds({"convergence": t.name}, {"clients_per_round": 10}, 2, tmp_path / "s.yaml")
    logs = [math.log(400 * 10 ** -0.5 * 1.1), math.log(100), math.log(121)]
    mean = sum(logs) / 3
    assert sd == pytest.approx(math.sqrt(sum((x - mean) ** 2 for x in logs) / 2), rel=1e-9)
    assert "spread of the 3 runs measured there" in how


def test_replicates_draw_the_rounds_to_target(tmp_path):
    from simfl.build import ROUNDS_KEY, build
    from simfl.sensitivity import Fixed

    t = held_out_table(tmp_path)

    def conv(sc):
        sc["federation"]["rounds"] = {"convergence": t.name}
        sc["federation"]["clients_per_round"] = 8
        sc["training"]["local_steps"] = 2
    sc = load_scenario(scenario_file(tmp_path, conv))
    nominal = sc.federation.rounds  # the law at K 8: 400 x 8^-0.5 x (fit's x1.1 at K 10 pulls it up a little)
    sd = math.log(1.21) / 1.2815515655446004  # the 80 % interval's half-width over Z80, as above
    assert sc.federation.rounds_log_sd == pytest.approx(sd)
    assert any(k == ROUNDS_KEY for k, _, _ in build(sc).uncertain)
    high = simulate(sc, draws=Fixed({ROUNDS_KEY: 1.0})).summary  # one sigma up: rounds x exp(sd)
    assert high.rounds_completed == round(nominal * math.exp(sd))
    assert simulate(sc).summary.rounds_completed == nominal  # no draws: the table's rounds as they are
