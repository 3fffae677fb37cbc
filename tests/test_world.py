"""A world that varies: availability, per-round speed and link draws, per-group dropout, against hand-worked numbers."""

import math
from dataclasses import replace

import numpy as np
import pytest

from simfl.sim import run
from simfl.sim.availability import DiurnalSpec, OnOffSpec, TraceSpec
from simfl.sim.carbon import CarbonCurve
from simfl.sim.inputs import LinkSpec
from simfl.sim.streams import Streams
from simfl.sim.variation import Component, LinkMix, Spread, draw_links
from tests.helpers import client, inputs

# 31,250 params x 32 bits = 1e6 bits per transfer. Alone: download 0.1 + 1.0 s, compute 3 x 0.5 s,
# upload 0.1 + 2.0 s: a client's work is 0 -> 1.1 -> 2.6 -> 4.7, then 1 s of aggregation per upload.
LINK = LinkSpec("l", downlink_bps=1e6, uplink_bps=0.5e6, latency_s=0.1,
                energy_per_bit_down_j=2e-6, energy_per_bit_up_j=1e-6)


def with_groups(inp, **changes):
    return replace(inp, groups=tuple(replace(g, **changes) for g in inp.groups))


def trace(rows):
    c, s, e = zip(*rows) if rows else ((), (), ())
    return TraceSpec(np.array(c, dtype=np.int64), np.array(s, dtype=float), np.array(e, dtype=float))


def test_trace_cuts_a_client_off_mid_upload():
    # client 0 online over [0, 3.7): its upload moves bits from 2.7 at 0.5 Mbit/s, stops at 3.7 -> 0.5e6 bits.
    inp = with_groups(inputs([client(0, LINK), client(1, LINK)]), availability=trace([(0, 0, 3.7), (1, 0, 100)]))
    rec = run(inp, 0)
    c0, c1 = sorted(rec.clients, key=lambda c: c.client)
    assert c0.status == "offline" and c0.end_s == pytest.approx(3.7) and c0.upload_end_s == pytest.approx(3.7)
    assert c0.bits_up == pytest.approx(0.5e6) and c0.bits_down == 1e6
    assert c0.energy_network_j == pytest.approx(1e6 * 2e-6 + 0.5e6 * 1e-6)
    assert c0.energy_idle_j == pytest.approx(2.0 * (3.7 - 1.5))  # counted like a dropout's work
    assert c1.status == "completed"
    (r,) = rec.rounds
    # the round closes when both have stopped (4.7), with one upload: 1 s of aggregation
    assert (r.clients_completed, r.clients_offline, r.end_s) == (1, 1, pytest.approx(5.7))


def test_server_waits_for_the_next_client_and_stops_when_none_will_come():
    # client 0 online over [10, 20), client 1 never. K = 1.
    inp = with_groups(inputs([client(0, LINK), client(1, LINK)], k=1, selected=1, rounds=5),
                      availability=trace([(0, 10, 20)]))
    rec = run(inp, 0)
    r0, r1 = rec.rounds  # round 2 cannot start: nobody is online at 20 or ever after
    assert (r0.wait_s, r0.start_s, r0.end_s) == (10.0, 10.0, pytest.approx(15.7))
    # server: 1 s aggregating at 100 W, the 10 s wait and the rest of the round idle at 20 W
    assert r0.energy_server_j == pytest.approx(100 * 1.0 + 20 * (10 + 5.7 - 1.0))
    # round 1 starts at 15.7; the upload starts at 18.3 + 0.1 latency and is cut at 20: 1.6 s x 0.5 Mbit/s
    c = rec.clients[1]
    assert (c.status, c.bits_up, r1.end_s, r1.clients_completed) == ("offline", pytest.approx(0.8e6), 20.0, 0)
    assert len(rec.notes) == 1 and "stopped after 2 of 5 rounds" in rec.notes[0]


