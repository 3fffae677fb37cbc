"""Selection policies: uniform and speed-aware (Oort-like), by hand on small fleets, in sync and async rounds."""

from __future__ import annotations

import numpy as np
import pytest

from simfl.config.load import load_scenario
from simfl.errors import ScenarioError
from simfl.sim import run
from simfl.sim.inputs import AsyncSpec, LinkSpec, SyncSpec
from simfl.sim.selection import SpeedSelection, UniformSelection
from simfl.sim.streams import Streams
from tests.helpers import client, inputs, server

FAST_LINK = LinkSpec("l", 1e9, 1e9, 0.0)


def test_weights_are_one_within_the_target_and_penalised_beyond():
    # target 10 s, alpha 2: 5 s and 10 s meet it (1), 20 s weighs (10/20)^2 = 0.25, 40 s (10/40)^2 = 0.0625
    w = SpeedSelection(target_s=10.0, alpha=2.0).weights(np.array([5.0, 10.0, 20.0, 40.0]))
    assert w.tolist() == [1.0, 1.0, 0.25, 0.0625]
    assert SpeedSelection(target_s=10.0, alpha=0.0).weights(np.array([5.0, 1e6])).tolist() == [1.0, 1.0]


def expected(times):
    times = np.asarray(times, dtype=float)
    return lambda ids: times[ids]


def test_one_pick_is_slow_with_the_hand_worked_probability():
    # 4 clients within the target (weight 1) and 4 taking 4x longer (weight 0.0625, alpha 2), no exploration:
    # P(slow) = 4 x 0.0625 / (4 + 4 x 0.0625) = 0.25 / 4.25 = 0.0588
    sel, rng = SpeedSelection(target_s=10.0, explore=0.0, alpha=2.0), np.random.default_rng(1)
    times = expected([5.0] * 4 + [40.0] * 4)
    slow = sum(int(sel.select(rng, 8, 1, times)[0]) >= 4 for _ in range(20000))
    assert slow / 20000 == pytest.approx(0.25 / 4.25, abs=0.006)


def test_the_explored_share_is_uniform_and_the_rest_prefers_the_fast():
    # count 4, explore 0.5: floor(2.0) = 2 picks uniform over all 8 (one slow on average), 2 exploited among the
    # other 6, where alpha 10 makes a slow client weigh 0.25^10 ~ 1e-6: about 1.0 slow client a selection
    sel, rng = SpeedSelection(target_s=10.0, explore=0.5, alpha=10.0), np.random.default_rng(2)
    times = expected([5.0] * 4 + [40.0] * 4)
    picks = [sel.select(rng, 8, 4, times) for _ in range(4000)]
    assert all(len(set(p.tolist())) == 4 for p in picks)
    assert np.mean([np.sum(p >= 4) for p in picks]) == pytest.approx(1.0, abs=0.05)
    # the explored come first: their slow share is 1/2, the exploited ones' is ~0
    assert np.mean([np.sum(p[:2] >= 4) for p in picks]) == pytest.approx(1.0, abs=0.05)
    assert max(np.sum(p[2:] >= 4) for p in picks) == 0


def test_explore_one_is_uniform_and_candidates_are_respected():
    sel, rng = SpeedSelection(target_s=1.0, explore=1.0, alpha=10.0), np.random.default_rng(3)
    counts = np.zeros(6)
    for _ in range(6000):
        counts[sel.select(rng, 6, 1, expected([1.0, 1.0, 1.0, 100.0, 100.0, 100.0]))] += 1
    # floor(1.0 x 1) = 1 explored pick: uniform whatever the times
    assert (abs(counts / 6000 - 1 / 6) < 0.02).all()
    # from an array of candidates only those are chosen, at most as many as there are
    got = SpeedSelection(target_s=1.0).select(rng, np.array([7, 3]), 5, expected(np.ones(10)))
    assert sorted(got.tolist()) == [3, 7]


def test_uniform_selection_draws_what_choice_without_replacement_draws():
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    assert UniformSelection().select(a, 100, 7).tolist() == b.choice(100, size=7, replace=False).tolist()
    assert UniformSelection().select(a, np.array([4, 9, 11]), 1).tolist() == [[4, 9, 11][b.choice(3, 1)[0]]]
    assert UniformSelection().select(a, np.array([], dtype=np.int64), 3).tolist() == []


def test_expected_round_s_is_download_compute_upload_alone_on_the_path():
    # 3 steps x 2 s, 1e6 bits each way (params 31250 x 32), down 1e6 bit/s, up 0.5e6 bit/s, one-way latency
    # 0.01 s + the server link's 0.02 s per transfer: 0.03 + 1 + 6 + 0.03 + 2 = 9.06 s
    link = LinkSpec("l", 1e6, 0.5e6, 0.01)
    srv = server(LinkSpec("server", 1e9, 1e9, 0.02))
    inp = inputs([client(0, link, steps=3, step_time_s=2.0), client(1, FAST_LINK, steps=1, step_time_s=1.0)],
                 srv=srv)
    got = inp.expected_round_s(np.array([0, 1]))
    assert got[0] == pytest.approx(9.06)
    assert got[1] == pytest.approx(2 * 0.02 + 1e6 / 1e9 + 1.0 + 1e6 / 1e9)


def fleet_two_fast_two_slow():
    # clients 0, 1: 1 step of 1 s; clients 2, 3: 1 step of 100 s; links fast (1e6 bits in 1 ms)
    return [client(0, FAST_LINK, steps=1, step_time_s=1.0), client(1, FAST_LINK, steps=1, step_time_s=1.0),
            client(2, FAST_LINK, steps=1, step_time_s=100.0), client(3, FAST_LINK, steps=1, step_time_s=100.0)]


