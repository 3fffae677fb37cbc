"""Client-rounds per second: simfl's engine against a bare SimPy loop with the same event structure.

The bare loop is the floor any SimPy FL simulator pays: per client-round one
process and three timeouts (download, compute, upload), the round waiting on
all of them. simfl does the same work plus latencies, flow bookkeeping for fair
sharing, dropout/deadline handling and one frozen record per client-round.

    python benchmarks/engine.py [--rounds-scale 1.0]

Prints one row per case, best of 5 repeats of each side, interleaved (the
machine is shared; best-of removes scheduler noise, not work). simfl is timed
on SimPy (kernel="simpy": the reference engine, which serves every case), and
also as it runs by default: the array kernel (simfl/sim/arrays.py), with a
binding server link or cells shared max-min over arrays (shared_link.py), in
the last two columns. benchmarks/peers.py compares it with APPFL's virtual clock.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import simpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simfl.sim import run  # noqa: E402
from simfl.sim.engine import Engine  # noqa: E402
from simfl.sim.inputs import AsyncSpec, GroupSpec, LinkSpec, Population, ServerSpec, SimInputs  # noqa: E402

REPEATS = 5
BITS = 22_020_096  # FLAN-T5-small LoRA adapter at 32 bit
LTE = LinkSpec("lte", 40e6, 10e6, 0.05, 76.4e-6, 19.2e-6)


def scenario_inputs(population: int, k: int, rounds: int) -> SimInputs:
    """The distinct-rates case as a user writes it: an LTE fleet group with
    `link: {distribution: lognormal, sigma: 0.5, per: client}`, the server on 10 Gbit/s."""
    import tempfile

    import yaml

    from simfl import load_scenario
    from simfl.build import build

    sc = {"name": "bench", "seed": 0, "model": {"name": "flan-t5-small"},
          "training": {"batch_size": 8, "local_steps": 2},
          "federation": {"clients_per_round": k, "rounds": rounds},
          "fleet": [{"count": population, "device": "jetson-agx-orin-64gb", "network": "lte",
                     "link": {"distribution": "lognormal", "sigma": 0.5, "per": "client"}}],
          "server": {"device": "a100-80gb", "network": "ethernet-10gbit"}}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.yaml"
        path.write_text(yaml.safe_dump(sc))
        return build(load_scenario(path)).inputs


def make_inputs(population: int, k: int, rounds: int, server_bps: float, link: str = "lte",
                concurrency: int | None = None) -> SimInputs:
    """One group on LTE or 1 Gbit links; or ("lte-varied") every client its own LTE link, both rates
    times a lognormal multiplier (median 1, sigma 0.5), drawn once per client; ("scenario") the same
    built from a scenario's fleet group. With `concurrency`: buffered async, aggregating K at a time."""
    if link == "scenario":
        return scenario_inputs(population, k, rounds)
    server = ServerSpec("a100", LinkSpec("srv", server_bps, server_bps, 0.0005), 55.0, 75.8, 8.5e10)
    base = LinkSpec("1gbit", 1e9, 1e9, 0.001, 1e-8, 1e-8) if link == "1gbit" else LTE
    groups = (GroupSpec("orin", base, 0.73, 28.1, 7.0, trainable_params=688_128, bits_per_transfer=BITS),)
    group = np.zeros(population, dtype=np.int32)
    cells = {}
    if link == "lte-cells":  # ten LTE cells of 150 Mbit/s down and 50 up, a tenth of the fleet in each
        cells = {f"cell{j}": (150e6, 50e6) for j in range(10)}
        groups = tuple(GroupSpec("orin", LTE, 0.73, 28.1, 7.0, cell=f"cell{j}", trainable_params=688_128,
                                 bits_per_transfer=BITS) for j in range(10))
        group = np.sort(np.arange(population) % 10).astype(np.int32)
    rates = {}
    if link == "lte-varied":  # per-member rates in the population arrays, one group
        m = np.random.default_rng(1).lognormal(0.0, 0.5, population)
        rates = {"downlink_bps": 40e6 * m, "uplink_bps": 10e6 * m}
    members = Population(group, np.full(population, 2, dtype=np.int32), **rates)
    if concurrency is not None:
        return SimInputs(groups, members, server, k, concurrency, rounds,
                         round_policy=AsyncSpec(concurrency, buffer_size=k))
    return SimInputs(groups, members, server, k, k, rounds, cells=cells)


