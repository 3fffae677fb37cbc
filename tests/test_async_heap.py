"""Buffered asynchronous aggregation on the event heap (simfl/sim/async_heap.py) against SimPy: the same records,
bit for bit, on random runs and on the ties worked out by hand."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from simfl.sim.carbon import CarbonCurve
from simfl.sim.engine import Engine
from simfl.sim.inputs import AsyncSpec, GroupSpec, LinkSpec, Population, ServerSpec, SimInputs
from simfl.sim.selection import SpeedSelection
from simfl.sim.streams import Streams
from simfl.sim.variation import Spread
from tests.helpers import client, inputs
from tests.test_arrays import assert_same_records

# download 1 s, compute 2 x 0.5 = 1 s, upload 2 s, no latency: every job takes 4 s (test_arrays.EXACT)
EXACT = LinkSpec("exact", 1e6, 0.5e6, 0.0, 2e-6, 1e-6)


def both(inp: SimInputs, seed: int, expect: str = "heap"):
    streams = Streams.from_seed(seed)
    a = Engine(inp, copy.deepcopy(streams), kernel="simpy").run()
    fast = Engine(inp, streams)
    b = fast.run()
    assert fast.ran_on == expect
    assert_same_records(a, b)
    return b


def test_uploads_of_one_instant_fill_the_buffer_in_start_order():
    # 3 identical jobs in flight, buffer 2, aggregations of 2 x 31,250 params / 31,250 params/s = 2 s.
    # t = 4: the three uploads land in start order (staleness 0). The first two fill the buffer and the
    # aggregation starts (a process: its first step runs before the third upload, so that one sees it running);
    # the third waits in the buffer. Each ending job starts a new one at once, on version 0.
    # t = 6: aggregation 1 ends (version 1); the buffer holds 1: nothing to aggregate.
    # t = 8: the jobs started at 4 land, staleness 1 - 0 = 1; the first completes the buffer with the one
    # waiting since 4: aggregation 2 runs to t = 10 and ends the run. The jobs in flight then stop as surplus.
    pop = [client(i, EXACT, steps=2, step_time_s=0.5) for i in range(6)]
    rec = both(inputs(pop, k=2, selected=3, rounds=2, asynchronous=AsyncSpec(3, buffer_size=2)), 0)
    assert [(r.start_s, r.end_s, r.clients_completed) for r in rec.rounds] == [(0.0, 6.0, 2), (6.0, 10.0, 2)]
    aggregated = [c.staleness for c in rec.clients if c.version_aggregated == 2]
    assert aggregated == [0.0, 1.0]


@pytest.mark.parametrize("seed", range(3))
def test_random_buffered_runs_give_the_same_records(seed):
    rng = np.random.default_rng(7000 + seed)
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    for _ in range(120):
        n_groups = int(rng.integers(1, 3))
        groups = tuple(GroupSpec(
            f"dev{gi}", LinkSpec(f"l{gi}", pick([1e6, 2e6, 0.5e6]), pick([0.5e6, 1e6]), pick([0.0, 0.1]),
                                 pick([0.0, 2e-6]), 1e-6),
            pick([0.5, 0.25]), 10.0, 2.0, trainable_params=pick([31250, 62500]), bits_per_transfer=1_000_000,
            speed_round=Spread(0.3) if rng.random() < 0.2 else None, dropout_prob=pick([None, 0.3]))
            for gi in range(n_groups))
        size = int(rng.integers(2, 12))
        pop = Population(np.sort(rng.integers(0, n_groups, size)).astype(np.int32),
                         rng.integers(0, 4, size).astype(np.int32))  # 0 steps: a 0 s compute
        conc = int(rng.integers(1, size + 1))
        buffer = int(rng.integers(1, conc + 2))
        spec = AsyncSpec(conc, buffer_size=buffer, max_staleness=pick([None, 0, 1, 3]))
        kw = {}
        if rng.random() < 0.4:
            kw["dropout_prob"] = pick([0.2, 0.6, 1.0])
        if rng.random() < 0.3:
            kw["carbon"] = CarbonCurve(np.array([0.0, 3.0, 7.0]), np.array([100.0, 300.0, 50.0]), 0.0)
        if rng.random() < 0.2:
            kw["selection"] = SpeedSelection(target_s=4.0)
        srv = ServerSpec("srv", LinkSpec("s", 1e12, 1e12, pick([0.0, 0.01])), 20.0, 100.0, pick([31250.0, 1e9]))
        inp = SimInputs(groups, pop, srv, buffer, conc, int(rng.integers(1, 8)), round_policy=spec, **kw)
        both(inp, int(rng.integers(1000)))


def test_every_job_dropping_stops_the_run_with_its_note_on_both():
    # dropout_prob 1: no update ever reaches the buffer; after FRUITLESS_JOBS x concurrency jobs the run stops
    pop = [client(i, EXACT, steps=2, step_time_s=0.5) for i in range(4)]
    rec = both(inputs(pop, k=1, selected=2, rounds=3, dropout_prob=1.0, asynchronous=AsyncSpec(2, buffer_size=1)), 3)
    assert rec.notes and "jobs in a row ended without an update" in rec.notes[0]


def test_windows_and_binding_links_run_on_simpy():
    pop = [client(i, EXACT) for i in range(4)]
    both(inputs(pop, k=1, selected=2, rounds=2, asynchronous=AsyncSpec(2, window_s=3.0)), 0, expect="simpy")
