"""The engine against hand-worked times and joules."""

import math

import pytest

from simfl.sim import run
from simfl.sim.inputs import LinkSpec
from simfl.sim.streams import Streams
from tests.helpers import client, inputs, server

# 31,250 params x 32 bits = 1e6 bits per transfer throughout.
UPDATE = {"trainable_params": 31250, "bits_per_transfer": 31250 * 32}  # one group's update, as helpers.inputs
LINK = LinkSpec("l", downlink_bps=1e6, uplink_bps=0.5e6, latency_s=0.1,
                energy_per_bit_down_j=2e-6, energy_per_bit_up_j=1e-6)


def test_one_client_exact_times_and_joules():
    rec = run(inputs([client(0, LINK)]), 0)
    (c,), (r,) = rec.clients, rec.rounds
    # download: 0.1 s latency + 1e6 / 1e6 = 1.1; compute 3 x 0.5 = 1.5; upload 0.1 + 1e6 / 0.5e6 = 2.1
    assert (c.download_start_s, c.download_end_s) == (0.0, pytest.approx(1.1))
    assert (c.compute_start_s, c.compute_end_s) == (pytest.approx(1.1), pytest.approx(2.6))
    assert (c.upload_start_s, c.upload_end_s) == (pytest.approx(2.6), pytest.approx(4.7))
    assert c.status == "completed"
    assert c.energy_compute_j == pytest.approx(15.0)  # 10 W x 1.5 s
    assert c.energy_idle_j == pytest.approx(6.4)  # 2 W x (4.7 - 1.5) s
    assert c.energy_network_j == pytest.approx(3.0)  # 1e6 x 2e-6 + 1e6 x 1e-6
    # aggregation: 1 upload x 31,250 params / 31,250 params/s = 1 s
    assert r.aggregation_s == pytest.approx(1.0)
    assert r.end_s == pytest.approx(5.7)
    assert r.energy_server_j == pytest.approx(100.0 * 1.0 + 20.0 * 4.7)
    assert r.t_comp_s == pytest.approx(1.5) and r.t_comm_s == pytest.approx(4.2)
    assert r.granularity == pytest.approx(1.5 / 4.2)
    assert (r.bits_down, r.bits_up) == (1e6, 1e6)


def test_server_latency_adds_to_client_latency():
    srv = server(LinkSpec("s", 1e9, 1e9, latency_s=0.4))
    (c,) = run(inputs([client(0, LINK)], srv=srv), 0).clients
    assert c.download_end_s == pytest.approx(0.5 + 1.0)
    assert c.upload_end_s == pytest.approx(1.5 + 1.5 + 0.5 + 2.0)


def test_rounds_follow_each_other():
    seen = []
    rec = run(inputs([client(0, LINK)], rounds=3), 0, on_round=seen.append)
    assert [r.start_s for r in rec.rounds] == pytest.approx([0.0, 5.7, 11.4])
    assert rec.rounds[-1].end_s == pytest.approx(17.1)
    assert seen == [0, 1, 2] and [r.round for r in rec.rounds] == [0, 1, 2] == [c.round for c in rec.clients]
    # idle energy is counted from each round's own start: 2 W x (4.7 - 1.5) s every round
    assert [c.energy_idle_j for c in rec.clients] == pytest.approx([6.4] * 3)


def test_two_clients_share_server_link_max_min():
    # Server sends at 1.5 Mbit/s in all; client caps 1 Mbit/s (fast) and 0.5 Mbit/s (slow).
    # Level 0.75 > slow cap 0.5 -> slow fixed at 0.5; fast gets 1.5 - 0.5 = 1.0 (its own cap).
    fast = LinkSpec("f", 1e6, 1e9, 0.0)
    slow = LinkSpec("s", 0.5e6, 1e9, 0.0)
    srv = server(LinkSpec("srv", downlink_bps=1e9, uplink_bps=1.5e6, latency_s=0.0))
    rec = run(inputs([client(0, fast), client(1, slow)], srv=srv), 0)
    ends = {c.client: c.download_end_s for c in rec.clients}
    assert ends == {0: pytest.approx(1.0), 1: pytest.approx(2.0)}