def test_sync_rounds_with_a_deadline_pick_the_clients_that_meet_it():
    # K = 2 of 2 selected from 4, deadline 10 s: speed selection (alpha 10: a slow client weighs 0.1^10)
    # picks clients 0 and 1 every round, so no round is cut: each ends after the two 1e6-bit downloads sharing the
    # server's 1 Gbit/s (2 ms), 1 s of compute, the two uploads (2 ms) and 2 s of aggregation (2 x 31250 params at
    # 31250/s)
    fast = SpeedSelection(target_s=10.0, explore=0.0, alpha=10.0)
    rec = run(inputs(fleet_two_fast_two_slow(), k=2, selected=2, rounds=20, deadline_s=10.0, selection=fast), 0)
    assert {c.client for c in rec.clients} == {0, 1}
    assert all(r.clients_late == 0 for r in rec.rounds)
    assert rec.rounds[-1].end_s == pytest.approx(20 * (0.002 + 1.0 + 0.002 + 2.0), rel=1e-6)
    # uniform selection, same seed: rounds meet the slow clients and are cut at the deadline
    rec = run(inputs(fleet_two_fast_two_slow(), k=2, selected=2, rounds=20, deadline_s=10.0), 0)
    assert sum(r.clients_late for r in rec.rounds) > 0


def test_async_jobs_start_on_the_clients_expected_in_time():
    # concurrency 2, buffer 1, target 10 s: every job starts on client 0 or 1 (each idle again as its job ends)
    fast = SpeedSelection(target_s=10.0, explore=0.0, alpha=10.0)
    rec = run(inputs(fleet_two_fast_two_slow(), k=1, selected=2, rounds=10,
                     asynchronous=AsyncSpec(2, buffer_size=1), selection=fast), 0)
    assert {c.client for c in rec.clients} == {0, 1}
    rec = run(inputs(fleet_two_fast_two_slow(), k=1, selected=2, rounds=10,
                     asynchronous=AsyncSpec(2, buffer_size=1)), 0)
    assert {c.client for c in rec.clients} & {2, 3}


def test_changing_the_selection_policy_leaves_the_other_streams_alone():
    # common random numbers: a policy draws from the selection stream only, so after the same run under either
    # policy every other stream (dropout here: two uniforms per selected client) has drawn the same numbers
    clients = fleet_two_fast_two_slow()
    states, chosen = [], []
    for selection in (UniformSelection(), SpeedSelection(target_s=10.0, explore=0.0, alpha=10.0)):
        streams = Streams.from_seed(4)
        rec = run(inputs(clients, k=2, selected=2, rounds=5, dropout_prob=0.5, selection=selection), streams)
        chosen.append({c.client for c in rec.clients})
        states.append({name: getattr(streams, name).bit_generator.state["state"]
                       for name in ("dropout", "speed", "links", "partition")})
    assert chosen == [{0, 1, 2, 3}, {0, 1}]
    assert states[0] == states[1]
    assert SyncSpec().deadline_s is None


SCENARIO = """
name: sel
seed: 1
model: {name: flan-t5-small}
training: {batch_size: 1, local_steps: 1}
federation: {clients_per_round: 2, rounds: 3, selection: %s}
fleet:
  - {count: 4, device: jetson-agx-orin-64gb, network: lte}
server: {device: a100-80gb, network: ethernet-10gbit}
"""


def test_the_scenario_chooses_the_policy_and_a_speed_policy_needs_a_target(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO % "{kind: speed, target_s: 30}")
    sel = load_scenario(path).federation.selection
    assert (sel.kind, sel.explore, sel.alpha, sel.target_s) == ("speed", 0.1, 2.0, 30.0)
    path.write_text(SCENARIO % "{kind: speed}")
    with pytest.raises(ScenarioError, match="selection kind speed needs target_s"):
        load_scenario(path)
    path.write_text(SCENARIO % "{kind: fastest}")
    with pytest.raises(ScenarioError, match="fastest"):
        load_scenario(path)
    path.write_text(SCENARIO % "{kind: speed, target_s: 30, explore: 1.5}")
    with pytest.raises(ScenarioError, match="explore"):
        load_scenario(path)


def test_one_pick_at_a_time_still_explores_with_the_explore_share():
    # explore 0.3, one pick: explored with probability 0.3 (uniform over 8, half of them slow), else exploited
    # (alpha 10: never slow): P(slow) = 0.3 x 0.5 = 0.15
    sel, rng = SpeedSelection(target_s=10.0, explore=0.3, alpha=10.0), np.random.default_rng(7)
    times = expected([5.0] * 4 + [40.0] * 4)
    slow = sum(int(sel.select(rng, 8, 1, times)[0]) >= 4 for _ in range(20000))
    assert slow / 20000 == pytest.approx(0.15, abs=0.01)


def test_expected_round_s_takes_the_server_link_the_way_the_engine_does():
    # the server sends downloads on its uplink (1e5 bit/s here) and receives uploads on its downlink (1e9):
    # 1e6 bits down at 1e5 = 10 s, 1 step of 1 s, 1e6 bits up at 1e9 = 1 ms
    srv = server(LinkSpec("server", 1e9, 1e5, 0.0))
    inp = inputs([client(0, LinkSpec("l", 1e9, 1e9, 0.0), steps=1, step_time_s=1.0)], srv=srv)
    assert inp.expected_round_s(np.array([0]))[0] == pytest.approx(10.0 + 1.0 + 0.001)
    rec = run(inp, 0)
    (c,) = rec.clients
    assert c.end_s - c.download_start_s == pytest.approx(10.0 + 1.0 + 0.001)
