"""The typed Summary is the one source of every figure: readers show its numbers, never their own.

A Summary is doctored so that its display figures disagree with the figures they are made from (kWh per part
against energy_j / 3.6e6, hours against sim_time_s / 3600, GB against bits / 8e9): the console table,
report.html, energy.png, summary.json and a plan's row must show the doctored numbers. A static check then
finds any module that converts joules to kWh outside the summary module and the constant's home.
"""

import ast
import dataclasses
import math
from pathlib import Path

import pytest

import simfl.api
from simfl import load_scenario, simulate
from simfl.summary import figure_stats, replicate_stats
from simfl.summary.figures import FIGURES, EnergyKWh, NetworkGB
from tests.test_cli import scenario_file

PACKAGE = Path(simfl.api.__file__).resolve().parent

# Numbers nobody can get by converting the run's own figures.
KWH = EnergyKWh(client_compute=1.25, client_idle=2.5, network=3.75, server=5.0, total=77.0)
HOURS = 12.34
GB = NetworkGB(down=7.0, up=8.0)


@pytest.fixture(scope="module")
def doctored(tmp_path_factory):
    result = simulate(load_scenario(scenario_file(tmp_path_factory.mktemp("s"), rounds=3)))
    s = dataclasses.replace(result.summary, energy_kwh=KWH, sim_time_h=HOURS, network_gb=GB)
    assert s.energy_j.total / 3.6e6 != KWH.total and s.sim_time_s / 3600 != HOURS  # truly inconsistent
    return dataclasses.replace(result, summary=s)


def test_console_table_shows_the_summarys_numbers(doctored):
    from rich.console import Console

    from simfl.cli.simulate import _summary_table

    console = Console(width=200, record=True)
    console.print(_summary_table(doctored.summary))
    lines = console.export_text().splitlines()

    def row(label):
        return next(ln for ln in lines if f" {label} " in ln)
    for part, v in [("client compute", "1.25"), ("client idle", "2.5"), ("network", "3.75"), ("server", "5"),
                    ("total", "77")]:
        assert row(f"energy: {part}").rstrip(" │").endswith(f" {v} kWh")
    assert " 12.34 h (" in row("simulated time") and row("data down / up").rstrip(" │").endswith(" 7.000 / 8.000 GB")


def test_report_and_energy_plot_show_the_summarys_numbers(doctored, tmp_path, monkeypatch):
    import simfl.report.plots as plots
    from simfl.report.html import run_report

    html = run_report(doctored, tmp_path).read_text()
    assert "<td>network</td><td>3.75</td>" in html and "<td>total</td><td>77</td>" in html
    assert "<b>12.34 h</b>" in html and "<b>77 kWh</b>" in html and "7 / 8 GB" in html
    figs = []
    monkeypatch.setattr(plots.plt, "close", figs.append)
    plots.energy_breakdown(doctored.summary, tmp_path / "energy.png")
    ax = figs[0].axes[0]
    assert [b.get_height() for b in ax.patches] == [1.25, 2.5, 3.75, 5.0]
    assert ax.get_title().startswith("quickstart: 77 kWh over 3 rounds")


def test_summary_json_and_plan_rows_take_kwh_total_from_the_summary(doctored, tmp_path, monkeypatch):
    from simfl.plan.evaluate import evaluate_point

    assert doctored.summary.to_dict()["kwh_total"] == 77.0 and doctored.summary["kwh_total"] == 77.0
    monkeypatch.setattr(simfl.api, "simulate", lambda sc, *a, **k: doctored)
    row = evaluate_point(str(scenario_file(tmp_path, rounds=3)), {})
    assert row["status"] == "ok" and row["kwh_total"] == 77.0
    assert row["energy_j.total"] == doctored.summary.energy_j.total