def test_cell_shared_by_two_uploads():
    # Both upload 1e6 bits at once through a cell of 0.8 Mbit/s up: 0.4 each, 2.5 s.
    link = LinkSpec("l", 1e9, 1e9, 0.0)
    cells = {"c": (1e9, 0.8e6)}
    rec = run(inputs([client(0, link, cell="c"), client(1, link, cell="c")], cells=cells),
              0)
    for c in rec.clients:
        assert c.upload_end_s - c.upload_start_s == pytest.approx(2.5)


def test_three_uploads_staggered_by_compute_share_the_server_exactly():
    # Server receives at 12 Mbit/s. Upload bits 4e6 (params 125,000).
    # A: cap 2 Mbit/s, uploads from t=1; B: cap 100, from t=1; C: cap 100, from t=2.
    # 1-2 s: A 2, B 10 -> B done at 1.4 s (4e6 / 10e6 = 0.4 s).  1.4-2 s: A alone at 2.
    # At 2 s A has 4e6 - 2e6 = 2e6 left, C starts: A 2, C 10 -> C done at 2.4; A done at 3.0.
    link_a = LinkSpec("a", 1e12, 2e6, 0.0)
    link_b = LinkSpec("b", 1e12, 100e6, 0.0)
    srv = server(LinkSpec("srv", downlink_bps=12e6, uplink_bps=1e12, latency_s=0.0), params_per_s=1e12)
    clients = [client(0, link_a, steps=1, step_time_s=1.0), client(1, link_b, steps=1, step_time_s=1.0),
               client(2, link_b, steps=1, step_time_s=2.0)]
    rec = run(inputs(clients, srv=srv, params=125_000), 0)
    up = {c.client: c.upload_end_s - c.download_end_s for c in rec.clients}  # downloads take ~4e-6 s
    assert up[1] == pytest.approx(1.4, abs=1e-5)
    assert up[2] == pytest.approx(2.4, abs=1e-5)
    assert up[0] == pytest.approx(3.0, abs=1e-5)


def test_deadline_makes_slow_client_late_and_stops_its_work():
    link = LinkSpec("l", 1e9, 1e9, 0.0)
    clients = [client(0, link, steps=1, step_time_s=1.0), client(1, link, steps=1, step_time_s=2.0),
               client(2, link, steps=1, step_time_s=10.0, power_w=10.0, idle_w=2.0)]
    rec = run(inputs(clients, deadline_s=5.0), 0)
    status = {c.client: c for c in rec.clients}
    assert [status[i].status for i in range(3)] == ["completed", "completed", "late"]
    late = status[2]
    assert late.end_s == pytest.approx(5.0)
    # three 1e6-bit downloads share the server's 1 Gbit/s: each ends at 3e6 / 1e9 = 3 ms
    assert late.compute_s == pytest.approx(5.0 - 0.003, abs=1e-9)
    assert late.energy_compute_j == pytest.approx(10.0 * late.compute_s)
    assert late.bits_up == 0.0
    (r,) = rec.rounds
    assert (r.clients_completed, r.clients_late, r.clients_surplus) == (2, 1, 0)
    assert r.aggregation_s == pytest.approx(2 * 31250 / 31250)
    assert r.end_s == pytest.approx(5.0 + 2.0)
    # T_comp is the aggregated clients' fine-tuning time (2 s), not the late client's 4.997 s.
    assert r.t_comp_s == 2.0 and r.t_comm_s == pytest.approx(7.0 - 2.0)
    assert r.granularity == pytest.approx(2.0 / 5.0)


def test_over_selection_closes_at_kth_upload():
    link = LinkSpec("l", 1e9, 1e9, 0.0)
    clients = [client(i, link, steps=1, step_time_s=float(i + 1)) for i in range(3)]
    rec = run(inputs(clients, k=2, selected=3), 0)
    by = {c.client: c for c in rec.clients}
    assert [by[i].status for i in range(3)] == ["completed", "completed", "surplus"]
    close_s = by[1].upload_end_s
    assert by[2].end_s == pytest.approx(close_s)  # stopped when the round closed
    (r,) = rec.rounds
    assert r.clients_completed == 2 and r.end_s == pytest.approx(close_s + 2.0)
    assert (r.clients_surplus, r.clients_late) == (1, 0)


