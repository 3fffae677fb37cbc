"""The array kernel (simfl/sim/arrays.py) against the SimPy engine: the same records, bit for bit, and the
edge cases of SimPy's event order worked out by hand."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from simfl.sim.availability import AlwaysSpec, OnOffSpec, TraceSpec
from simfl.sim.carbon import CarbonCurve
from simfl.sim.engine import Engine
from simfl.sim.inputs import GroupSpec, LinkSpec, Population, ServerSpec, SimInputs, SyncSpec
from simfl.sim.records import CLIENT_FIELDS, RunRecords
from simfl.sim.selection import SpeedSelection
from simfl.sim.streams import Streams
from simfl.sim.variation import Spread
from tests.helpers import client, inputs, server

REPO = Path(__file__).resolve().parents[1]
RUN_FIELDS = ("notes", "co2_g_by_shift", "selected_by_group", "aggregated_by_group", "cell_bits", "group_bits")


def _same(a, b) -> bool:
    """Equal, NaN equal to NaN, and of the same type (a float stays a float)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def assert_same_records(a: RunRecords, b: RunRecords) -> None:
    """Record for record, field for field, to the bit; the run's counters too."""
    rows_a, rows_b = list(a.clients), list(b.clients)
    assert len(rows_a) == len(rows_b)
    for x, y in zip(rows_a, rows_b):
        for f in CLIENT_FIELDS:
            assert _same(getattr(x, f), getattr(y, f)), (f, x, y)
    assert len(a.rounds) == len(b.rounds)
    for x, y in zip(a.rounds, b.rounds):
        for f in x.__slots__:
            assert _same(getattr(x, f), getattr(y, f)), (f, x, y)
    for f in RUN_FIELDS:
        assert getattr(a, f) == getattr(b, f), f
    assert dict(a.clients.status_counts) == dict(b.clients.status_counts)


def _close(a, b, field: str = "") -> bool:
    """Equal but for float residue, NaN equal to NaN, ints and strings exactly. An instant or duration (a field
    ending in _s) to 1e-9 s, the flow clock's own resolution (clock.DONE_S), or 1e-12 of itself; any other
    float (bits, joules, grams: a rate times a difference of instants) to 1e-9 of itself, or 1e-6 (a flow
    that joins in the closing instant on one side and a float's spacing before it on the other moves 1e-10
    bits)."""
    if isinstance(a, float) and isinstance(b, float):
        if (math.isnan(a) and math.isnan(b)) or a == b:
            return True
        if field.endswith("_s"):
            return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return type(a) is type(b) and a == b


def _cut_on_a_tie(x, y, field: str) -> bool:
    """A client cut in the instant one of its phases ends, to float residue: a flow's last bit and the event that
    closes the round fall within 1e-9 s of each other, in one order on SimPy's clock and the other on the
    kernel's. The phase after it then has begun on one side (its start at the cut's instant) and not on the
    other (NaN); every other field agrees to residue."""
    a, b = getattr(x, field), getattr(y, field)
    if not (field.endswith("_s") and x.status == y.status and _close(x.end_s, y.end_s, "end_s")):
        return False
    return (math.isnan(a) and _close(b, y.end_s, "end_s")) or (math.isnan(b) and _close(a, x.end_s, "end_s"))


def assert_close_records(a: RunRecords, b: RunRecords) -> None:
    """Record for record: every status, count and name the same, every float the same but for residue."""
    rows_a, rows_b = list(a.clients), list(b.clients)
    assert len(rows_a) == len(rows_b)
    for x, y in zip(rows_a, rows_b):
        for f in CLIENT_FIELDS:
            assert _close(getattr(x, f), getattr(y, f), f) or _cut_on_a_tie(x, y, f), (f, x, y)
    assert len(a.rounds) == len(b.rounds)
    for x, y in zip(a.rounds, b.rounds):
        for f in x.__slots__:
            assert _close(getattr(x, f), getattr(y, f), f), (f, x, y)
    for f in RUN_FIELDS:
        va, vb = getattr(a, f), getattr(b, f)
        if isinstance(va, dict):
            assert list(va) == list(vb) and all(_close(va[k], vb[k]) for k in va), f
        elif isinstance(va, list) and va and isinstance(va[0], float):
            assert len(va) == len(vb) and all(_close(x, y) for x, y in zip(va, vb)), f
        else:
            assert va == vb, f
    assert dict(a.clients.status_counts) == dict(b.clients.status_counts)