def test_only_online_clients_are_selected_and_the_round_closes_at_min_k_selected():
    clients = [client(i, LINK) for i in range(6)]
    inp = with_groups(inputs(clients, k=4, selected=5, rounds=20), availability=trace([(1, 0, 1e9), (4, 0, 1e9)]))
    rec = run(inp, 3)
    assert {c.client for c in rec.clients} == {1, 4}
    for r in rec.rounds:  # 2 online: both selected, the round closes at 2 uploads, not 4
        assert (r.clients_selected, r.clients_completed) == (2, 2)
        assert r.end_s - r.start_s == pytest.approx(4.7 + 2.0)


def test_per_group_dropout():
    a = [client(i, LINK) for i in range(5)]
    b = [client(i, LINK, step_time_s=0.25) for i in range(5, 10)]  # another group: another step time
    inp = inputs(a + b, rounds=3)
    inp = replace(inp, groups=(replace(inp.groups[0], dropout_prob=1.0), replace(inp.groups[1], dropout_prob=0.0)))
    rec = run(inp, 0)
    status = {(c.client < 5, c.status) for c in rec.clients}
    assert status == {(True, "dropped"), (False, "completed")}


def test_per_round_speed_changes_each_round_and_leaves_selection_alone():
    clients = [client(i, LINK) for i in range(50)]
    base = inputs(clients, k=10, selected=10, rounds=5)
    varied = with_groups(base, speed_round=Spread(0.4))
    r0, r1 = run(base, 7), run(varied, 7)
    assert [c.client for c in r0.clients] == [c.client for c in r1.clients]  # common random numbers
    mult = np.array([c.compute_s / 1.5 for c in r1.clients])
    assert len(np.unique(np.round(mult, 12))) == 50  # a new draw every client-round
    assert all(c.compute_s == 1.5 for c in r0.clients)


def test_per_round_link_multiplier_scales_both_rates():
    inp = with_groups(inputs([client(0, LINK)], rounds=3), link_round=Spread(0.5))
    rec = run(inp, 1)
    for c in rec.clients:
        down_s = c.download_end_s - c.download_start_s - 0.1
        up_s = c.upload_end_s - c.upload_start_s - 0.1
        m = 1.0 / down_s  # 1e6 bits at 1e6 x m bit/s
        assert up_s == pytest.approx(2.0 / m)  # the same multiplier on the uplink
    assert len({round(c.download_end_s, 9) for c in rec.clients}) == 3


def test_empirical_links_replace_rates_and_latency():
    mix = LinkMix((Component(1.0, (math.log(2e6), math.log(1e6), math.log(0.02)), ((1e-12, 0, 0), (0, 1e-12, 0),
                                                                                (0, 0, 1e-12))),))
    rec = run(with_groups(inputs([client(0, LINK)]), link_round=mix), 0)
    (c,) = rec.clients  # (essentially) fixed at 2 Mbit/s down, 1 up, 20 ms one way
    assert c.download_end_s == pytest.approx(0.02 + 0.5, rel=1e-5)
    assert c.upload_end_s - c.upload_start_s == pytest.approx(0.02 + 1.0, rel=1e-5)


def test_carbon_boundary_inside_a_compute_interval_by_hand():
    # 100 g/kWh until t = 2 s, 400 after. One client: download [0.1, 1.1] (after 0.1 s latency), compute
    # [1.1, 2.6], upload [2.7, 4.7], aggregation [4.7, 5.7]; 10 W compute, 2 W idle, server 20 W idle, 100 W agg.
    curve = CarbonCurve(np.array([1000.0, 1002.0]), np.array([100.0, 400.0]), t0_utc_s=1000.0)
    rec = run(inputs([client(0, LINK)], carbon=curve), 0)
    grams = (10 * (0.9 * 100 + 0.6 * 400)  # compute: 0.9 s before the boundary, 0.6 s after
             + 2 * 1.1 * 100 + 2 * 2.1 * 400  # idle before and after computing
             + 2.0 * 100 + 1.0 * 400  # network: 2 J over [0.1, 1.1], 1 J over [2.7, 4.7]
             + 20 * (2.0 * 100 + 2.7 * 400)  # server idle over [0, 4.7]
             + 100 * 1.0 * 400) / 3.6e6  # aggregation
    assert rec.rounds[0].co2_g == pytest.approx(grams, rel=1e-12)