def _dropout_seed(nominal_s: float, lo_s: float, hi_s: float) -> tuple[int, float]:
    """The first seed whose replayed dropout draw fails the client inside (lo_s, hi_s) of its work.

    The dropout stream draws, per round, (coin, failure fraction) for each selected client;
    the failure point is the fraction times the client's nominal work. Replaying that makes each
    test hit the phase its name promises, instead of wherever one fixed seed happens to land.
    """
    for seed in range(1000):
        coin, fraction = Streams.from_seed(seed).dropout.random((1, 2))[0]
        fail_s = fraction * nominal_s
        if coin < 1.0 and lo_s + 0.05 < fail_s < hi_s - 0.05:
            return seed, fail_s
    raise AssertionError("no seed lands in that phase")


# LINK alone: download 0-1.1 s (0.1 latency + 1 s), compute 1.1-2.6 s, upload 2.6-4.7 s (0.1 latency + 2 s).
@pytest.mark.parametrize("phase, lo, hi", [("download", 0.1, 1.1), ("compute", 1.1, 2.6), ("upload", 2.7, 4.7)])
def test_dropout_in_each_phase_counts_the_work_done(phase, lo, hi):
    seed, fail_s = _dropout_seed(4.7, lo, hi)
    rec = run(inputs([client(0, LINK)], dropout_prob=1.0), seed)
    (c,), (r,) = rec.clients, rec.rounds
    assert c.status == "dropped" and c.end_s == pytest.approx(fail_s)
    assert r.clients_completed == 0 and r.aggregation_s == 0.0 and r.end_s == pytest.approx(fail_s)
    expected = {  # (bits down, compute s, bits up) at the failure
        "download": ((fail_s - 0.1) * 1e6, 0.0, 0.0),
        "compute": (1e6, fail_s - 1.1, 0.0),
        "upload": (1e6, 1.5, (fail_s - 2.7) * 0.5e6),
    }[phase]
    assert (c.bits_down, c.compute_s, c.bits_up) == pytest.approx(expected)
    # the phase it failed in ends at the failure; later phases never start (NaN)
    times = [c.download_start_s, c.download_end_s, c.compute_start_s, c.compute_end_s, c.upload_start_s,
             c.upload_end_s]
    reached = {"download": 1, "compute": 3, "upload": 5}[phase]
    assert times[reached] == pytest.approx(fail_s)
    assert all(math.isnan(t) for t in times[reached + 1:])
    assert all(math.isfinite(t) for t in times[:reached + 1])
    assert c.energy_network_j == pytest.approx(expected[0] * 2e-6 + expected[2] * 1e-6)
    assert c.energy_compute_j == pytest.approx(10.0 * expected[1])


@pytest.mark.parametrize("where", ["cell", "server"])
def test_dropout_point_spans_a_slow_cell_or_server_link(where):
    # Upload bottleneck 0.1 Mbit/s (a cell, or the server's receiving link) instead of the client's 0.5:
    # the upload takes 0.1 + 10 s, so the client's work alone is 1.1 + 1.5 + 10.1 = 12.7 s, and a
    # failure late in it falls in the upload (impossible if drawn over the link-only 4.7 s).
    seed, fail_s = _dropout_seed(12.7, 4.8, 12.7)
    if where == "cell":
        kw = dict(cells={"c": (1e9, 0.1e6)})
        c0 = client(0, LINK, cell="c")
        srv = server()
    else:
        kw = {}
        c0 = client(0, LINK)
        srv = server(LinkSpec("srv", downlink_bps=0.1e6, uplink_bps=1e9, latency_s=0.0))
    (c,) = run(inputs([c0], srv=srv, dropout_prob=1.0, **kw), seed).clients
    assert c.status == "dropped" and c.end_s == pytest.approx(fail_s)
    assert c.bits_up == pytest.approx((fail_s - 2.7) * 0.1e6)


def test_late_client_stopped_mid_upload_counts_bits_moved_on_both_paths():
    from simfl.sim.engine import Engine

    # Two LINK clients, K = 1 of 2 selected is not wanted here: both selected, deadline 4.0 s.
    # Each uploads from 2.7 s at 0.5 Mbit/s: 1.3 s x 0.5e6 = 650,000 bits moved at the deadline.
    inp = inputs([client(0, LINK), client(1, LINK)], deadline_s=4.0)
    for contention_free in (True, False):
        eng = Engine(inp, 0)
        eng.contention_free = contention_free
        rec = eng.run()
        for c in rec.clients:
            assert c.status == "late" and c.end_s == pytest.approx(4.0)
            assert c.bits_up == pytest.approx(650_000)
            assert c.energy_network_j == pytest.approx(1e6 * 2e-6 + 650_000 * 1e-6)
        assert rec.rounds[0].bits_up == pytest.approx(1_300_000)