def both(inp: SimInputs, streams: Streams | int, expect: str = "arrays", in_blocks: bool = True, **kw) -> RunRecords:
    """Run `inp` on SimPy and on the default engine (which must have run on `expect`); returns the latter's
    records after checking they equal SimPy's."""
    s1 = copy.deepcopy(streams)
    slow = Engine(inp, s1, kernel="simpy", **kw)
    a = slow.run()
    fast = Engine(inp, streams, **kw)
    b = fast.run()
    assert fast.ran_on == expect
    if fast.array_kernel is not None and fast.array_kernel.shared:
        assert_close_records(a, b)  # max-min sharing over arrays: the same up to float residue (shared_link.py)
    else:
        assert_same_records(a, b)
    kernel = fast.array_kernel
    if kernel is not None and kernel.batch and expect == "arrays" and in_blocks:
        # a run fit for blocks ran in them (a block that fell back to round by round would hide its own bug)
        assert kernel.rounds_in_blocks == len(b.rounds)
    return b


# -- hand-worked edge cases ------------------------------------------------------------------------------

# Dyadic numbers, so that every instant below is exact: download 1e6 bits at 1e6 bit/s = 1 s, compute
# 2 x 0.5 s = 1 s, upload 1e6 bits at 0.5e6 bit/s = 2 s, no latency: t_d = 1, t_c = 2, t_u = 4.
EXACT = LinkSpec("exact", 1e6, 0.5e6, 0.0, 2e-6, 1e-6)


def exact_client(cid: int) -> object:
    return client(cid, EXACT, steps=2, step_time_s=0.5)


def test_over_selection_ties_go_by_selection_order():
    # Three identical clients land their uploads at t = 4 together; K = 2. SimPy runs the three upload timers in
    # the order they were made, which is selection order: the first two are aggregated, the third is surplus,
    # with its whole upload counted (it landed in the closing instant).
    rec = both(inputs([exact_client(i) for i in range(3)], k=2, selected=3), 0)
    rows = list(rec.clients)
    assert [c.status for c in rows] == ["completed", "completed", "surplus"]
    assert [c.upload_end_s for c in rows] == [4.0, 4.0, 4.0]
    assert [c.bits_up for c in rows] == [1e6, 1e6, 1e6]
    (r,) = rec.rounds
    # aggregation: 2 uploads x 31,250 params / 31,250 params/s = 2 s
    assert (r.clients_completed, r.clients_surplus, r.aggregation_s, r.end_s) == (2, 1, 2.0, 6.0)


@pytest.mark.parametrize("blocks", [True, False])
def test_upload_made_earlier_goes_first_in_a_tie(blocks, monkeypatch):
    # Client 0 downloads 1e6 bits at 0.5e6 bit/s (2 s), computes 2 x 0.5 = 1 s, uploads at 0.5e6 bit/s (2 s):
    # t_d = 2, t_c = 3, t_u = 5. Client 1 downloads in 1 s, computes 6 x 0.5 = 3 s, uploads at 1e6 bit/s (1 s):
    # t_d = 1, t_c = 4, t_u = 5. Client 0's upload timer was made first (at 3 s), though client 1's download
    # ended first: with K = 1 client 0 is aggregated, in whichever order they were selected. Both paths: blocks
    # of rounds, and round by round.
    import simfl.sim.arrays

    if not blocks:
        monkeypatch.setattr(simfl.sim.arrays.ArrayRounds, "_block", lambda self, first, last: False)
    slow_down = LinkSpec("slow-down", 0.5e6, 0.5e6, 0.0)
    fast_link = LinkSpec("fast", 1e6, 1e6, 0.0)
    pop = [client(0, slow_down, steps=2, step_time_s=0.5), client(1, fast_link, steps=6, step_time_s=0.5)]
    for seed in range(4):  # both selection orders among them
        rec = both(inputs(pop, k=1, selected=2), seed, in_blocks=blocks)
        by_client = {c.client: c for c in rec.clients}
        assert by_client[0].upload_end_s == by_client[1].upload_end_s == 5.0
        assert (by_client[0].status, by_client[1].status) == ("completed", "surplus")


@pytest.mark.parametrize("deadline_s, status, phase_ends", [
    # the deadline timer was made at the round's start, before any job's: at its instant it runs first
    (4.0, "late", {"upload_end_s": 4.0, "bits_up": 1e6}),  # the upload landed, but after the deadline
    (1.0, "late", {"download_end_s": 1.0, "compute_start_s": 1.0, "compute_end_s": 1.0, "compute_s": 0.0}),
    (2.0, "late", {"compute_end_s": 2.0, "upload_start_s": 2.0, "upload_end_s": 2.0, "bits_up": 0.0}),
    (3.0, "late", {"upload_end_s": 3.0, "bits_up": 0.5e6}),  # 1 s of its 2 s upload at 0.5e6 bit/s
])
def test_deadline_on_a_boundary(deadline_s, status, phase_ends):
    # A phase that ends at the deadline's instant has ended when the round closes (its timer ran before the
    # closed event): the client is cut in the next phase, having done nothing of it.
    rec = both(inputs([exact_client(0), exact_client(1)], deadline_s=deadline_s), 0)
    for c in rec.clients:
        assert c.status == status and c.end_s == deadline_s
        for field, value in phase_ends.items():
            assert getattr(c, field) == value, field
    assert rec.rounds[0].clients_late == 2 and rec.rounds[0].aggregation_s == 0.0