# -- samplers ------------------------------------------------------------------------------------------

def test_spread_median_and_log_sd_match_within_sampling_error():
    n, sigma = 20_000, 0.35
    m = Spread(sigma).apply(np.random.default_rng(5).standard_normal(n))
    logs = np.log(m)
    # standard errors: median of logs 1.2533 sigma / sqrt(n); sd sigma / sqrt(2 (n - 1))
    assert abs(np.median(logs)) < 4 * 1.2533 * sigma / math.sqrt(n)
    assert abs(logs.std(ddof=1) - sigma) < 4 * sigma / math.sqrt(2 * (n - 1))


def test_link_mix_reproduces_weights_means_and_correlation():
    cov = ((0.25, 0.15, -0.05), (0.15, 0.36, 0.0), (-0.05, 0.0, 0.09))
    mix = LinkMix((Component(3.0, (17.0, 15.0, -3.0), cov), Component(1.0, (13.0, 12.0, -1.0), cov)))
    n = 40_000
    u, z = draw_links(np.random.default_rng(2), n)
    down, up, lat = mix.apply(u, z)
    first = np.log(down) > 15.0  # the components are 4 sd apart in log downlink
    assert abs(first.mean() - 0.75) < 4 * math.sqrt(0.75 * 0.25 / n)
    logs = np.log(np.column_stack([down, up, lat]))[first]
    k = len(logs)
    assert np.allclose(logs.mean(axis=0), (17.0, 15.0, -3.0), atol=4 * math.sqrt(0.36 / k))
    assert np.allclose(np.cov(logs.T), cov, atol=0.02)


def test_draw_counts_do_not_depend_on_parameters():
    a, b = np.random.default_rng(0), np.random.default_rng(0)
    draw_links(a, 10)
    draw_links(b, 10)
    assert a.random() == b.random()


# -- availability models ---------------------------------------------------------------------------------

def test_trace_merges_overlaps_and_answers_until_and_next_start():
    m = trace([(0, 0, 5), (0, 4, 8), (1, 10, 12), (0, 8, 9)]).model(3, None)
    assert m.available(0.0).tolist() == [True, False, False]
    assert m.until(np.array([0]), 1.0).tolist() == [9.0]  # [0,5) + [4,8) + [8,9) touch: one interval
    assert m.available(9.0).tolist() == [False, False, False]  # half-open: offline at its end
    assert m.next_start(9.0) == 10.0 and m.next_start(10.0) == math.inf


def test_on_off_is_stationary_and_does_not_depend_on_when_it_is_asked():
    spec = OnOffSpec(mean_on_s=300.0, mean_off_s=900.0)
    n = 20_000
    m1, m2 = spec.model(n, np.random.default_rng(4)), spec.model(n, np.random.default_rng(4))
    for t in (0.0, 50.0, 400.0, 2000.0):
        m1.available(t)
    on = m1.available(5000.0)
    assert np.array_equal(on, m2.available(5000.0))  # asked twice as often, the same trace
    assert abs(on.mean() - 0.25) < 4 * math.sqrt(0.25 * 0.75 / n)
    # the time left online is exponential with mean 300 s (memoryless)
    left = m1.until(np.flatnonzero(on), 5000.0) - 5000.0
    assert abs(left.mean() - 300.0) < 4 * 300.0 / math.sqrt(on.sum())


def test_diurnal_window_in_local_time():
    # t = 0 is 2026-06-01 00:00 at +02:00 (22:00 UTC the day before); window 22:00 -> 06:00 local.
    t0 = 1780264800.0  # 2026-05-31T22:00:00Z
    m = DiurnalSpec(start_hour=22, end_hour=6, utc_offset_h=2.0, t0_utc_s=t0).model(2, np.random.default_rng(0))
    assert m.available(0.0).tolist() == [True, True]
    assert m.until(np.array([0, 1]), 0.0).tolist() == [21600.0, 21600.0]  # offline at 06:00
    assert not m.available(21600.0).any()
    assert m.next_start(21600.0) == 79200.0  # 22:00 local
    assert m.available(79200.0).all()