def test_simultaneous_upload_after_the_kth_is_surplus_not_aggregated():
    # Two identical clients upload at the same instant; K = 1: one is aggregated, the other is surplus.
    rec = run(inputs([client(0, LINK), client(1, LINK)], k=1, selected=2), 0)
    assert sorted(c.status for c in rec.clients) == ["completed", "surplus"]
    (r,) = rec.rounds
    assert (r.clients_completed, r.clients_surplus) == (1, 1)
    assert r.aggregation_s == pytest.approx(1.0)  # one upload x 31,250 params / 31,250 params/s
    assert r.end_s == pytest.approx(4.7 + 1.0)


def test_deadline_counts_from_each_round_start():
    # One LINK client needs 4.7 s; deadline 3 s: every round ends late at start + 3 s, no aggregation.
    rec = run(inputs([client(0, LINK)], rounds=3, deadline_s=3.0), 0)
    assert [r.end_s for r in rec.rounds] == pytest.approx([3.0, 6.0, 9.0])
    assert [c.end_s for c in rec.clients] == pytest.approx([3.0, 6.0, 9.0])
    assert all(c.status == "late" for c in rec.clients)
    assert [c.compute_s for c in rec.clients] == pytest.approx([1.5] * 3)


def test_contention_check_counts_every_selected_client_not_k():
    from simfl.sim.engine import Engine

    # Server sends 2.5 Mbit/s; K = 2 downloads would fit (2 x 1 Mbit/s) but all 3 selected download.
    srv = server(LinkSpec("srv", 1e9, 2.5e6, 0.0))
    eng = Engine(inputs([client(i, LINK) for i in range(3)], k=2, selected=3, srv=srv), 0)
    assert not eng.contention_free
    rec = eng.run()
    # three flows share 2.5 Mbit/s: 0.8333 each; download = 0.1 + 1e6 / (2.5e6 / 3) = 1.3 s
    assert [c.download_end_s for c in rec.clients] == pytest.approx([1.3] * 3)


def test_same_seed_same_records_other_seed_other_selection():
    pop = [client(i, LINK) for i in range(20)]
    a = run(inputs(pop, k=3, rounds=5), 1)
    b = run(inputs(pop, k=3, rounds=5), 1)
    c = run(inputs(pop, k=3, rounds=5), 2)
    assert a.clients == b.clients and a.rounds == b.rounds
    sel = lambda rec: [x.client for x in rec.clients]  # noqa: E731
    assert sel(a) != sel(c)
    # each round selects without replacement
    for r in range(5):
        ids = [x.client for x in a.clients if x.round == r]
        assert len(set(ids)) == 3


def test_zero_step_client_still_transfers():
    (c,) = run(inputs([client(0, LINK, steps=0)]), 0).clients
    assert c.compute_s == 0.0 and c.upload_end_s == pytest.approx(1.1 + 2.1)
    assert math.isfinite(c.energy_idle_j)


@pytest.mark.parametrize("kw", [{}, {"dropout_prob": 0.5}, {"deadline_s": 3.0}])
def test_contention_free_fast_path_equals_flow_path(kw):
    from simfl.sim.engine import Engine

    pop = [client(i, LINK, steps=1 + i % 4) for i in range(12)]
    inp = inputs(pop, k=4, selected=5, rounds=6, **kw)
    fast = Engine(inp, 5)
    assert fast.contention_free
    slow = Engine(inp, 5)
    slow.contention_free = False
    a, b = fast.run(), slow.run()
    assert len(a.clients) == len(b.clients) == 30
    for x, y in zip(a.clients, b.clients):
        assert x.status == y.status and x.client == y.client
        assert x.end_s == pytest.approx(y.end_s) and x.bits_up == pytest.approx(y.bits_up)
        assert x.bits_down == pytest.approx(y.bits_down)


def test_contention_check_sees_shared_server():
    from simfl.sim.engine import Engine

    srv = server(LinkSpec("srv", 1e9, 1.5e6, 0.0))  # 3 clients x 1 Mbit/s down > 1.5 Mbit/s
    assert not Engine(inputs([client(i, LINK) for i in range(3)], srv=srv), 0).contention_free
    assert Engine(inputs([client(i, LINK) for i in range(3)], k=1), 0).contention_free