class _Fixed:
    """A stand-in for the dropout stream: returns the (coin, fraction) rows it was given, in order."""

    class _Bits:
        state = {"fixed": True}

    bit_generator = _Bits()

    def __init__(self, rows):
        self.rows = np.array(rows, dtype=float)

    def random(self, shape):
        out, self.rows = self.rows[:shape[0]], self.rows[shape[0]:]
        assert out.shape == shape
        return out


@pytest.mark.parametrize("fraction, phase, expect", [
    # nominal work alone = 1 + 1 + 2 = 4 s; the client fails at fraction x 4 s
    (0.125, "download", {"end_s": 0.5, "download_end_s": 0.5, "bits_down": 0.5e6, "compute_s": 0.0}),
    (0.25, "download", {"end_s": 1.0, "download_end_s": 1.0, "bits_down": 1e6, "compute_s": 0.0}),  # on t_d
    (0.375, "compute", {"end_s": 1.5, "compute_end_s": 1.5, "compute_s": 0.5, "bits_up": 0.0}),
    (0.5, "compute", {"end_s": 2.0, "compute_end_s": 2.0, "compute_s": 1.0, "bits_up": 0.0}),  # on t_c
    (0.75, "upload", {"end_s": 3.0, "upload_end_s": 3.0, "compute_s": 1.0, "bits_up": 0.5e6}),
    (1.0, "upload", {"end_s": 4.0, "upload_end_s": 4.0, "bits_up": 1e6}),  # on t_u: its whole upload, dropped
])
def test_dropout_inside_each_phase(fraction, phase, expect):
    # A dropout timer is made at the round's start, before the job's own timers: on the end of a phase it runs
    # first and stops the client in that phase. Client 1 never fails (coin 0.9 > p = 0.5).
    def streams():
        s = Streams.from_seed(0)
        return Streams(s.partition, s.selection, _Fixed([[0.0, fraction], [0.9, 0.0]]), s.speed, s.links,
                       s.availability)
    inp = inputs([exact_client(0), exact_client(1)], dropout_prob=0.5)
    slow = Engine(inp, streams(), kernel="simpy").run()
    fast_engine = Engine(inp, streams())
    fast = fast_engine.run()
    assert fast_engine.ran_on == "arrays"
    assert_same_records(slow, fast)
    c0 = next(c for c in fast.clients if c.client == 0)
    c1 = next(c for c in fast.clients if c.client == 1)
    assert c0.status == "dropped" and c1.status == "completed"
    for field, value in expect.items():
        assert getattr(c0, field) == value, field
    reached = {"download": ("download_end_s",), "compute": ("compute_end_s",), "upload": ("upload_end_s",)}
    assert not math.isnan(getattr(c0, reached[phase][0]))
    if phase == "download":
        assert math.isnan(c0.compute_start_s)
    if phase != "upload":
        assert math.isnan(c0.upload_start_s)


def test_availability_ending_mid_round():
    # Client 1's interval ends at 3 s, mid-upload: 1 s of its 2 s upload at 0.5e6 bit/s moved, 0.5e6 bits;
    # offline. Client 0 lands at 4 s; with K = 2 of 2 the round closes when the last client stops, at 4 s, and
    # aggregates the one upload: 31,250 params / 31,250 params/s = 1 s, so it ends at 5 s.
    inp = inputs([exact_client(0), exact_client(1)])
    groups = tuple(GroupSpec(g.device, g.link, g.step_time_s, g.compute_power_w, g.idle_power_w,
                             trainable_params=g.trainable_params, bits_per_transfer=g.bits_per_transfer,
                             availability=TraceSpec(np.array([0, 1]), np.array([0.0, 0.0]), np.array([100.0, 3.0])))
                   for g in inp.groups)
    inp = SimInputs(groups, inp.population, inp.server, 2, 2, 1)
    rec = both(inp, 0)
    by_client = {c.client: c for c in rec.clients}
    assert (by_client[0].status, by_client[1].status) == ("completed", "offline")
    assert (by_client[1].end_s, by_client[1].upload_end_s, by_client[1].bits_up) == (3.0, 3.0, 0.5e6)
    (r,) = rec.rounds
    assert (r.clients_completed, r.clients_offline, r.end_s) == (1, 1, 5.0)