def bare_simpy(population: int, k: int, rounds: int, seed: int = 0) -> None:
    """Same structure, nothing else: select, three timeouts per client, wait for all, next round."""
    env = simpy.Environment()
    rng = np.random.default_rng(seed)
    down_s, comp_s, up_s = BITS / 40e6, 1.46, BITS / 10e6  # the same event count whatever the rates

    def client():
        yield env.timeout(down_s)
        yield env.timeout(comp_s)
        yield env.timeout(up_s)

    def main():
        for _ in range(rounds):
            rng.choice(population, size=k, replace=False)
            yield env.all_of([env.process(client()) for _ in range(k)])

    env.process(main())
    env.run()


def bare_async(population: int, concurrency: int, jobs: int, seed: int = 0) -> None:
    """The async floor, the same structure as the rounds': per job a uniform draw, one process and three
    timeouts; `concurrency` in flight, each job's end starting the next, `jobs` in all."""
    env = simpy.Environment()
    rng = np.random.default_rng(seed)
    down_s, comp_s, up_s = BITS / 40e6, 1.46, BITS / 10e6
    started = [concurrency]

    def job():
        yield env.timeout(down_s)
        yield env.timeout(comp_s)
        yield env.timeout(up_s)
        if started[0] < jobs:
            started[0] += 1
            rng.integers(population)
            env.process(job())

    for _ in range(concurrency):
        rng.integers(population)
        env.process(job())
    env.run()


def best_of(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds-scale", type=float, default=1.0, help="Scale the round counts (quick runs).")
    args = ap.parse_args()
    cases = [
        # (label, population, K, rounds, server link bps, client links)
        ("1000/round, server not shared-limited", 2000, 1000, 20, 1e12, "lte"),
        ("10/round, server not shared-limited", 100, 10, 2000, 1e12, "lte"),
        ("1000/round LTE, 10 Gbit server shared", 2000, 1000, 20, 10e9, "lte"),
        ("1000/round on 1 Gbit, 10 Gbit server shared", 2000, 1000, 20, 10e9, "1gbit"),
        ("2000/round, own LTE rates (lognormal 0.5), 10 Gbit shared", 2000, 2000, 10, 10e9, "lte-varied"),
        ("the same from a scenario's link: lognormal 0.5 per client", 2000, 2000, 10, 10e9, "scenario"),
        ("1000/round LTE in 10 cells of 150/50 Mbit/s, 10 Gbit server", 2000, 1000, 20, 10e9, "lte-cells"),
    ]
    # simfl: forced onto SimPy; arrays: as it runs by default (the array kernel where it can), and its ratio
    print(f"{'case':58s} {'simfl cr/s':>12s} {'bare cr/s':>12s} {'ratio':>7s} {'arrays cr/s':>12s} "
          f"{'ratio':>7s}")
    for label, pop, k, rounds, server_bps, link in cases:
        rounds = max(1, int(rounds * args.rounds_scale))
        inputs = make_inputs(pop, k, rounds, server_bps, link)
        probe = Engine(inputs, 0)
        probe.run()
        arrays = probe.ran_on == "arrays"
        # interleaved, so that a slow spell of the shared machine hits both sides alike
        t_simfl = t_bare = t_arrays = float("inf")
        for _ in range(REPEATS):
            t_simfl = min(t_simfl, best_of(lambda: run(inputs, 0, kernel="simpy"), 1))
            t_bare = min(t_bare, best_of(lambda: bare_simpy(pop, k, rounds), 1))
            if arrays:
                t_arrays = min(t_arrays, best_of(lambda: run(inputs, 0), 1))
        cr = k * rounds
        fast = f"{cr / t_arrays:12,.0f} {t_bare / t_arrays:7.2f}" if arrays else f"{'-':>12s} {'-':>7s}"
        print(f"{label:58s} {cr / t_simfl:12,.0f} {cr / t_bare:12,.0f} {t_bare / t_simfl:7.2f} {fast}")
    # asynchronous: client jobs per second; the bare loop runs as many jobs as simfl did
    label, pop, conc, k, rounds = "async: 1000 jobs in flight, buffer 100, LTE, 10 Gbit shared", 2000, 1000, 100, 200
    rounds = max(1, int(rounds * args.rounds_scale))
    inputs = make_inputs(pop, k, rounds, 10e9, "lte", concurrency=conc)
    jobs = len(run(inputs, 0).clients)
    t_simfl = t_bare = float("inf")
    for _ in range(REPEATS):
        t_simfl = min(t_simfl, best_of(lambda: run(inputs, 0), 1))
        t_bare = min(t_bare, best_of(lambda: bare_async(pop, conc, jobs), 1))
    print(f"{label:58s} {jobs / t_simfl:12,.0f} {jobs / t_bare:12,.0f} {t_bare / t_simfl:7.2f}")


if __name__ == "__main__":
    main()
