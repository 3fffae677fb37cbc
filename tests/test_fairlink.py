"""FairLink (virtual-time max-min on one link) against progressive filling, on random instances and by hand."""

import os

import numpy as np
import pytest
import simpy

from simfl.sim.fairlink import FairLink
from simfl.sim.flows import FlowNetwork


def _simulate(kind: str, capacity: float, specs, t0: float = 0.0):
    """specs: (start_s, bits, cap_bps, abort_after_s or None, latency_s) -> [(end_s, bits moved)].

    The FairLink starts each flow after its latency itself (its start heap); the reference waits
    out the latency in the process, then starts the flow on progressive filling (FlowNetwork).
    An abort may land inside the latency: nothing moved then.
    """
    env = simpy.Environment(initial_time=t0)
    link = FairLink(env, capacity)
    net = FlowNetwork(env, {"s": capacity})
    out = [None] * len(specs)

    def proc(i, start_s, bits, cap, abort_after, latency_s):
        yield env.timeout(start_s)
        t_abort = env.now + abort_after if abort_after is not None else None
        if kind == "fairlink":
            f, abort = link.start(bits, cap, delay_s=latency_s), link.abort
        elif kind == "network-delay":  # progressive filling, its own start delay (the path through cells)
            f, abort = net.start(bits, cap, ["s"], delay_s=latency_s), net.abort
        else:
            if t_abort is not None and t_abort <= env.now + latency_s:
                yield env.timeout(t_abort - env.now)
                out[i] = (env.now - t0, 0.0)
                return
            yield env.timeout(latency_s)
            f, abort = net.start(bits, cap, ["s"]), net.abort
        if t_abort is None:
            moved = yield f.done
        else:
            result = yield f.done | env.timeout(t_abort - env.now)
            moved = result[f.done] if f.done in result else abort(f)
        out[i] = (env.now - t0, moved)

    for i, s in enumerate(specs):
        env.process(proc(i, *s))
    env.run()
    return out


def _random_instance(rng: np.random.Generator):
    n = int(rng.integers(1, 40))
    capacity = float(rng.uniform(1e6, 1e8))
    specs = []
    for _ in range(n):
        start_s = float(rng.choice([0.0, 0.0, rng.uniform(0, 5)]))  # many start together, as rounds do
        bits = float(rng.choice([1e6, rng.uniform(1e4, 5e7)]))
        cap = float(rng.choice([capacity / 4, rng.lognormal(np.log(capacity / 10), 1.0)]))  # ties and spreads
        abort_after = float(rng.uniform(0, 3)) if rng.random() < 0.2 else None
        latency_s = float(rng.choice([0.0, 0.05, rng.uniform(0, 0.5)]))
        specs.append((start_s, bits, cap, abort_after, latency_s))
    return capacity, specs


# `make mutation` re-runs this for every mutant of the flow code: 60 instances a block there
# (mutmut sets MUTANT_UNDER_TEST), 500 in the suite.
INSTANCES = 60 if "MUTANT_UNDER_TEST" in os.environ else 500


@pytest.mark.parametrize("kind, block", [("fairlink", b) for b in range(4)] + [("network-delay", 0)])
def test_equals_progressive_filling_on_random_instances(kind, block):
    rng = np.random.default_rng(1000 + block)
    for _ in range(INSTANCES):  # 2,000 instances over the four FairLink blocks
        capacity, specs = _random_instance(rng)
        new = _simulate(kind, capacity, specs)
        old = _simulate("flownetwork", capacity, specs)
        for (t_new, b_new), (t_old, b_old) in zip(new, old):
            assert t_new == pytest.approx(t_old, rel=1e-9, abs=1e-9)
            assert b_new == pytest.approx(b_old, rel=1e-9, abs=1e-3)