def test_a_dropout_and_the_end_of_availability_at_one_instant_is_a_dropout():
    # Both clients fail at 0.75 x 4 s = 3 s, mid-upload, and both intervals end at 3 s: the dropout timer was
    # made first (each client's two timers at the round's start, in that order), so both are dropped, not
    # offline, with 1 s of the 2 s upload at 0.5e6 bit/s moved.
    base = inputs([exact_client(0), exact_client(1)])
    groups = tuple(GroupSpec(g.device, g.link, g.step_time_s, g.compute_power_w, g.idle_power_w,
                             trainable_params=g.trainable_params, bits_per_transfer=g.bits_per_transfer,
                             availability=TraceSpec(np.array([0, 1]), np.array([0.0, 0.0]), np.array([3.0, 3.0])))
                   for g in base.groups)
    inp = SimInputs(groups, base.population, base.server, 2, 2, 1, dropout_prob=0.5)

    def streams():
        s = Streams.from_seed(0)
        return Streams(s.partition, s.selection, _Fixed([[0.0, 0.75], [0.0, 0.75]]), s.speed, s.links,
                       s.availability)

    slow = Engine(inp, streams(), kernel="simpy").run()
    fast_engine = Engine(inp, streams())
    fast = fast_engine.run()
    assert fast_engine.ran_on == "arrays"
    assert_same_records(slow, fast)
    assert [(c.status, c.end_s, c.bits_up) for c in fast.clients] == [("dropped", 3.0, 0.5e6)] * 2


def test_a_phase_too_short_to_move_the_clock_hands_the_run_to_simpy():
    # A 1-bit download at 1 Tbit/s takes 1e-12 s (the upload, at 1 bit/s, 1 s); a 1e6 s compute puts round 1's
    # start past 1e6 s, where a float cannot hold start + 1e-12 (its spacing there is 1.2e-10): that download's
    # timer fires in its own instant, an order the kernel does not model. It runs round 0 and SimPy the rest,
    # with the same records.
    link = LinkSpec("tera", 1e12, 1.0, 0.0)
    srv = ServerSpec("srv", LinkSpec("s", 1e15, 1e15, 0.0), 1.0, 2.0, 1e9)
    groups = (GroupSpec("dev", link, 1e6, 10.0, 1.0, trainable_params=1, bits_per_transfer=1),)
    inp = SimInputs(groups, Population(np.zeros(3, np.int32), np.ones(3, np.int32)), srv, 2, 3, 3)
    rec = both(inp, 0, expect="arrays, then simpy")
    assert len(rec.rounds) == 3


def test_forced_kernel_refuses_what_it_cannot_run():
    # link rates drawn each client-round: nothing bounds them, so the run is SimPy's
    import dataclasses

    inp = inputs([client(i, EXACT) for i in range(3)])
    inp = dataclasses.replace(inp, groups=tuple(dataclasses.replace(g, link_round=Spread(0.5)) for g in inp.groups))
    with pytest.raises(ValueError, match="links drawn each round"):
        Engine(inp, 0, kernel="arrays").run()
    assert Engine(inp, 0).run() is not None  # auto: SimPy


# -- a server link that binds ------------------------------------------------------------------------------

def test_downloads_share_a_binding_server_link():
    # Three EXACT clients (1e6 bits down at 1 Mbit/s, 1 s compute, 1e6 bits up at 0.5 Mbit/s) on a server that
    # sends at 1.5 Mbit/s: 0.5 Mbit/s each, so every download takes 2 s (t_d = 2), compute ends at 3, and the
    # uploads (3 x 0.5 = 1.5 Mbit/s, not above the server's 1.5 Mbit/s receive rate) land at 3 + 2 = 5.
    srv = server(LinkSpec("srv", 1.5e6, 1.5e6, 0.0))
    rec = both(inputs([exact_client(i) for i in range(3)], srv=srv, k=3, selected=3), 0)
    rows = list(rec.clients)
    assert [c.download_end_s for c in rows] == pytest.approx([2.0] * 3, abs=1e-12)
    assert [c.upload_end_s for c in rows] == pytest.approx([5.0] * 3, abs=1e-12)
    assert [c.status for c in rows] == ["completed"] * 3