def test_diurnal_jitter_shifts_each_member_within_its_bound():
    t0 = 1780264800.0
    m = DiurnalSpec(22, 6, 2.0, t0, jitter_h=1.0).model(5000, np.random.default_rng(1))
    on = m.available(0.0)
    assert 0.95 < on.mean() <= 1.0  # a window shifted by up to 1 h still holds local midnight
    ends = m.until(np.flatnonzero(on), 0.0)  # 06:00 local, each shifted by its own draw
    assert ends.min() >= 21600 - 3600 and ends.max() <= 21600 + 3600
    assert abs(ends.std() - 3600 / math.sqrt(3)) < 100  # uniform on +-1 h: sd 2078 s


def test_streams_order_is_unchanged():
    # adding samplers must not move the streams the existing concerns draw from
    s = Streams.from_seed(0)
    ref = np.random.default_rng(np.random.SeedSequence(0).spawn(6)[1])
    assert s.selection.random() == ref.random()


def test_carbon_of_every_round_equals_a_fine_riemann_sum():
    """Joules placed in time (accounting.round_spans) against a brute-force integral over the client rows:
    rounds after the first, a wait for availability, dropouts, shared links, an intensity stepping every 0.7 s."""
    rng = np.random.default_rng(3)
    # per-bit energies large enough that network joules weigh as much as compute and idle ones
    link = LinkSpec("l", 1e6, 0.5e6, 0.1, energy_per_bit_down_j=2e-5, energy_per_bit_up_j=1e-5)
    clients = [client(i, link, step_time_s=0.3 + 0.1 * i) for i in range(4)]
    srv_link = LinkSpec("srv", 1e9, 1.5e6, 0.05)  # uploads share 1.5 Mbit/s: fair sharing at work
    from tests.helpers import server
    steps = 200
    times = 1000.0 + 0.7 * np.arange(steps)
    values = rng.uniform(50, 500, steps)
    curve = CarbonCurve(times, values, t0_utc_s=1000.0)
    inp = inputs(clients, srv=server(srv_link, idle_w=3.0), k=2, selected=3, rounds=5, dropout_prob=0.4,
                 carbon=curve)
    inp = with_groups(inp, availability=trace([(0, 2.0, 1e9)]))  # one member a group (own step times): none before t = 2
    rec = run(inp, 1)
    dt = 1e-4
    grid = np.arange(0.0, rec.rounds[-1].end_s + 1.0, dt) + dt / 2  # midpoints
    g = values[np.clip(np.searchsorted(times - 1000.0, grid, side="right") - 1, 0, steps - 1)]

    def grams(joules, a, b):
        if joules == 0:
            return 0.0
        if b <= a:  # an instant: the value there
            return joules * values[np.searchsorted(times - 1000.0, a, side="right") - 1] / 3.6e6
        sel = (grid >= a) & (grid < b)
        return joules / (b - a) * g[sel].sum() * dt / 3.6e6

    assert rec.rounds[0].wait_s == pytest.approx(2.0)
    lat = 0.1 + 0.05
    for r in rec.rounds:
        expected = 0.0
        for c in (c for c in rec.clients if c.round == r.round):
            start = r.start_s
            if c.compute_s > 0:
                expected += grams(10.0 * c.compute_s, c.compute_start_s, c.compute_end_s)
                expected += grams(2.0 * (c.compute_start_s - start), start, c.compute_start_s)
                expected += grams(2.0 * (c.end_s - c.compute_end_s), c.compute_end_s, c.end_s)
            else:
                expected += grams(2.0 * (c.end_s - start), start, c.end_s)
            expected += grams(c.bits_down * 2e-5, min(c.download_start_s + lat, c.download_end_s), c.download_end_s)
            if c.bits_up > 0:
                expected += grams(c.bits_up * 1e-5, min(c.upload_start_s + lat, c.upload_end_s), c.upload_end_s)
        agg_start = r.end_s - r.aggregation_s
        expected += grams(3.0 * (agg_start - (r.start_s - r.wait_s)), r.start_s - r.wait_s, agg_start)
        expected += grams(100.0 * r.aggregation_s, agg_start, r.end_s)
        assert r.co2_g == pytest.approx(expected, rel=2e-4), r.round
    assert {c.status for c in rec.clients} >= {"completed", "dropped", "surplus"}
    assert any(c.compute_s == 0 for c in rec.clients)  # some stopped before computing: the idle-only branch


