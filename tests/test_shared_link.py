"""shared_link.share (the array kernel's max-min link) by hand, and against a plain progressive-filling
simulation on random rounds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simfl.sim.fairshare import max_min_rates
from simfl.sim.shared_link import share

INF = math.inf
M = 1e6


def arr(*xs):
    return np.array(xs, dtype=float)


def test_capped_flow_keeps_its_cap_and_the_others_share_the_rest():
    # C = 12 Mbit/s, caps 2, 8, 10: L = 12/3 = 4 is above 2, so the 2 is capped; L = (12 - 2)/2 = 5 <= 8.
    # 10 Mbit each: the two at 5 Mbit/s finish at 2 s; the capped one has moved 4 Mbit, the 6 left at its
    # cap of 2 take 3 s more: 5 s.
    finish, moved = share(arr(0, 0, 0), arr(10, 10, 10) * M, arr(2, 8, 10) * M, arr(INF, INF, INF), 12 * M)
    assert finish.tolist() == pytest.approx([5.0, 2.0, 2.0], abs=1e-12)
    assert moved.tolist() == [10 * M] * 3


def test_a_stopped_flow_frees_its_share():
    # Two flows of 10 Mbit at cap 10 on 10 Mbit/s: 5 each. The second stops at 1 s with 5 Mbit moved; the
    # first has 5 left, alone at 10 Mbit/s: done at 1.5 s.
    finish, moved = share(arr(0, 0), arr(10, 10) * M, arr(10, 10) * M, arr(INF, 1.0), 10 * M)
    assert finish[0] == pytest.approx(1.5, abs=1e-12) and finish[1] == INF
    assert moved.tolist() == pytest.approx([10 * M, 5 * M])


def test_a_late_arrival_takes_its_share_from_then_on():
    # A (20 Mbit) alone at 10 Mbit/s for 1 s: 10 moved. B (5 Mbit) joins at 1 s: 5 each; B is done at 2 s,
    # A has 15 moved then and its last 5 at 10 Mbit/s take 0.5 s: 2.5 s.
    finish, moved = share(arr(0, 1), arr(20, 5) * M, arr(10, 10) * M, arr(INF, INF), 10 * M)
    assert finish.tolist() == pytest.approx([2.5, 2.0], abs=1e-12)
    assert moved.tolist() == [20 * M, 5 * M]


def test_until_gives_the_bits_moved_so_far():
    # The first example at 1 s: 2, 5 and 5 Mbit moved, none done; at 3 s the two are done and the capped one
    # has moved 6.
    finish, moved = share(arr(0, 0, 0), arr(10, 10, 10) * M, arr(2, 8, 10) * M, arr(INF, INF, INF), 12 * M,
                          until=1.0)
    assert finish.tolist() == [INF] * 3
    assert moved.tolist() == pytest.approx([2 * M, 5 * M, 5 * M])
    finish, moved = share(arr(0, 0, 0), arr(10, 10, 10) * M, arr(2, 8, 10) * M, arr(INF, INF, INF), 12 * M,
                          until=3.0)
    assert finish.tolist() == pytest.approx([INF, 2.0, 2.0])
    assert moved.tolist() == pytest.approx([6 * M, 10 * M, 10 * M])


def test_stopped_during_its_latency_never_joins():
    # The second flow would join at 0.5 s but stops at 0.5 s (a stop comes first in its instant): it moves
    # nothing, and the first runs alone at its cap: 10 Mbit at 10 Mbit/s.
    finish, moved = share(arr(0, 0.5), arr(10, 10) * M, arr(10, 10) * M, arr(INF, 0.5), 10 * M)
    assert finish.tolist() == [1.0, INF]
    assert moved.tolist() == [10 * M, 0.0]


def test_a_stop_in_the_instant_of_the_last_bit_comes_first():
    # Two flows of 10 Mbit at 5 Mbit/s each end at 2 s; the second is stopped at 2 s: stopped, with all its
    # bits moved, while the first is done. The same alone at its cap (10 Mbit at 10 Mbit/s ends at 1 s).
    finish, moved = share(arr(0, 0), arr(10, 10) * M, arr(10, 10) * M, arr(INF, 2.0), 10 * M)
    assert finish.tolist() == [2.0, INF]
    assert moved.tolist() == [10 * M, 10 * M]
    finish, moved = share(arr(0), arr(10) * M, arr(10) * M, arr(1.0), 100 * M)
    assert finish.tolist() == [INF] and moved.tolist() == [10 * M]


def test_cells_fill_first_then_the_link():
    # Link 3 Mbit/s; flows 0 and 1 in a cell of 1 Mbit/s, flow 2 in none; caps 2 Mbit/s, 2 Mbit each. The cell
    # allows 0.5 each, the link then gives flow 2 its cap of 2 (0.5 + 0.5 + 2 = 3). Flow 2 is done at 1 s;
    # the cell's two stay at 0.5 (the cell binds): 4 s.
    finish, moved = share(arr(0, 0, 0), arr(2, 2, 2) * M, arr(2, 2, 2) * M, arr(INF, INF, INF), 3 * M,
                          cell=np.array([0, 0, -1]), cell_capacity_bps=arr(1) * M)
    assert finish.tolist() == pytest.approx([4.0, 4.0, 1.0], abs=1e-12)
    # a cell that does not bind changes nothing: the link's level, 1 each, and 2 s for all
    finish, _ = share(arr(0, 0, 0), arr(2, 2, 2) * M, arr(2, 2, 2) * M, arr(INF, INF, INF), 3 * M,
                      cell=np.array([0, 0, -1]), cell_capacity_bps=arr(10) * M)
    assert finish.tolist() == pytest.approx([2.0, 2.0, 2.0], abs=1e-12)


def test_cells_and_the_link_both_bind():
    # Link 2 Mbit/s; flows 0 and 1 in a cell of 0.5 Mbit/s, flows 2 and 3 in none; caps 2 Mbit/s, 1.5 Mbit each.
    # The cell allows 0.25 each; the link then has 2 - 0.5 = 1.5 for the other two: 0.75 each (ignoring the
    # cell, all four would get 0.5). Flows 2 and 3 are done at 2 s; by then the cell's two have moved 0.5, and
    # their last 1.0 at 0.25 (the cell still binds; the link no longer can) take 4 s more: 6 s.
    finish, moved = share(arr(0, 0, 0, 0), arr(1.5, 1.5, 1.5, 1.5) * M, arr(2, 2, 2, 2) * M, arr(INF, INF, INF, INF),
                          2 * M, cell=np.array([0, 0, -1, -1]), cell_capacity_bps=arr(0.5) * M)
    assert finish.tolist() == pytest.approx([6.0, 6.0, 2.0, 2.0], abs=1e-12)
    # stopped at 4 s: the cell's two have moved 0.5 + 2 x 0.25 = 1.0
    _, moved = share(arr(0, 0, 0, 0), arr(1.5, 1.5, 1.5, 1.5) * M, arr(2, 2, 2, 2) * M, arr(4.0, INF, INF, INF),
                     2 * M, cell=np.array([0, 0, -1, -1]), cell_capacity_bps=arr(0.5) * M)
    assert moved[0] == pytest.approx(1.0 * M)


def test_finishes_within_done_s_end_together():
    # Two flows at their caps whose last bits are 4e-16 s apart (found by review): FairLink's one timer ends
    # both at the earlier instant (clock.due), so the closed form does too; 2e-9 s apart, they end apart.
    f, _ = share(arr(1.77, 2.7699999999999996), arr(5e5, 5e5), arr(2.5e5, 5e5), arr(INF, INF), 3e6)
    assert f.tolist() == [3.7699999999999996, 3.7699999999999996]
    f, _ = share(arr(0, 2e-9), arr(1, 1) * M, arr(1, 1) * M, arr(INF, INF), 3 * M)
    assert f.tolist() == [1.0, 1.0 + 2e-9]
    # with cells, SimPy's general flow network gives each flow at its cap its own timer: no merging
    f, _ = share(arr(1.77, 2.7699999999999996), arr(5e5, 5e5), arr(2.5e5, 5e5), arr(INF, INF), 3e6,
                 one_timer=False)
    assert f.tolist() == [3.77, 3.7699999999999996]


def test_a_small_cell_keeps_its_precision_beside_a_huge_one():
    # Caps 1e12 in cell 0 (10 Tbit/s), and 3.1234567, 5.7654321, 7.3 Mbit/s in a 10.1 Mbit/s cell, under a
    # link that does not bind: the small cell's level is (10.1 - 3.1234567) / 2 = 3.48827165 Mbit/s, to the
    # last digits (a running sum across cells lost them). (Found by review.)
    from simfl.sim.shared_link import _rates_in_cells

    caps = arr(3.1234567e6, 5.7654321e6, 7.3e6, 1e12)
    rate = _rates_in_cells(caps, np.array([1, 1, 1, 0]), 1e15, arr(1e13, 10.1e6))
    assert rate.tolist() == [3.1234567e6, (10.1e6 - 3.1234567e6) / 2, (10.1e6 - 3.1234567e6) / 2, 1e12]


def test_at_caps_when_nothing_can_bind():
    # caps 1 + 2 + 3 = 6 <= 10 Mbit/s: each at its cap from its arrival
    finish, moved = share(arr(0, 1, 2), arr(3, 4, 3) * M, arr(1, 2, 3) * M, arr(INF, INF, 2.5), 10 * M)
    assert finish.tolist() == [3.0, 3.0, INF]
    assert moved.tolist() == [3 * M, 4 * M, 1.5 * M]


# -- random rounds against a plain simulation ---------------------------------------------------------------

def reference(arrive, bits, cap, stop, capacity, until=INF, cell=None, cell_capacity=()):
    """Progressive filling recomputed at every event, one flow at a time (fairshare.max_min_rates), each flow
    over the link and its cell."""
    res = [("s",) if cell is None or cell[i] < 0 else ("s", int(cell[i])) for i in range(len(arrive))]
    caps = {"s": capacity, **{j: float(c) for j, c in enumerate(cell_capacity)}}
    n = len(arrive)
    finish, moved = [INF] * n, [0.0] * n
    rem = [float(b) for b in bits]
    active: list[int] = []
    joining = sorted((i for i in range(n) if arrive[i] < stop[i] and arrive[i] < until), key=lambda i: arrive[i])
    t = arrive[joining[0]] if joining else INF
    while joining or active:
        while joining and arrive[joining[0]] <= t:
            active.append(joining.pop(0))
        if not active:
            t = arrive[joining[0]]
            if t >= until:
                break
            continue
        rates = max_min_rates([cap[i] for i in active], [res[i] for i in active], caps)
        t_next = min([t + rem[i] / r for i, r in zip(active, rates)] + [stop[i] for i in active]
                     + ([arrive[joining[0]]] if joining else []) + [until])
        for i, r in zip(active, rates):
            rem[i] = max(0.0, rem[i] - r * (t_next - t))
        t = t_next
        for i, r in list(zip(active, rates)):
            if stop[i] <= t:
                moved[i] = bits[i] - rem[i]
                active.remove(i)
            elif rem[i] / r <= 1e-9:
                finish[i], moved[i] = t, bits[i]
                active.remove(i)
        if t >= until:
            for i in active:
                moved[i] = bits[i] - rem[i]
            break
    return finish, moved


@pytest.mark.parametrize("seed", range(8))
def test_random_rounds_match_progressive_filling(seed):
    rng = np.random.default_rng(seed)
    for _ in range(150):
        n = int(rng.integers(1, 12))
        same = rng.random() < 0.4  # identical flows arriving together, as a round's downloads
        arrive = np.zeros(n) if same else rng.choice([0.0, 0.0, 0.5, 1.0, 1.7, 3.0], n)
        bits = np.full(n, 4e6) if same else rng.choice([1e6, 2e6, 4e6, 5e6], n)
        cap = np.full(n, 2e6) if same else rng.choice([0.5e6, 1e6, 2e6, 4e6, 8e6], n)
        stop = np.where(rng.random(n) < 0.3, rng.choice([0.2, 0.5, 1.0, 2.0, 2.5, 4.0], n), INF)
        capacity = float(rng.choice([1e6, 3e6, 5e6, 1e7, 1e9]))
        until = float(rng.choice([INF, INF, 1.0, 2.2, 6.0]))
        cell, cell_capacity = None, None
        if rng.random() < 0.5:  # one or two cells under the link, some flows in neither
            cell_capacity = rng.choice([0.5e6, 1e6, 2e6, 1e9], int(rng.integers(1, 3)))
            cell = rng.integers(-1, len(cell_capacity), n)
        got_f, got_m = share(arrive, bits, cap, stop, capacity, until, cell, cell_capacity)
        ref_f, ref_m = reference(arrive.tolist(), bits.tolist(), cap.tolist(), stop.tolist(), capacity, until,
                                 cell, () if cell_capacity is None else cell_capacity.tolist())
        for a, b in zip(got_f.tolist(), ref_f):
            assert (a == b == INF) or a == pytest.approx(b, rel=1e-12, abs=1e-9), (got_f, ref_f)
        assert got_m.tolist() == pytest.approx(ref_m, rel=1e-9, abs=1e-3)
