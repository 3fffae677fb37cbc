"""Max-min fair rates and fluid flows, worked by hand."""

import pytest
import simpy

from simfl.sim.fairshare import max_min_rates
from simfl.sim.flows import FlowNetwork


def test_equal_split_when_caps_do_not_bind():
    assert max_min_rates([10, 10, 10], [["s"]] * 3, {"s": 6}) == pytest.approx([2, 2, 2])


def test_capped_flow_leaves_its_share_to_others():
    # level 12/3 = 4 > cap 2: that flow gets 2, the others split 10.
    assert max_min_rates([2, 100, 100], [["s"]] * 3, {"s": 12}) == pytest.approx([2, 5, 5])


def test_two_resources_classic_example():
    # f0 crosses a (cap 1) and b (cap 2); f1 crosses b only; f2 crosses a only.
    # a: f0, f2 share 1 -> 0.5 each; then b has 1.5 left for f1.
    rates = max_min_rates([9, 9, 9], [["a", "b"], ["b"], ["a"]], {"a": 1.0, "b": 2.0})
    assert rates == pytest.approx([0.5, 1.5, 0.5])


def test_flow_without_shared_resource_gets_its_cap():
    assert max_min_rates([3.0], [[]], {}) == [3.0]


def _run_flows(capacity, specs):
    """specs: (start_s, bits, cap_bps); returns finish times."""
    env = simpy.Environment()
    net = FlowNetwork(env, {"s": capacity})
    done = {}

    def proc(i, start, bits, cap):
        yield env.timeout(start)
        f = net.start(bits, cap, ["s"])
        yield f.done
        done[i] = env.now

    for i, spec in enumerate(specs):
        env.process(proc(i, *spec))
    env.run()
    return [done[i] for i in range(len(specs))]


def test_two_flows_second_joins_later():
    # 0-0.5 s: f0 alone at 10 -> 5e6 left. Then 5 each: f0 done at 1.5; f1 has 5e6 left, alone: 2.0.
    assert _run_flows(10e6, [(0, 10e6, 100e6), (0.5, 10e6, 100e6)]) == pytest.approx([1.5, 2.0])


def test_three_flows_exact_finish_times():
    # cap 12. 0-1 s: f0 2 (its cap), f1 10. At 1 s f0 and f1 have 2e6 left; f2 joins:
    # f0 2, f1 5, f2 5 -> f1 done 1.4. Then f0 2, f2 10: f2 (4e6 left) done 1.8; f0 (1.2e6 left) done 2.0.
    finish = _run_flows(12e6, [(0, 4e6, 2e6), (0, 12e6, 100e6), (1, 6e6, 100e6)])
    assert finish == pytest.approx([2.0, 1.4, 1.8])


def test_uncontended_flows_run_at_their_caps():
    assert _run_flows(100e6, [(0, 10e6, 10e6), (0.3, 10e6, 20e6)]) == pytest.approx([1.0, 0.8])


def test_abort_returns_bits_moved_and_frees_capacity():
    env = simpy.Environment()
    net = FlowNetwork(env, {"s": 10e6})
    out = {}

    def a():
        f = net.start(10e6, 100e6, ["s"])
        yield env.timeout(0.5)
        out["moved"] = net.abort(f)

    def b():
        f = net.start(10e6, 100e6, ["s"])
        yield f.done
        out["b"] = env.now

    env.process(a())
    env.process(b())
    env.run()
    # both at 5 for 0.5 s: a moved 2.5e6; b then alone with 7.5e6 left at 10 -> 0.75 s more.
    assert out["moved"] == pytest.approx(2.5e6)
    assert out["b"] == pytest.approx(1.25)


def test_residue_above_done_tolerance_is_still_simulated():
    # Capacity 1 Mbit/s, both flows capped at 1 Mbit/s: 0.5 each. f0 (1e6 bits) ends at 2.0 s.
    # f1 has 1e6 + 250 bits: at 2.0 s it has 250 bits left (0.5 ms at 0.5 Mbit/s), then runs
    # alone at its cap: ends at 2.0 + 250 / 1e6 = 2.00025 s, not at 2.0.
    assert _run_flows(1e6, [(0, 1e6, 1e6), (0, 1e6 + 250, 1e6)]) == pytest.approx([2.0, 2.00025], abs=1e-9)