def test_deadline_before_any_upload_still_records_every_client():
    rec = run(inputs([client(0, LINK), client(1, LINK)], deadline_s=0.5), 0)
    assert [c.status for c in rec.clients] == ["late", "late"]
    (r,) = rec.rounds
    assert r.end_s == pytest.approx(0.5) and r.clients_completed == 0 and r.clients_late == 2
    assert r.t_comp_s == 0.0 and math.isnan(r.granularity)  # nothing aggregated: G undefined
    assert all(c.bits_down == pytest.approx(0.4e6) for c in rec.clients)  # 0.4 s at 1 Mbit/s after latency


@pytest.mark.parametrize("bad, message", [(dict(downlink_bps=0.0), "link rates must be positive"),
                                          (dict(uplink_bps=0.0), "link rates must be positive"),
                                          (dict(latency_s=-0.001), "latency must not be negative")])
def test_link_spec_refuses_impossible_links(bad, message):
    kw = dict(name="l", downlink_bps=1e6, uplink_bps=1e6, latency_s=0.0) | bad
    with pytest.raises(AssertionError, match=f"^{message}$"):
        LinkSpec(**kw)
    LinkSpec(**(kw | {k: 1e-9 if k != "latency_s" else 0.0 for k in bad}))  # the boundary itself is allowed


@pytest.mark.parametrize("case", ["k zero", "k above selected", "selected above population", "dropout above 1",
                                  "dropout below 0", "ids out of order", "unknown cell"])
def test_sim_inputs_refuse_inconsistent_runs(case):
    pop = [client(0, LINK), client(1, LINK)]
    kw = {"k zero": dict(k=0, selected=1), "k above selected": dict(k=2, selected=1),
          "selected above population": dict(k=1, selected=3), "dropout above 1": dict(dropout_prob=1.01),
          "dropout below 0": dict(dropout_prob=-0.01), "ids out of order": {}, "unknown cell": {}}[case]
    if case == "ids out of order":
        pop = [client(1, LINK), client(0, LINK)]
    if case == "unknown cell":
        pop = [client(0, LINK, cell="nowhere"), client(1, LINK)]
    k, selected = kw.pop("k", 1), kw.pop("selected", 2)
    from simfl.sim.inputs import SimInputs
    message = {"ids out of order": "^client ids are their positions in `clients`$",
               "unknown cell": "^group of dev names unknown cell nowhere$"}.get(case)
    with pytest.raises(AssertionError, match=message):
        SimInputs.from_clients(tuple(pop), server(), 31250, 31250 * 32, k, selected, 1, **kw)
    # the same run made consistent is accepted: k = selected = population, dropout at its bounds
    SimInputs.from_clients((client(0, LINK), client(1, LINK)), server(), 31250, 31250 * 32, 2, 2, 1, dropout_prob=1.0)
    SimInputs.from_clients((client(0, LINK), client(1, LINK)), server(), 31250, 31250 * 32, 1, 2, 1, dropout_prob=0.0)


def test_round_records_are_the_sums_of_their_client_rows():
    # Heterogeneous clients, over-selection and dropout, several rounds: every round figure is the sum
    # (or count) of its own client rows, and each row names its device and network.
    fast = LinkSpec("fast", 2e6, 1e6, 0.05, 1e-6, 3e-6)
    pop = [client(i, LINK if i % 2 else fast, steps=1 + i % 3, power_w=5.0 + i, idle_w=1.0 + i / 10)
           for i in range(8)]
    pop = [type(c)(c.client_id, f"dev{c.client_id % 3}", *[getattr(c, f) for f in ("link", "steps", "step_time_s",
           "compute_power_w", "idle_power_w", "cell")]) for c in pop]
    rec = run(inputs(pop, k=3, selected=5, rounds=6, dropout_prob=0.3), 4)
    assert len(rec.rounds) == 6 and len(rec.clients) == 30
    statuses = set()
    for r in rec.rounds:
        rows = [c for c in rec.clients if c.round == r.round]
        assert r.clients_selected == len(rows) == 5
        by = {s: sum(c.status == s for c in rows) for s in ("completed", "dropped", "late", "surplus")}
        assert (r.clients_completed, r.clients_dropped, r.clients_late, r.clients_surplus) == tuple(by.values())
        statuses |= {s for s, n in by.items() if n}
        for total, field in ((r.bits_down, "bits_down"), (r.bits_up, "bits_up"),
                             (r.energy_network_j, "energy_network_j"),
                             (r.energy_client_compute_j, "energy_compute_j"),
                             (r.energy_client_idle_j, "energy_idle_j")):
            assert total == pytest.approx(sum(getattr(c, field) for c in rows), rel=1e-12), field
        for c in rows:
            assert c.device == f"dev{c.client % 3}" and c.network == ("l" if c.client % 2 else "fast")
            assert c.energy_compute_j == pytest.approx((5.0 + c.client) * c.compute_s)
    assert statuses == {"completed", "dropped", "surplus"}  # the draw exercises each path


