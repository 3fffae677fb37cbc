"""simfl's engine against a peer's virtual clock on the same workload, in one process: APPFL's vsim.

The workload (issue 23): 1,000 clients, 100 a round, 200 rounds, 10 s compute, 50 Mbit/s down and
10 Mbit/s up, a 2.75 MB update, no latency and no aggregation time (APPFL models neither); the same with
30 % over-selection (130 selected, the first 100 aggregated); and FedBuff: 2,000 clients, 1,000 jobs in
flight, aggregating every 100 updates, 200 aggregations.

APPFL is optional. Install it without its training stack into a side folder (gitignored):

    pip install --no-deps --target .peers appfl colorama
    python benchmarks/peers.py [--repeats 5] [--peers .peers]

Its drivers are run as they ship (appfl.vsim.SyncSimDriver, AsyncSimDriver), with stand-ins for the
server and client agents that train nothing: what is timed is each driver's clock, selection and
bookkeeping, as simfl's side is its engine. Both sides' simulated end times are printed and must agree
(APPFL adds compute + download + upload in one sum, simfl instant by instant: they differ in the last
bits only). Each side runs best of N, interleaved, so a slow spell of a shared machine hits both.
simfl is timed twice: as it runs by default (the array kernel where it is exact) and forced onto SimPy.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from simfl.sim import run  # noqa: E402
from simfl.sim.inputs import AsyncSpec, GroupSpec, LinkSpec, Population, ServerSpec, SimInputs  # noqa: E402

UPDATE_BYTES = 2_750_000  # 2.75 MB
DOWN_MBPS, UP_MBPS = 50.0, 10.0
STEPS, STEP_S = 10, 1.0  # 10 s of compute


# -- simfl -----------------------------------------------------------------------------------------------

def simfl_inputs(population: int, k: int, selected: int, rounds: int, concurrency: int | None = None) -> SimInputs:
    """The workload as engine inputs: one group, no latency, a server link that never binds, aggregation
    in effectively no time (1 param at 1e300 params/s: 1e-300 s, below any instant's resolution)."""
    link = LinkSpec("link", DOWN_MBPS * 1e6, UP_MBPS * 1e6, 0.0)
    server = ServerSpec("server", LinkSpec("server", 1e15, 1e15, 0.0), 0.0, 0.0, 1e300)
    groups = (GroupSpec("device", link, STEP_S, 0.0, 0.0, trainable_params=1, bits_per_transfer=UPDATE_BYTES * 8),)
    members = Population(np.zeros(population, dtype=np.int32), np.full(population, STEPS, dtype=np.int32))
    if concurrency is not None:
        return SimInputs(groups, members, server, k, concurrency, rounds,
                         round_policy=AsyncSpec(concurrency, buffer_size=k))
    return SimInputs(groups, members, server, k, selected, rounds)


def simfl_run(population, k, selected, rounds, concurrency=None, kernel=None) -> float:
    """Build the inputs and run them; returns the simulated end time."""
    records = run(simfl_inputs(population, k, selected, rounds, concurrency), 0, kernel=kernel)
    return records.rounds[-1].end_s


# -- APPFL -----------------------------------------------------------------------------------------------

class _Tensor:
    """What APPFL's drivers read of a model's tensors: numel and element_size (the update's bytes)."""

    def numel(self) -> int:
        return UPDATE_BYTES // 4

    def element_size(self) -> int:
        return 4


class _Scheduler:
    def __init__(self, buffer: int = 1):
        self.num_clients = 0
        self.buffer = buffer
        self.updates = 0
        self.epochs = 0

    def set_num_clients(self, n: int) -> None:
        self.num_clients = n

    def get_num_global_epochs(self) -> int:
        return self.epochs


class _Server:
    """A server agent that aggregates nothing: FedBuff's count of updates, one version per `buffer`."""

    def __init__(self, buffer: int = 1, target_epochs: int | None = None):
        self.scheduler = _Scheduler(buffer)
        self.target_epochs = target_epochs
        self.model = {"w": _Tensor()}

    def get_parameters(self, serial_run: bool = True, client_id=None):
        return self.model

    def global_update(self, client_id, local_model, blocking=False, **meta):
        s = self.scheduler
        s.updates += 1
        if s.updates % s.buffer == 0:
            s.epochs += 1
        return self.model

    def training_finished(self) -> bool:
        return self.target_epochs is not None and self.scheduler.epochs >= self.target_epochs


class _Client:
    def __init__(self, cid: str):
        self.cid = cid

    def get_id(self) -> str:
        return self.cid

    def load_parameters(self, params) -> None:
        pass

    def train(self) -> None:
        pass

    def get_parameters(self):
        return {}, {"current_local_steps": STEPS}


def _quiet_logger() -> logging.Logger:
    log = logging.getLogger("simfl-bench-appfl")
    log.setLevel(logging.CRITICAL)
    log.propagate = False
    return log


def appfl_profile_class():
    from appfl.vsim import ClientProfile

    class Asymmetric(ClientProfile):
        """50 Mbit/s down, 10 up: ClientProfile's directional hooks, as its docstring invites."""

        def download_time(self, model_bytes: float, **kwargs) -> float:
            return model_bytes * 8 / (DOWN_MBPS * 1e6)

        def upload_time(self, model_bytes: float, **kwargs) -> float:
            return model_bytes * 8 / (UP_MBPS * 1e6)

    return Asymmetric


def appfl_sync(population: int, k: int, selected: int, rounds: int) -> float:
    from appfl.vsim import SyncSimDriver

    profile = appfl_profile_class()()
    clients = [_Client(str(i)) for i in range(population)]
    driver = SyncSimDriver(_Server(), clients, {c.cid: profile for c in clients}, participants_per_round=selected,
                           logger=_quiet_logger(), seed=0, base_step_time=STEP_S, mode="count", min_responses=k,
                           target_rounds=rounds)
    driver.run()
    return driver.virtual_time


def appfl_async(population: int, buffer: int, concurrency: int, aggregations: int) -> float:
    from appfl.vsim import AsyncSimDriver

    profile = appfl_profile_class()()
    clients = [_Client(str(i)) for i in range(population)]
    driver = AsyncSimDriver(_Server(buffer, aggregations), clients, {c.cid: profile for c in clients},
                            max_in_flight=concurrency, logger=_quiet_logger(), seed=0, base_step_time=STEP_S)
    driver.run()
    return driver.virtual_time


# -- the comparison ----------------------------------------------------------------------------------------

CASES = [
    # (label, population, K, selected, rounds or aggregations, concurrency)
    ("sync, fixed: 100 of 1,000 a round, 200 rounds", 1000, 100, 100, 200, None),
    ("sync, 30 % over-selection: first 100 of 130", 1000, 100, 130, 200, None),
    ("FedBuff: 2,000 clients, 1,000 in flight, buffer 100", 2000, 100, None, 200, 1000),
]


def timed(fn) -> tuple[float, float]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="Runs of each side, interleaved; the best is reported.")
    ap.add_argument("--peers", type=Path, default=REPO / ".peers", help="Folder APPFL was installed into.")
    args = ap.parse_args()
    sys.path.insert(0, str(args.peers))
    try:
        import appfl.vsim  # noqa: F401
        have_appfl = True
    except ImportError as e:
        have_appfl = False
        print(f"APPFL not found in {args.peers} ({e}); install it with "
              f"pip install --no-deps --target {args.peers} appfl colorama. Timing simfl alone.")
    print(f"{'case':52s} {'simfl':>9s} {'simfl SimPy':>12s} {'APPFL vsim':>11s} {'APPFL/simfl':>12s} "
          f"{'simulated s':>12s} {'|simfl - APPFL|':>16s}")
    for label, pop, k, selected, rounds, conc in CASES:
        sides = {"simfl": lambda: simfl_run(pop, k, selected, rounds, conc),
                 "simfl SimPy": lambda: simfl_run(pop, k, selected, rounds, conc, kernel="simpy")}
        if have_appfl:
            sides["APPFL"] = ((lambda: appfl_async(pop, k, conc, rounds)) if conc
                              else (lambda: appfl_sync(pop, k, selected, rounds)))
        best = dict.fromkeys(sides, float("inf"))
        end = {}
        for _ in range(args.repeats):
            for name, fn in sides.items():
                t, end[name] = timed(fn)
                best[name] = min(best[name], t)
        assert end["simfl"] == end["simfl SimPy"], "simfl's kernel and SimPy disagree"
        peer = f"{best['APPFL']:10.3f}s" if have_appfl else f"{'-':>11s}"
        ratio = f"{best['APPFL'] / best['simfl']:11.1f}x" if have_appfl else f"{'-':>12s}"
        gap = f"{abs(end['APPFL'] - end['simfl']):15.1e}s" if have_appfl else f"{'-':>16s}"
        print(f"{label:52s} {best['simfl']:8.3f}s {best['simfl SimPy']:11.3f}s {peer} {ratio} "
              f"{end['simfl']:12.3f} {gap}")
        if have_appfl and abs(end["APPFL"] - end["simfl"]) > 1e-6 * max(1.0, end["simfl"]):
            raise SystemExit(f"{label}: simulated end times disagree: simfl {end['simfl']!r}, APPFL {end['APPFL']!r}")


if __name__ == "__main__":
    main()
