"""One shared link's max-min fair sharing over one round's flows, as arrays (the array kernel's FairLink).

In a synchronous round without cells, each direction's flows cross one shared resource, the server link,
and every flow of the round is known before it starts: its arrival (a download's start plus latency; an
upload's is known once the downloads are), its bits, its own cap, and the instant its client stops
(a dropout or the end of its availability; inf if none). Nothing outside the round touches the link: a
round's flows are all stopped when it closes, before the next round starts. So the link's history is
a function of those arrays, and `share` computes it event by event, each event over arrays:

- between events, with active flows of caps c_1 <= ... <= c_n, max-min fairness gives the k
  smallest-capped their caps and the others the level L = (C - c_1 - ... - c_k) / (n - k), with
  c_k <= L < c_(k+1) (the same rule as FairLink);
- the next event is the earliest of: a flow's last bit (its remaining bits at its rate), an arrival,
  a stop; at one instant a stop comes first (its timer was made at the round's start, before the link's),
  then arrivals, then the flows with at most DONE_S left are done (clock.due, as FairLink judges them);
- once every flow still to run fits the link at its own cap (the caps of the active flows and of those
  still to arrive sum to at most C), none can bind again: each finishes at its own cap, in closed form;
- with cells, once the link cannot bind again (what the cells can carry, with the flows in no cell, fits
  it), each cell shares its own capacity alone: `share` again, one cell at a time.

A round of identical flows is two events (they arrive together and finish together); flows with their
own caps and the same bits are three (the level's flows finish together, the capped then run at their
caps). Arrivals at many distinct instants on a link that binds cost an event each, O(n) apiece.

Flows whose last bits fall within DONE_S of one another end together at the first of those instants, as
FairLink's one timer ends them. The result is exact max-min sharing up to float residue, as FairLink's
is: instants within DONE_S of SimPy's (tests/test_arrays.py compares the engine's records on random
contended rounds, and tests/test_shared_link.py checks share against progressive filling and by hand).
"""

from __future__ import annotations

import numpy as np

from simfl.sim.clock import DONE_S

_INF = float("inf")