def test_summary_reads_as_the_json_mapping_and_is_frozen(doctored):
    s = doctored.summary
    assert list(s)[:6] == ["scenario", "seed", "mode", "rounds_completed", "rounds_without_update",
                           "rounds_short_of_k"]
    assert "energy_kwh" not in s and "sim_time_h" not in s and "replicates" not in s  # not summary.json keys
    assert s["energy_j"] == {**s["energy_j"]} and s["client_rounds"]["completed"] == 30
    assert s.figure("energy_j.network") == s.energy_j.network == s["energy_j"]["network"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.sim_time_s = 0.0
    more = s.with_warnings(["from the host"])
    assert more.warnings == (*s.warnings, "from the host") and "from the host" not in s.warnings


def test_replicate_statistics_by_hand(doctored):
    f = figure_stats([1.0, 2.0, 3.0, None])  # None: a figure the run did not have, left out
    assert (f.n, f.mean, f.sd) == (3, 2.0, 1.0)
    assert f.ci95_high == pytest.approx(2.0 + 4.302652729749 / math.sqrt(3))
    # numpy's linear percentile: position 0.05 x 2 = 0.1 and 0.95 x 2 = 1.9 between the sorted values
    assert (f.p05, f.p95) == (pytest.approx(1.1), pytest.approx(2.9))
    s = doctored.summary
    other = dataclasses.replace(s, seed=s.seed + 1, co2_kg=s.co2_kg + 2.0)
    stats = replicate_stats([s, other])
    with_stats = s.with_replicates(stats)
    j = with_stats.to_dict()["replicates"]
    assert list(j)[:2] == ["count", "seeds"] and j["count"] == 2 and j["seeds"] == [s.seed, s.seed + 1]
    assert set(j) == {"count", "seeds", *FIGURES} and j["co2_kg"]["mean"] == pytest.approx(s.co2_kg + 1.0)
    assert set(j["co2_kg"]) == {"n", "mean", "sd", "ci95_low", "ci95_high"}  # percentiles are for plans only


# -- static: nobody else converts joules to kWh -------------------------------------------------------------

HOME = "costs.py"  # J_PER_KWH and kwh()
# Where a conversion to kWh is the figure being made, not a reader re-deriving one of the Summary's.
MAKERS = {
    "summary/make.py": "the Summary",
    "sim/carbon.py": "grams of CO2 from joules at g/kWh, during the run (flat_grams for every round kernel)",
    "fl/train.py": "simfl train's own table (kWh to a target loss), not a run Summary",
    "report/training.py": "simfl train's val loss against kWh, from its own table",
}


def _conversions(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, float) and node.value == 3.6e6:
            found.append((node.lineno, "the literal 3.6e6"))
        elif isinstance(node, ast.Name) and node.id == "J_PER_KWH":
            found.append((node.lineno, "J_PER_KWH"))
        elif isinstance(node, ast.Attribute) and node.attr == "J_PER_KWH":
            found.append((node.lineno, "J_PER_KWH"))
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if name in ("kwh", "to_kwh"):
                found.append((node.lineno, f"a call of {name}()"))
        elif isinstance(node, ast.alias) and node.name == "kwh":
            found.append((node.lineno, "an import of kwh"))
    return found


def test_no_module_but_the_summary_converts_joules_to_kwh():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == HOME or rel in MAKERS:
            continue
        bad += [f"{rel}:{line}: {what}" for line, what in _conversions(ast.parse(path.read_text()))]
    assert bad == []


def test_the_static_check_would_catch_a_reader_converting():
    reader = "def row(s):\n    return s['energy_j']['network'] / 3.6e6, kwh(s['energy_j']['server'])\n"
    assert sorted(what for _, what in _conversions(ast.parse(reader))) == ["a call of kwh()", "the literal 3.6e6"]
    assert _conversions(ast.parse("from simfl.costs import J_PER_KWH\nx = 1 / J_PER_KWH\n"))


def test_j_per_kwh_has_one_home():
    homes = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
             if any(isinstance(n, ast.Assign) and any(getattr(t, "id", None) == "J_PER_KWH" for t in n.targets)
                    for n in ast.walk(ast.parse(p.read_text())))]
    assert homes == [HOME]
    from simfl.costs import J_PER_KWH

    assert J_PER_KWH == 3_600_000.0  # 1 kWh = 1000 W x 3600 s