def test_a_dropout_mid_download_speeds_up_the_others():
    # Two EXACT clients on a 1 Mbit/s server link: 0.5 Mbit/s each. Client 1 drops at 1 s (failure fraction x
    # its nominal work, 4 s alone on the path: 0.25), having moved 0.5 Mbit; client 0 has 0.5 Mbit left, alone
    # at its 1 Mbit/s cap: its download ends at 1.5 s, compute at 2.5, upload (0.5 Mbit/s, 2 s) at 4.5.
    def streams():  # the first selected fails at 0.25 of its nominal work; the second's coin says no
        s = Streams.from_seed(0)
        return Streams(s.partition, s.selection, _Fixed([[0.0, 0.25], [0.9, 0.0]]), s.speed, s.links,
                       s.availability)

    srv = server(LinkSpec("srv", 1e6, 1e6, 0.0))
    inp = inputs([exact_client(i) for i in range(2)], srv=srv, k=2, selected=2, dropout_prob=0.5)
    slow = Engine(inp, streams(), kernel="simpy").run()
    fast_engine = Engine(inp, streams())
    fast = fast_engine.run()
    assert fast_engine.ran_on == "arrays"
    assert_close_records(slow, fast)
    b, a = sorted(fast.clients, key=lambda c: c.status != "dropped")
    assert (b.status, b.download_end_s, b.bits_down) == ("dropped", pytest.approx(1.0), pytest.approx(0.5e6))
    assert a.status == "completed"
    assert (a.download_end_s, a.upload_end_s) == (pytest.approx(1.5), pytest.approx(4.5))


def test_a_cell_holds_its_flows_and_the_server_gives_the_rest_to_others():
    # Three EXACT clients (1 Mbit/s down), two in a cell that carries 1 Mbit/s down, under a server that sends
    # 2 Mbit/s. The cell holds its two at 0.5 each; the server's 2 Mbit/s then leaves the third its own
    # 1 Mbit/s (ignoring the cell, all three would get 2/3). The third's download ends at 1 s (t_c = 2, its
    # upload at 0.5 Mbit/s lands at 4); the cell's two stay at 0.5 (their cell still binds): 2 s, then 3, 5.
    srv = server(LinkSpec("srv", 1e12, 2e6, 0.0))
    pop = [client(0, EXACT, steps=2), client(1, EXACT, steps=2, cell="c1"), client(2, EXACT, steps=2, cell="c1")]
    rec = both(inputs(pop, srv=srv, cells={"c1": (1e6, 1e12)}), 0)
    rows = sorted(rec.clients, key=lambda c: c.client)
    assert [c.download_end_s for c in rows] == pytest.approx([1.0, 2.0, 2.0], abs=1e-12)
    assert [c.upload_end_s for c in rows] == pytest.approx([4.0, 5.0, 5.0], abs=1e-12)
    assert rec.cell_bits[("c1", "down")] == pytest.approx(2e6)


def test_a_deadline_on_a_shared_download_end_cuts_it_in_its_download():
    # Two EXACT clients on a server that sends 1 Mbit/s: 0.5 each, both downloads end at 2 s, the deadline's
    # instant. The last bit is an event of the link's timer, and each client resumes one event later; the
    # deadline's timer, made at the round's start, closes the round in between. So both are late in their
    # download, with every bit moved and no compute begun (without sharing, the download's own timer is the
    # event the client waits on, and it has ended: test_deadline_on_a_boundary).
    srv = server(LinkSpec("srv", 1e12, 1e6, 0.0))
    rec = both(inputs([exact_client(i) for i in range(2)], srv=srv, deadline_s=2.0), 0)
    for c in rec.clients:
        assert (c.status, c.download_end_s, c.bits_down, c.end_s) == ("late", 2.0, 1e6, 2.0)
        assert math.isnan(c.compute_start_s) and c.compute_s == 0.0


@pytest.mark.parametrize("cell, first", [(None, 0), ("c1", 1)])
def test_uploads_landing_together_on_a_shared_link(cell, first):
    # Client 0: latency 1 s, 1 step (0.5 s), uploads 1e6 bits at 2 Mbit/s; client 1: no latency, 4 steps (2 s),
    # uploads at 1 Mbit/s. The server sends at 1 Mbit/s (it binds): client 1's download ends at 1, client 0's
    # (it waits out its latency) at 2. Uploads: client 0 starts at 2.5 and joins the link at 3.5; client 1
    # starts and joins at 3.0. Both land at 4.0, and K = 1. Without cells SimPy's FairLink ends flows of one
    # instant in the order their uploads were started (client 0 first); with a cell its FlowNetwork ends them
    # in the order they joined the link (client 1 first). (Found by review.)
    la = LinkSpec("la", 1e6, 2e6, 1.0)
    lb = LinkSpec("lb", 1e6, 1e6, 0.0)
    pop = [client(0, la, steps=1, step_time_s=0.5, cell=cell), client(1, lb, steps=4, step_time_s=0.5, cell=cell)]
    inp = inputs(pop, srv=server(LinkSpec("srv", 1e9, 1e6, 0.0)), k=1, selected=2,
                 cells={"c1": (1e12, 1e12)} if cell else {})
    rec = both(inp, 0)
    rows = sorted(rec.clients, key=lambda c: c.client)
    assert [c.upload_end_s for c in rows] == [4.0, 4.0]
    assert rows[first].status == "completed" and rows[1 - first].status == "surplus"