def test_by_hand_caps_and_level():
    # C = 12 Mbit/s; caps 2, 100, 100 (bits 4e6, 12e6, 6e6 from 1 s): as tests/test_fairshare.py, by hand:
    # f1 done 1.4 s, f2 1.8 s, f0 2.0 s.
    out = _simulate("fairlink", 12e6, [(0, 4e6, 2e6, None, 0.0), (0, 12e6, 100e6, None, 0.0),
                                       (1, 6e6, 100e6, None, 0.0)])
    assert [t for t, _ in out] == pytest.approx([2.0, 1.4, 1.8])


def test_past_two_to_the_24_seconds():
    # The same instance from t = 2**27 s: still exact, and no timer spins at the clock's resolution.
    out = _simulate("fairlink", 3e6, [(0, 1e6 / 3, 1e9, None, 0.0), (0, 7e6 / 3, 1e9, None, 0.0),
                                      (0, 1e7 / 3, 1e9, None, 0.0)], t0=2.0**27)
    # 1 Mbit/s each: f0 after 1/3 s; then 1.5 each: f1 (2e6 left) 4/3 s more; f2 (1e6 left) alone 1/3 s more
    assert [t for t, _ in out] == pytest.approx([1 / 3, 1 / 3 + 4 / 3, 1 / 3 + 4 / 3 + 1 / 3], abs=1e-7)


def test_abort_returns_bits_moved():
    # Both at 5 Mbit/s of 10 for 0.5 s: the aborted one moved 2.5e6; the other ends at 0.5 + 7.5e6/10e6.
    out = _simulate("fairlink", 10e6, [(0, 10e6, 100e6, 0.5, 0.0), (0, 10e6, 100e6, None, 0.0)])
    assert out[0] == (pytest.approx(0.5), pytest.approx(2.5e6))
    assert out[1][0] == pytest.approx(1.25)


def test_abort_during_the_start_delay_moves_nothing_and_never_starts():
    # The first flow is stopped at 0.1 s inside its 0.2 s latency: 0 bits, and the second has the link
    # to itself: 10e6 bits at 10 Mbit/s from 0.2 s, done at 1.2 s.
    out = _simulate("fairlink", 10e6, [(0, 10e6, 100e6, 0.1, 0.2), (0, 10e6, 100e6, None, 0.2)])
    assert out == [(pytest.approx(0.1), 0.0), (pytest.approx(1.2), pytest.approx(10e6))]


def test_abort_at_the_start_instant_and_after_the_end():
    env = simpy.Environment()
    link = FairLink(env, 10e6)
    now = link.start(1e6, 1e6)
    assert link.abort(now) == 0.0  # stopped in the instant it began: nothing moved
    done = link.start(1e6, 1e6)
    env.run()
    assert done.done.value == 1e6 and env.now == pytest.approx(1.0)
    assert link.abort(done) == 1e6  # already finished: all of it moved


def test_a_cohort_member_stopped_leaves_the_others_going():
    # C = 3 Mbit/s; three identical flows (3e6 bits, cap 10 Mbit/s) start together after 0.1 s: one cohort,
    # 1 Mbit/s each. Flow 0 stops at 1.1 s having moved 1e6 bits; the other two then share 3 Mbit/s,
    # 1.5 each, and finish their 2e6 bits at 1.1 + 2e6 / 1.5e6 s.
    env = simpy.Environment()
    link = FairLink(env, 3e6)
    flows = [link.start(3e6, 10e6, delay_s=0.1) for _ in range(3)]
    ends, moved = {}, {}

    def stop():
        yield env.timeout(1.1)
        moved[0] = link.abort(flows[0])

    def wait(i):
        moved[i] = yield flows[i].done
        ends[i] = env.now

    env.process(stop())
    for i in (1, 2):
        env.process(wait(i))
    env.run()
    assert moved[0] == pytest.approx(1e6)
    assert ends[1] == ends[2] == pytest.approx(1.1 + 2e6 / 1.5e6) and moved[1] == moved[2] == 3e6
    assert flows[1].cohort is None and link._n == 0 and not link._keys