def test_flow_below_clock_resolution_is_done():
    from simfl.sim.clock import due as _due

    # At t = 2**27 s a double cannot hold t + 5.8e-9: a timer for it would fire at t, forever.
    assert 2.0**27 + 5.8e-9 == 2.0**27
    assert _due(2.0**27, 5.8e-9)
    assert not _due(1.0, 5.8e-9)  # at small t the same residue is real time, simulated
    assert _due(1.0, 1e-9) and not _due(1.0, 2e-9)


def test_shared_flows_finish_at_large_simulated_time():
    # Three flows share 3 Mbit/s from t = 2**27 s (about 4.3 years): 1 Mbit/s each; 1/3 bit residues
    # of float arithmetic must not leave a timer re-armed at `now`. Bounded steps: a hang fails, not spins.
    t0 = 2.0**27
    env = simpy.Environment(initial_time=t0)
    net = FlowNetwork(env, {"s": 3e6})
    flows = [net.start(bits, 1e9, ["s"]) for bits in (1e6 / 3, 7e6 / 3, 1e7 / 3)]
    for _ in range(1000):
        if not env._queue:
            break
        env.step()
    assert all(f.done.processed for f in flows)
    # f0: 1/3 s at 1 Mbit/s. f1, f2 then 1.5 Mbit/s: f1 has 2e6 left -> 4/3 s more; f2 alone at 1 Gbit/s cap
    # but capacity 3 Mbit/s: 1e6 left at 3e6 -> 1/3 s more.
    assert [f.done.value for f in flows] == pytest.approx([1e6 / 3, 7e6 / 3, 1e7 / 3])
    assert env.now == pytest.approx(t0 + 1 / 3 + 4 / 3 + 1 / 3, abs=1e-7)


def test_zero_and_one_bit_flows():
    env = simpy.Environment()
    net = FlowNetwork(env, {"s": 10.0})
    empty = net.start(0, 1.0, ["s"])
    one = net.start(1, 0.5, ["s"])  # one bit at 0.5 bit/s: 2 s
    env.run()
    assert empty.done.value == 0.0 and one.done.value == 1.0 and env.now == 2.0


def test_timer_of_a_flow_from_before_contention_does_not_end_it():
    # A alone at its cap 1 Mbit/s would end at 1.0 s. B joins at 0.5 (both 0.5 Mbit/s), B is aborted at
    # 0.6: A has 1e6 - 0.5e6 - 0.05e6 = 0.45e6 bits left at 1 Mbit/s and would end at 1.05 s. C does the
    # same from 0.7 to 0.8: A moves 0.1e6 + 0.05e6 more and ends at 0.8 + 0.3 = 1.1 s. Neither the 1.0 s
    # nor the 1.05 s timer, both superseded, may end it.
    env = simpy.Environment()
    net = FlowNetwork(env, {"s": 1e6})
    out = {}

    def a():
        f = net.start(1e6, 1e6, ["s"])
        yield f.done
        out["a"] = env.now

    def other(name, start_s):
        yield env.timeout(start_s)
        f = net.start(1e6, 1e6, ["s"])
        yield env.timeout(0.1)
        out[name] = net.abort(f)

    env.process(a())
    env.process(other("b", 0.5))
    env.process(other("c", 0.7))
    env.run()
    assert out["b"] == pytest.approx(0.05e6) and out["c"] == pytest.approx(0.05e6)
    assert out["a"] == pytest.approx(1.1, abs=1e-9)
    # and once contention is over the network is back on its O(1) path: nothing oversubscribed
    assert not net._over and not net._shared_mode and all(d == pytest.approx(0) for d in net._demand.values())


def test_shared_timer_firing_before_any_flow_is_due_re_arms():
    # Float rounding can fire the shared timer a hair early (seen past 2**24 s); nothing is due then, and
    # the network must re-arm and finish every flow at its exact time. Fire it by hand at 0.5 s.
    env = simpy.Environment()
    net = FlowNetwork(env, {"s": 1e6})
    flows = [net.start(1e6, 1e6, ["s"]), net.start(2e6, 1e6, ["s"])]
    env.run(until=0.5)
    assert net._shared_mode
    net._on_shared_timer(net._shared_token)
    ends = {}
    for i, f in enumerate(flows):
        f.done.callbacks.append(lambda _ev, i=i: ends.setdefault(i, env.now))
    env.run()
    # 0.5 Mbit/s each: f0 ends at 2.0; f1 has 1e6 left, alone at 1 Mbit/s: 3.0
    assert ends == {0: pytest.approx(2.0), 1: pytest.approx(3.0)}