def test_flows_joining_together_with_cells_go_by_when_their_start_was_made():
    # Both in a wide cell, under a server that sends 1 Mbit/s. Client 0 has 0.5 s of latency, client 1 none;
    # 1e6 bits each way at 1 Mbit/s caps. Downloads: client 1 alone 0-0.5 (0.5 Mbit), then 0.5 Mbit/s each:
    # client 1 is done at 1.5, client 0 (0.5 Mbit by then, then alone) at 2.0. Client 0 computes 1 step (0.5 s,
    # t_c 2.5) and joins the link at 3.0 after its latency; client 1 computes 3 steps (1.5 s) and joins at
    # t_c = 3.0. Both land at 4.0, K = 1. Client 1's flow began first: the compute timer that began it was made
    # at 1.5, client 0's latency timer at 2.5. (With FairLink, without cells, client 0's upload, started first
    # at 2.5, would go first.) Found by review, seed 31787 of a fuzzer.
    link0 = LinkSpec("l0", 1e6, 1e6, 0.5)
    link1 = LinkSpec("l1", 1e6, 1e6, 0.0)
    pop = [client(0, link0, steps=1, step_time_s=0.5, cell="c1"), client(1, link1, steps=3, step_time_s=0.5, cell="c1")]
    inp = inputs(pop, srv=server(LinkSpec("srv", 1e9, 1e6, 0.0)), k=1, selected=2, cells={"c1": (1e12, 1e12)})
    rec = both(inp, 0)
    rows = sorted(rec.clients, key=lambda c: c.client)
    assert [c.download_end_s for c in rows] == [2.0, 1.5]
    assert [c.upload_end_s for c in rows] == [4.0, 4.0]
    assert [c.status for c in rows] == ["surplus", "completed"]


def test_finishes_within_done_s_end_on_one_timer():
    # From the suite's own generator (seed 40198, found by review): two uploads at their caps whose last bits
    # are 4e-16 s apart. FairLink ends both on one timer (clock.due) in start order; so must the kernel.
    rng = np.random.default_rng(40198)
    inp = random_inputs(rng, contended=True)
    both(inp, int(rng.integers(1000)))


def test_a_cut_mid_transfer_counts_the_shared_bits_moved():
    # Four EXACT clients, K = 1, on a server that sends at 4 Mbit/s (4 x 1 Mbit/s downloads fit: t_d = 1) and
    # receives at 1 Mbit/s. Client 0 computes 2 steps (t_c = 2), the others 4 (t_c = 3). Client 0 uploads alone
    # at its 0.5 Mbit/s cap from 2 to 3 (0.5 Mbit moved). From 3, four flows capped at 0.5 want 2 Mbit/s of 1:
    # 0.25 each. Client 0's last 0.5 Mbit take 2 s: it lands at 5, which closes the round (K = 1). The others,
    # cut in their uploads, moved 2 s x 0.25 Mbit/s = 0.5 Mbit each.
    pop = [client(0, EXACT, steps=2)] + [client(i, EXACT, steps=4) for i in range(1, 4)]
    srv = server(LinkSpec("srv", 1e6, 4e6, 0.0))  # (a server's downlink is what it receives: the uploads)
    rec = both(inputs(pop, srv=srv, k=1, selected=4), 0)
    rows = sorted(rec.clients, key=lambda c: c.client)
    assert rows[0].status == "completed" and rows[0].upload_end_s == pytest.approx(5.0)
    assert [c.status for c in rows[1:]] == ["surplus"] * 3
    assert [c.bits_up for c in rows[1:]] == pytest.approx([0.5e6] * 3)
    assert [c.end_s for c in rows[1:]] == pytest.approx([5.0] * 3)


def test_chunks_handed_to_a_sink_are_the_same():
    pop = [client(i, EXACT, steps=1 + i % 3) for i in range(10)]
    inp = inputs(pop, k=3, selected=4, rounds=9, dropout_prob=0.3)
    seen = {}
    for kernel in ("simpy", "auto"):
        chunks = []
        Engine(inp, 4, client_sink=chunks.append, chunk_rows=7, kernel=kernel).run()
        seen[kernel] = chunks
    assert [len(c["round"]) for c in seen["auto"]] == [7] * 5 + [1]  # 36 rows in chunks of 7
    assert len(seen["simpy"]) == len(seen["auto"])
    values = lambda col: col.tolist() if isinstance(col, np.ndarray) else col  # noqa: E731
    for a, b in zip(seen["simpy"], seen["auto"]):
        assert list(a) == list(b)
        for f in a:
            assert len(a[f]) == len(b[f]) and all(_same(x, y) for x, y in zip(values(a[f]), values(b[f]))), f
            if isinstance(b[f], np.ndarray):  # what pandas and pyarrow read as int64 or float64, as from lists
                assert b[f].dtype in (np.int64, np.float64), f