def test_selection_draws_only_the_selection_when_no_dropout():
    # Documented draw order: per round the selection, then (only with dropout) a coin and a failure
    # point per client. With dropout_prob 0 nothing else is drawn: the selections replay exactly.
    pop = [client(i, LINK) for i in range(10)]
    rec = run(inputs(pop, k=3, rounds=4), 9)
    rng = Streams.from_seed(9).selection
    expected = [int(c) for _ in range(4) for c in rng.choice(10, size=3, replace=False)]
    assert [c.client for c in rec.clients] == expected


def test_failure_point_after_the_client_was_stopped_does_nothing():
    # Deadline 3 s; the client's failure point falls after it (it was already stopped late): it stays
    # late, and the next round runs undisturbed.
    seed, fail_s = _dropout_seed(4.7, 3.0, 4.7)
    rec = run(inputs([client(0, LINK)], rounds=2, deadline_s=3.0, dropout_prob=1.0), seed)
    assert rec.clients[0].status == "late" and rec.clients[0].end_s == pytest.approx(3.0)
    assert rec.rounds[0].end_s == pytest.approx(3.0) and len(rec.rounds) == 2


def test_downloads_share_their_cell():
    # Two clients download 1e6 bits at once through a cell of 0.8 Mbit/s down: 0.4 each, 2.5 s.
    link = LinkSpec("l", 1e9, 1e9, 0.0)
    rec = run(inputs([client(0, link, cell="c"), client(1, link, cell="c")], cells={"c": (0.8e6, 1e9)}),
              0)
    assert [c.download_end_s for c in rec.clients] == pytest.approx([2.5, 2.5])


@pytest.mark.parametrize("caps, k, selected, capacity, free", [
    ([1e6, 1e6, 1e6], 1, 1, 1.5e6, True),   # one transfer at a time fits, though three clients exist
    ([1e6, 0.2e6, 0.2e6], 2, 2, 0.5e6, False),  # the two largest caps (1.2 Mbit/s) decide, not the smallest
    ([1e6, 1e6], 2, 2, 2e6, True),  # exactly full is not oversubscribed
])
def test_contention_free_check_by_hand(caps, k, selected, capacity, free):
    from simfl.sim.engine import Engine

    srv = server(LinkSpec("srv", 1e12, capacity, 0.0))
    pop = [client(i, LinkSpec(f"l{i}", cap, 1e9, 0.0)) for i, cap in enumerate(caps)]
    assert Engine(inputs(pop, k=k, selected=selected, srv=srv), 0).contention_free is free


def test_memory_of_a_streamed_run_does_not_grow_with_client_rounds():
    import gc
    import tracemalloc

    from simfl.sim.engine import Engine

    pop = [client(i, LINK) for i in range(500)]

    def peak_bytes(rounds: int, sink) -> int:
        inp = inputs(pop, k=500, rounds=rounds)
        seen = []
        eng = Engine(inp, 0, client_sink=(lambda chunk: seen.append(len(chunk["round"]))) if sink else None,
                     chunk_rows=1000)
        gc.collect()  # start each measurement from the same heap, whatever earlier tests left behind
        tracemalloc.start()
        eng.run()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        if sink:
            assert sum(seen) == 500 * rounds and max(seen) == 1000
        return peak

    small, large = peak_bytes(10, True), peak_bytes(40, True)  # 5,000 and 20,000 client-rounds
    assert large < 1.25 * small, (small, large)
    kept_small, kept_large = peak_bytes(10, False), peak_bytes(40, False)  # without a sink the rows stay
    assert kept_large > 2.5 * kept_small, (kept_small, kept_large)