def share(arrive: np.ndarray, bits: np.ndarray, cap: np.ndarray, stop: np.ndarray, capacity_bps: float,
          until: float = _INF, cell: np.ndarray | None = None,
          cell_capacity_bps: np.ndarray | None = None, one_timer: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Flows over one link of `capacity_bps`: flow i joins at `arrive[i]` (inf: never) with `bits[i]` to move
    at most at `cap[i]`, and is stopped at `stop[i]` (inf: never) if not done by then. Returns (finish,
    moved): the instant each flow's last bit arrived (inf if it was stopped first, never joined, or was not
    done by `until`), and the bits it had moved when it finished, was stopped, or at `until`.

    `cell`: each flow's cell (an index into `cell_capacity_bps`; -1: none). A flow in a cell crosses the cell
    and then the link, which every flow crosses. Cells are disjoint and all under the link, so max-min
    fairness fills each cell's water level first, and the link's over the rates the cells allow (a flow held
    below the link's level by its cell is held by its cell alone: the cell's other flows are held below its
    level by their own caps, or at the link's level, which frees nothing for it).

    `one_timer`: flows at their caps whose last bits fall within DONE_S end together at the first, as
    FairLink's one timer ends them (SimPy without cells). False: each at its own instant, as the per-flow
    timers of SimPy's general flow network do while nothing is oversubscribed (SimPy with cells). While the
    link binds, both judge flows done within DONE_S of an event, and so does this."""
    m = len(arrive)
    finish = np.full(m, _INF)
    moved = np.zeros(m)
    joins = (arrive < stop) & (arrive < until)  # stopped during its latency (or at its start): it never joins
    if not joins.any():
        return finish, moved
    rem = np.where(joins, bits, 0.0).astype(float)
    if cell is not None and not np.any(cell >= 0):
        cell = None
    by_cap = np.argsort(cap, kind="stable")  # the caps' order, fixed for the round
    # arrivals in time order, and the caps of those still to come (from each position on)
    incoming = np.flatnonzero(joins)
    incoming = incoming[np.argsort(arrive[incoming], kind="stable")]
    arrive_at = arrive[incoming]
    caps_to_come = np.concatenate([np.cumsum(cap[incoming][::-1])[::-1], [0.0]])
    active = np.zeros(m, dtype=bool)
    ptr = 0
    t = float(arrive_at[0])
    n_in = len(incoming)
    while True:
        if ptr < n_in and arrive_at[ptr] <= t:  # arrivals now
            upto = int(np.searchsorted(arrive_at, t, side="right"))
            active[incoming[ptr:upto]] = True
            ptr = upto
        act = by_cap[active[by_cap]]  # the active flows, by cap
        if not len(act):
            if ptr == n_in:
                break
            t = float(arrive_at[ptr])
            if t >= until:
                break
            continue
        c = cap[act]
        if c.sum() + caps_to_come[ptr] <= capacity_bps and (  # nothing can bind again: every flow at its cap
                cell is None or _cells_fit(act, incoming[ptr:], cap, cell, cell_capacity_bps)):
            _at_caps(t, act, incoming[ptr:], arrive, rem, cap, stop, bits, until, finish, moved, one_timer)
            return finish, moved
        if cell is not None and _link_free(act, incoming[ptr:], cap, cell, cell_capacity_bps, capacity_bps):
            _cells_apart(t, act, incoming[ptr:], arrive, rem, cap, stop, bits, until, cell, cell_capacity_bps,
                         finish, moved)
            return finish, moved
        rate = _rates(c, capacity_bps) if cell is None else _rates_in_cells(c, cell[act], capacity_bps,
                                                                             cell_capacity_bps)
        left = rem[act] / rate
        t_next = min(t + float(left.min()), float(arrive_at[ptr]) if ptr < n_in else _INF,
                     float(stop[act].min()), until)
        rem[act] = np.maximum(0.0, rem[act] - rate * (t_next - t))
        t = t_next
        stopped = stop[act] <= t  # a stop runs before the link's own event of its instant
        if stopped.any():
            s = act[stopped]
            moved[s] = bits[s] - rem[s]
            active[s] = False
        done = ~stopped & ((rem[act] / rate <= DONE_S) | (t + rem[act] / rate <= t))  # clock.due
        if done.any():
            d = act[done]
            finish[d], moved[d] = t, bits[d]
            active[d] = False
        if t >= until:
            a = np.flatnonzero(active)
            moved[a] = bits[a] - rem[a]
            break
    return finish, moved


def _rates(c: np.ndarray, capacity_bps: float) -> np.ndarray:
    """Max-min rates of flows with caps `c` (ascending) on one link: the smallest k at their caps, the rest at
    the level L = (C - c_1 - ... - c_k) / (n - k), k the first index whose cap is above its level."""
    n = len(c)
    before = np.concatenate([[0.0], np.cumsum(c)[:-1]])  # the caps below each position
    level = (capacity_bps - before) / (n - np.arange(n))
    over = c > level
    if not over.any():
        return c.copy()
    k = int(over.argmax())
    rate = c.copy()
    rate[k:] = level[k]
    return rate


def _rates_in_cells(c: np.ndarray, cells: np.ndarray, capacity_bps: float,
                    cell_capacity_bps: np.ndarray) -> np.ndarray:
    """Max-min rates of flows with caps `c` (ascending) in `cells` (-1: none) under one link: each cell's water
    level over its flows' caps (_rates, every cell at once as segments of one array), then the link's over the
    rates the cells allow."""
    allowed = c.copy()
    inside = np.flatnonzero(cells >= 0)
    if len(inside):
        o = inside[np.argsort(cells[inside], kind="stable")]  # by cell, caps ascending within each
        cc, cl = c[o], cells[o]
        m = len(o)
        starts = np.flatnonzero(np.concatenate([[True], cl[1:] != cl[:-1]]))
        sizes = np.diff(np.append(starts, m))
        seg = np.repeat(np.arange(len(starts)), sizes)
        rank = np.arange(m) - starts[seg]  # position within its cell
        # the caps below each flow in its cell, summed within the cell alone (a running sum across cells would
        # lose a small cell's caps to a large cell's before it): the cells as rows of one padded matrix
        rows = np.zeros((len(starts), int(sizes.max()) + 1))
        rows[seg, rank + 1] = cc
        before = np.cumsum(rows, axis=1)[seg, rank]
        level = (cell_capacity_bps[cl] - before) / (sizes[seg] - rank)
        first = np.minimum.reduceat(np.where(cc > level, rank, m), starts)  # each cell's k (m: all at caps)
        at = level[np.minimum(starts + first, m - 1)]
        allowed[o] = np.where(rank >= first[seg], at[seg], cc)
    order = np.argsort(allowed, kind="stable")
    rate = np.empty_like(allowed)
    rate[order] = _rates(allowed[order], capacity_bps)
    return rate


def _cells_fit(act, to_come, cap, cell, cell_capacity_bps) -> bool:
    """Every cell's active and incoming flows fit it at their own caps."""
    idx = np.concatenate([act, to_come])
    inside = cell[idx] >= 0
    demand = np.bincount(cell[idx][inside], weights=cap[idx][inside], minlength=len(cell_capacity_bps))
    return bool(np.all(demand <= cell_capacity_bps))


def _link_free(act, to_come, cap, cell, cell_capacity_bps, capacity_bps) -> bool:
    """The link cannot bind again: what the cells can carry of their active and incoming flows' caps (each at
    most its capacity), with the caps of the flows in no cell, fits it."""
    idx = np.concatenate([act, to_come])
    inside = cell[idx] >= 0
    demand = np.bincount(cell[idx][inside], weights=cap[idx][inside], minlength=len(cell_capacity_bps))
    return float(np.minimum(demand, cell_capacity_bps).sum() + cap[idx][~inside].sum()) <= capacity_bps


def _cells_apart(t, act, to_come, arrive, rem, cap, stop, bits, until, cell, cell_capacity_bps, finish,
                 moved) -> None:
    """The link cannot bind again, so each cell shares its own capacity alone from t on (share, one link), and
    the flows in no cell run at their caps: every flow's finish, or the bits it moved when stopped or at
    `until`."""
    idx = np.concatenate([act, to_come])
    where = cell[idx]
    out = idx[where < 0]
    if len(out):
        _at_caps(t, out, out[:0], arrive, rem, cap, stop, bits, until, finish, moved, one_timer=False)
    for j in np.unique(where[where >= 0]).tolist():
        sub = idx[where == j]
        # the active from now with what they have left, the incoming at their arrival
        f, m = share(np.maximum(arrive[sub], t), rem[sub], cap[sub], stop[sub], float(cell_capacity_bps[j]), until,
                     one_timer=False)
        finish[sub] = f
        moved[sub] = (bits[sub] - rem[sub]) + m


def _as_one_timer(fin: np.ndarray) -> np.ndarray:
    """Finish instants as FairLink's one timer gives them: it fires at the earliest finish and ends every flow
    with at most DONE_S left (clock.due), so finishes within DONE_S after one that ends a flow end with it."""
    if len(fin) < 2:
        return fin
    order = np.argsort(fin, kind="stable")
    f = fin[order]
    near = np.flatnonzero(np.diff(f) <= DONE_S)
    if not len(near):
        return fin
    f = f.copy()
    i = int(near[0])
    while i < len(f):
        t = f[i]
        j = int(np.searchsorted(f, t + DONE_S, side="right"))  # (t + DONE_S == t past 2**23 s: only ties)
        f[i:j] = t
        rest = near[near >= j]
        if not len(rest):
            break
        i = int(rest[0])
    out = np.empty_like(fin)
    out[order] = f
    return out


def _at_caps(t, act, to_come, arrive, rem, cap, stop, bits, until, finish, moved, one_timer=True) -> None:
    """Every flow still on the link or to come runs at its own cap from max(t, its arrival): its finish, or
    the bits it moved when stopped or at `until`."""
    idx = np.concatenate([act, to_come])
    begin = np.maximum(t, arrive[idx])
    c = cap[idx]
    fin = begin + rem[idx] / c
    stp = stop[idx]
    # stopped first (a stop in the instant of its last bit comes first), or not done by `until`
    cut = (stp <= fin) | (until < fin)
    end = np.minimum(stp, until)
    if one_timer:
        fin[~cut] = _as_one_timer(fin[~cut])
    finish[idx[~cut]] = fin[~cut]
    moved[idx[~cut]] = bits[idx[~cut]]
    ci = idx[cut]
    moved[ci] = bits[ci] - np.maximum(0.0, rem[ci] - c[cut] * np.maximum(0.0, end[cut] - begin[cut]))