# -- random scenarios ------------------------------------------------------------------------------------

def random_inputs(rng: np.random.Generator, contended: bool = False) -> SimInputs:
    """A small random synchronous run that no shared link can bind: groups with their own links, latencies,
    steps, powers and cells; members with their own speeds, rates and latencies; per-round speed draws;
    dropout; deadlines that often fall on an instant some phase ends; over-selection; carbon; FLoRA stacks;
    availability traces and on/off periods. `contended`: a server link of 1 to 3 Mbit/s that the clients'
    0.25 to 4 Mbit/s links share, and cells of 0.5 to 2 Mbit/s under it."""
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    n_groups = int(rng.integers(1, 4))
    cells = {"c1": (1e12, 1e12)} if rng.random() < 0.3 else {}
    if contended and cells:
        cells = {"c1": (pick([0.5e6, 1e6, 2e6]), pick([0.5e6, 1e6, 2e6]))}
        if rng.random() < 0.5:
            cells["c2"] = (pick([0.5e6, 1e6, 1e12]), pick([0.5e6, 1e12]))
    groups = []
    size = int(rng.integers(1, 14))
    group = np.sort(rng.integers(0, n_groups, size)).astype(np.int32)
    for gi in range(n_groups):
        availability = AlwaysSpec()
        members = int(np.count_nonzero(group == gi))
        if rng.random() < 0.25 and members:  # intervals that end on phase ends, mid-phase, between rounds
            rows = int(rng.integers(1, 3 * members + 1))
            start = rng.choice([0.0, 0.0, 1.0, 2.5, 6.0], rows)
            availability = TraceSpec(rng.integers(0, members, rows), start,
                                     start + rng.choice([1.0, 2.0, 3.0, 4.0, 4.7, 50.0], rows))
        elif rng.random() < 0.1 and members:
            availability = OnOffSpec(mean_on_s=pick([3.0, 20.0]), mean_off_s=pick([2.0, 10.0]))
        link = LinkSpec(f"l{gi}", pick([1e6, 2e6, 0.5e6, 4e6]), pick([0.5e6, 1e6, 0.25e6]), pick([0.0, 0.0, 0.1, 0.05]),
                        pick([0.0, 2e-6]), pick([0.0, 1e-6]))
        groups.append(GroupSpec(
            f"dev{gi % 2}", link, pick([0.5, 0.25, 0.3]), pick([10.0, 0.0]), pick([2.0, 0.5]),
            cell=(pick(list(cells)) if cells and rng.random() < 0.5 else None),
            trainable_params=pick([31250, 62500]), bits_per_transfer=pick([1_000_000, 500_000]),
            speed_round=Spread(0.3) if rng.random() < 0.2 else None,
            dropout_prob=pick([None, None, 0.0, 0.4]), availability=availability))
    per_member = {}
    if rng.random() < 0.3:
        per_member["speed"] = rng.choice([0.5, 1.0, 2.0], size)
    if rng.random() < 0.3:
        per_member["downlink_bps"] = rng.choice([1e6, 2e6], size)
        per_member["uplink_bps"] = rng.choice([1e6, 0.5e6], size)
    if rng.random() < 0.2:
        per_member["latency_s"] = rng.choice([0.0, 0.1], size)
    pop = Population(group, rng.integers(1, 4, size).astype(np.int32), **per_member)
    srv_bps = (pick([1e6, 2e6, 3e6]), pick([1e6, 2e6, 3e6])) if contended else (1e12, 1e12)
    srv = ServerSpec("srv", LinkSpec("s", *srv_bps, pick([0.0, 0.01])), 20.0, 100.0, pick([31250.0, 1e5]))
    selected = int(rng.integers(1, size + 1))
    k = int(rng.integers(1, selected + 1))
    kw = {}
    if rng.random() < 0.4:
        kw["dropout_prob"] = pick([0.2, 0.5, 1.0])
    if rng.random() < 0.3:
        kw["carbon"] = CarbonCurve(np.array([0.0, 3.0, 7.0]), np.array([100.0, 300.0, 50.0]), 0.0)
        kw["carbon_shifts_s"] = (1.0, 3600.0)
    elif rng.random() < 0.5:
        kw["carbon"] = CarbonCurve.flat(400.0)
    if rng.random() < 0.3:
        kw["stacked_download"] = True
    if rng.random() < 0.3:
        kw["framing_factor"], kw["per_transfer_s"] = 1.25, 0.05
    if rng.random() < 0.2:
        kw["selection"] = SpeedSelection(target_s=4.0, explore=0.2, alpha=2.0)
    deadline = pick([None, None, 2.0, 3.0, 4.0, 4.7, 5.0, 10.0])
    return SimInputs(tuple(groups), pop, srv, k, selected, int(rng.integers(1, 7)), cells=cells,
                     round_policy=SyncSpec(deadline), **kw)