def test_per_member_speed_and_link_rates():
    # One group (LINK, 3 steps x 0.5 s); member 1 has speed 2 (1.0 s a step) and its own rates
    # (down 0.5 Mbit/s, up 0.25 Mbit/s): download 0.1 + 2 s, compute 3 s, upload 0.1 + 4 s = 9.2 s.
    import numpy as np

    from simfl.sim.inputs import GroupSpec, Population, SimInputs
    groups = (GroupSpec("dev", LINK, 0.5, 10.0, 2.0, **UPDATE),)
    pop = Population(np.zeros(2, dtype=np.int32), np.full(2, 3, dtype=np.int32), speed=np.array([1.0, 2.0]),
                     downlink_bps=np.array([1e6, 0.5e6]), uplink_bps=np.array([0.5e6, 0.25e6]))
    rec = run(SimInputs(groups, pop, server(), 2, 2, 1), 0)
    by = {c.client: c for c in rec.clients}
    assert by[0].upload_end_s == pytest.approx(4.7)  # the group's own values
    assert (by[1].download_end_s, by[1].compute_s, by[1].upload_end_s) == pytest.approx((2.1, 3.0, 9.2))
    assert by[1].energy_compute_j == pytest.approx(10.0 * 3.0)
    with pytest.raises(AssertionError, match="speed: positive, per member"):
        Population(np.zeros(2, dtype=np.int32), np.ones(2, dtype=np.int32), speed=np.array([1.0, 0.0]))


@pytest.mark.parametrize("case, free", [
    ("cell fits both ways", True),        # down 3 x 1e6 <= 3e6, up 3 x 0.5e6 <= 1.5e6
    ("cell down too small", False),       # down 3 x 1e6 > 2.5e6 (the up caps would fit: direction matters)
    ("outsider not in the cell", True),   # a fast group outside the cell does not count against it
    ("per-member rates", False),          # one member's own downlink (2e6) overfills the cell: 2 + 1 + 1 > 3.5
])
def test_contention_check_per_cell_direction_and_member(case, free):
    import numpy as np

    from simfl.sim.engine import Engine
    from simfl.sim.inputs import GroupSpec, Population, SimInputs
    link = LinkSpec("l", 1e6, 0.5e6, 0.0)
    fast = LinkSpec("fast", 100e6, 100e6, 0.0)
    cell = {"cell fits both ways": (3e6, 1.5e6), "cell down too small": (2.5e6, 1.5e6),
            "outsider not in the cell": (3e6, 1.5e6), "per-member rates": (3.5e6, 1.5e6)}[case]
    groups = (GroupSpec("dev", link, 0.5, 10.0, 2.0, "c", **UPDATE),
              GroupSpec("dev", fast, 0.5, 10.0, 2.0, **UPDATE))
    group = np.array([0, 0, 0] + ([1] if case == "outsider not in the cell" else []), dtype=np.int32)
    rates = {"downlink_bps": np.array([2e6, 1e6, 1e6])} if case == "per-member rates" else {}
    pop = Population(group, np.ones(len(group), dtype=np.int32), **rates)
    inp = SimInputs(groups, pop, server(), 3, 3, 1, cells={"c": cell})
    assert Engine(inp, 0).contention_free is free


def test_each_member_takes_its_own_groups_route_and_partial_rates():
    # Group 0 is alone on its link; group 1 shares a cell of 0.8 Mbit/s down. Member 2 (group 1) has
    # its own downlink only: its uplink stays the group's.
    import numpy as np

    from simfl.sim.inputs import GroupSpec, Population, SimInputs
    link = LinkSpec("l", 1e9, 1e9, 0.0)
    groups = (GroupSpec("a", link, 0.5, 10.0, 2.0, **UPDATE),
              GroupSpec("b", link, 0.5, 10.0, 2.0, "c", **UPDATE))
    pop = Population(np.array([0, 1, 1], dtype=np.int32), np.ones(3, dtype=np.int32),
                     downlink_bps=np.array([1e9, 1e9, 0.2e6]))
    srv = server(LinkSpec("srv", 1e12, 1e12, 0.0))  # the server link never binds here
    inp = SimInputs(groups, pop, srv, 3, 3, 1, cells={"c": (0.8e6, 1e9)})
    assert inp.client(2).link.uplink_bps == 1e9 and inp.client(2).link.downlink_bps == 0.2e6
    assert [inp.client(i).group for i in range(3)] == [0, 1, 1]
    by = {c.client: c for c in run(inp, 0).clients}
    # member 0: 1e6 bits at 1 Gbit/s = 1 ms. In the cell, member 2 is capped at 0.2 and member 1 gets
    # 0.6: member 1 ends at 1e6 / 0.6e6; member 2 then moves its rest at 0.2: 1e6 / 0.2e6 = 5 s in all.
    assert by[0].download_end_s == pytest.approx(0.001)
    assert by[1].download_end_s == pytest.approx(1e6 / 0.6e6)
    assert by[2].download_end_s == pytest.approx(5.0)