def test_trace_equals_brute_force_on_random_intervals():
    rng = np.random.default_rng(11)
    for _ in range(50):
        n = 4
        rows = [(int(rng.integers(n)), float(s), float(s + rng.uniform(0.1, 3.0)))
                for s in rng.uniform(0, 10, int(rng.integers(0, 9)))]
        m = trace(rows).model(n, None)
        for t in np.sort(rng.uniform(-1, 14, 12)):
            online = [any(c == i and s <= t < e for c, s, e in rows) for i in range(n)]
            assert m.available(t).tolist() == online
            for i in (i for i in range(n) if online[i]):
                end = t  # walk the union of this member's intervals forward from t
                while True:
                    later = [e for c, s, e in rows if c == i and s <= end < e]
                    if not later:
                        break
                    end = max(later)
                assert m.until(np.array([i]), t)[0] == end
            # a member comes online at a start that no other of its intervals already covers (or touches)
            starts = [s for c, s, _ in rows if s > t and not any(c2 == c and s2 < s <= e2 for c2, s2, e2 in rows)]
            assert m.next_start(t) == (min(starts) if starts else math.inf)


def test_on_off_starts_stationary():
    n = 40_000
    m = OnOffSpec(mean_on_s=100.0, mean_off_s=300.0).model(n, np.random.default_rng(9))
    on = m.available(0.0)
    assert abs(on.mean() - 0.25) < 4 * math.sqrt(0.25 * 0.75 / n)
    # residual periods at t = 0: exponential with the mean of the state each member is in
    assert abs(m.until(np.flatnonzero(on), 0.0).mean() - 100.0) < 4 * 100.0 / math.sqrt(on.sum())
    off_left = m.change_at[~on]
    assert abs(off_left.mean() - 300.0) < 4 * 300.0 / math.sqrt((~on).sum())
    assert m.next_start(0.0) == pytest.approx(off_left.min())


def test_carbon_curve_means_and_shifts_by_hand():
    # 100, 200, 300, 400 g/kWh from hours 0, 1, 2, 3 (the last holds on); the run starts at hour 0
    c = CarbonCurve(np.array([0.0, 3600.0, 7200.0, 10800.0]), np.array([100.0, 200.0, 300.0, 400.0]), 0.0)
    a, b = np.array([0.0, 1800.0, 4000.0, 9000.0, 20000.0]), np.array([3600.0, 5400.0, 4000.0, 12600.0, 21000.0])
    assert c.mean_g_per_kwh(a, b).tolist() == pytest.approx([100.0, 150.0, 200.0, 350.0, 400.0])
    # the same intervals one hour later
    assert c.mean_g_per_kwh(a, b, 3600.0).tolist() == pytest.approx([200.0, 250.0, 300.0, 400.0, 400.0])
    # 3.6e6 J (1 kWh) over the first half hour and 7.2e6 J at an instant in hour 2
    assert c.grams(np.array([3.6e6, 7.2e6]), np.array([0.0, 8000.0]), np.array([1800.0, 8000.0])) == \
        pytest.approx(100.0 + 2 * 300.0)
    assert c.grams(np.array([]), np.array([]), np.array([])) == 0.0
    # a run that starts at hour 1 of the same series
    late = CarbonCurve(np.array([0.0, 3600.0, 7200.0]), np.array([100.0, 200.0, 300.0]), 3600.0)
    assert late.mean_g_per_kwh(np.array([0.0]), np.array([7200.0])).tolist() == pytest.approx([250.0])
    flat = CarbonCurve.flat(380.0)
    assert flat.constant and flat.flat_g_per_kwh == 380.0
    assert flat.mean_g_per_kwh(np.array([0.0, 5.0]), np.array([1.0, 5.0]), 99.0).tolist() == [380.0, 380.0]