def test_random_contended_scenarios_give_the_same_records():
    # the same random runs on a server link that binds: every status and count the same, floats to residue
    rng = np.random.default_rng(20261207)
    statuses = set()
    for _ in range(1000):
        inp = random_inputs(rng, contended=True)
        rec = both(inp, int(rng.integers(1000)))
        statuses |= set(rec.clients.status_counts)
    assert {"completed", "dropped", "late", "surplus", "offline"} <= statuses


def scaled_up(inp: SimInputs, rng: np.random.Generator) -> SimInputs:
    """`inp` with 20 to 300 members, each with its own lognormal rates and speed (each half the time), always
    online, and a random K of a random selection: many flows on a link at once."""
    import dataclasses

    size = int(rng.integers(20, 300))
    g = np.sort(rng.integers(0, len(inp.groups), size)).astype(np.int32)
    pop = Population(g, rng.integers(1, 5, size).astype(np.int32),
                     downlink_bps=rng.lognormal(np.log(1e6), 0.5, size) if rng.random() < 0.5 else None,
                     uplink_bps=rng.lognormal(np.log(0.5e6), 0.5, size) if rng.random() < 0.5 else None,
                     speed=rng.choice([0.5, 1.0, 2.0], size) if rng.random() < 0.5 else None)
    selected = int(rng.integers(1, size + 1))
    groups = tuple(dataclasses.replace(gr, availability=AlwaysSpec()) for gr in inp.groups)
    return dataclasses.replace(inp, groups=groups, population=pop, clients_selected=selected,
                               clients_per_round=int(rng.integers(1, selected + 1)))


def test_random_contended_fleets_of_hundreds_give_the_same_records():
    rng = np.random.default_rng(20261208)
    for _ in range(200):
        inp = scaled_up(random_inputs(rng, contended=True), rng)
        both(inp, int(rng.integers(1000)))


@pytest.mark.parametrize("block_rows", [65_536, 8])
def test_random_scenarios_give_the_same_records(block_rows, monkeypatch):
    # blocks of rounds as long as a run, and of one to a few rounds (a start carried from block to block)
    import simfl.sim.arrays

    monkeypatch.setattr(simfl.sim.arrays, "BLOCK_ROWS", block_rows)
    rng = np.random.default_rng(20261206 + block_rows)
    statuses = set()
    for _ in range(400):
        inp = random_inputs(rng)
        rec = both(inp, int(rng.integers(1000)))
        statuses |= set(rec.clients.status_counts)
    # the scenarios reached every status the kernel writes
    assert {"completed", "dropped", "late", "surplus", "offline"} <= statuses


# -- shipped scenarios -----------------------------------------------------------------------------------

def _shipped():
    out = []
    for p in sorted((REPO / "scenarios").rglob("*.yaml")):
        data = yaml.safe_load(p.read_text())
        if isinstance(data, dict) and not ({"axes", "choose"} & set(data)):
            out.append(p)
    return out


@pytest.mark.parametrize("path", _shipped(), ids=lambda p: str(p.relative_to(REPO / "scenarios")))
def test_shipped_scenarios_give_the_same_records(path):
    import simfl
    from simfl.build import build

    sc = simfl.load_scenario(path)
    # at most 30 rounds: enough to cross several rounds' starts, short enough for SimPy on the big fleets
    sc = sc.model_copy(update={"federation": sc.federation.model_copy(
        update={"rounds": min(30, sc.federation.rounds)})})
    streams = Streams.from_seed(sc.seed)
    inp = build(sc, streams).inputs
    from simfl.sim.arrays import unsupported
    from simfl.sim.async_heap import unsupported as async_unsupported

    probe = Engine(inp, copy.deepcopy(streams))
    if inp.asynchronous is not None:
        expect = "heap" if async_unsupported(probe) is None else "simpy"
    else:
        expect = "arrays" if unsupported(probe) is None else "simpy"
    both(inp, streams, expect=expect)