def test_client_log_takes_records_or_tuples_and_chunks_them():
    from simfl.sim.records import CLIENT_FIELDS, ClientLog, ClientRound
    row = ClientRound(0, 3, "dev", "l", 0, "", "completed", *([0.5] * 7), 1.5, 1e6, 1e6, 1.0, 2.0, 3.0, 0, 1, 0.0)
    got = []
    log = ClientLog(got.append, chunk_rows=2)
    log.append(row)
    log.append(tuple(getattr(row, f) for f in CLIENT_FIELDS))
    log.append(row)
    log.flush()
    assert [len(c["round"]) for c in got] == [2, 1] and len(log) == 3
    assert got[0]["client"] == [3, 3] and got[1]["status"] == ["completed"]
    assert log.status_counts == {"completed": 3}
    kept = ClientLog(chunk_rows=2)
    for _ in range(3):
        kept.append(row)
    assert list(kept) == [row] * 3 and kept[2] == row and kept[-1] == row
    with pytest.raises(IndexError):
        kept[3]
    with pytest.raises(RuntimeError, match="streamed to a sink"):
        list(log)


def test_client_log_extend_cuts_exact_chunks():
    from simfl.sim.records import CLIENT_FIELDS, ClientLog
    row = (0, 1, "dev", "l", 0, "", "completed", *([0.5] * 7), 1.5, 1e6, 1e6, 1.0, 2.0, 3.0, 0, 1, 0.0)
    assert len(row) == len(CLIENT_FIELDS)
    got = []
    log = ClientLog(lambda chunk: got.append(len(chunk["round"])), chunk_rows=2)
    log.extend([row] * 5, {"completed": 5})
    assert got == [2, 2] and len(log) == 5
    log.extend([row], {"completed": 1})
    assert got == [2, 2, 2] and log.status_counts["completed"] == 6


@pytest.mark.parametrize("contention_free", [True, False])
def test_transport_framing_and_per_transfer_time_by_hand(contention_free):
    # framing 1.25: 1e6 payload bits are 1.25e6 on the wire; every transfer adds 0.2 s (after the 0.1 s latency)
    from simfl.sim.engine import Engine

    eng = Engine(inputs([client(0, LINK)], framing_factor=1.25, per_transfer_s=0.2), Streams.from_seed(0))
    eng.contention_free = contention_free
    rec = eng.run()
    (c,) = rec.clients
    # download 0.1 + 0.2 + 1.25e6 / 1e6 = 1.55; compute 1.5; upload 0.3 + 1.25e6 / 0.5e6 = 2.8
    assert c.download_end_s == pytest.approx(1.55)
    assert c.upload_end_s == pytest.approx(1.55 + 1.5 + 2.8)
    # bits and network energy count the payload (the per-bit chain prices payload bits)
    assert (c.bits_down, c.bits_up) == (pytest.approx(1e6), pytest.approx(1e6))
    assert c.energy_network_j == pytest.approx(3.0)


def test_a_stopped_transfer_counts_payload_bits():
    # a deadline at 1.0 s stops the download 0.7 s into its 1.25e6 wire bits at 1 Mbit/s (after 0.3 s of
    # latency and per-transfer time): 0.7e6 wire bits, 0.56e6 payload bits
    rec = run(inputs([client(0, LINK)], framing_factor=1.25, per_transfer_s=0.2, deadline_s=1.0), 0)
    (c,) = rec.clients
    assert c.status == "late" and c.bits_down == pytest.approx(0.7e6 / 1.25)
