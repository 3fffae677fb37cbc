"""Runs that go on for years of simulated time: exact round lengths, no hang at the clock's resolution."""

import signal
from contextlib import contextmanager

import pytest
import yaml

from simfl import load_scenario, simulate
from simfl.config.load import REPO_ROOT
from simfl.hardware.lookup import step_cost
from simfl.training import TrainingConfig


@contextmanager
def time_limit(seconds: int):
    """Fail, instead of spinning forever, if the block runs longer than `seconds` of wall time."""
    def stop(_sig, _frame):
        raise TimeoutError(f"still running after {seconds} s: the engine hangs")
    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_full_large_model_on_a_10mbit_cell_runs_all_2985_rounds(tmp_path):
    # The reproduction: flan-t5-large full, 100 A100s on paper-lte in one cell of 10 Mbit/s
    # each way, 10 a round, 2985 rounds (149.6 million s, past 2**24 s after round 335).
    sc = yaml.safe_load((REPO_ROOT / "scenarios/paper/large-a100-lte-full.yaml").read_text())
    sc["cells"] = {"cell": {"downlink_bps": 10e6, "uplink_bps": 10e6}}
    sc["fleet"][0]["cell"] = "cell"
    path = tmp_path / "cell.yaml"
    path.write_text(yaml.safe_dump(sc))
    with time_limit(120):
        result = simulate(load_scenario(path))
    # By hand: 783,150,080 params x 32 bits = 25,060,802,560 bits each way, 10 flows on 10 Mbit/s:
    # 1 Mbit/s each, 25,060.80256 s; latency 0.05 (LTE) + 0.0005 (server) s each way;
    # compute 2 steps of the profile's (predicted) step; aggregation 10 x 783,150,080 / 84.96e9 params/s.
    step_s = step_cost(load_scenario(path).hardware["a100-80gb"],
                       TrainingConfig("flan-t5-large", "full", batch_size=8)).step_time_s
    round_s = 2 * 25_060.80256 + 2 * 0.0505 + 2 * step_s + 10 * 783_150_080 / 84.96e9
    rounds = result.rounds
    assert len(rounds) == 2985
    assert ((rounds["end_s"] - rounds["start_s"]) - round_s).abs().max() < 1e-6
    assert rounds["end_s"].iloc[-1] == pytest.approx(2985 * round_s, rel=1e-12)
