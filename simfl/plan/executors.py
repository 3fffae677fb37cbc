"""Where points run: in this process, a local process pool, or Ray tasks. Each yields (index, row) as points
finish, in whatever order they finish; the sweep puts them back in order.

A local pool's workers die with the process that started them, however it ends (SIGKILL too): on Linux the
kernel kills each worker when its parent dies (PR_SET_PDEATHSIG), elsewhere a thread in each worker watches
the parent. Stopped by an exception (a signal turned into one, a failure), the pool's workers are killed at
once rather than left to finish the points they are running.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from simfl.errors import RunFailed, ScenarioError, short
from simfl.config.load import ScenarioSource
from simfl.plan.evaluate import Held, evaluate_point, hold, is_held

Job = tuple[int, Any, dict[str, Any], int]  # (index, base scenario: a ScenarioSource or a path, overrides, replicates)

WORKERS_PER_CORE = 4  # the most processes or threads a count option may ask for, per core of this machine


def cores() -> int:
    """The cores this process may run on (its affinity where the OS says, else all of them)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_workers(n: int, field: str = "--workers") -> int:
    """A count of processes or threads to start here: at least 1, at most WORKERS_PER_CORE per core (more
    only queue for the same cores, and a huge count forks until the process limit)."""
    most = WORKERS_PER_CORE * cores()
    if n < 1:
        raise ScenarioError(f"must be at least 1 (got {n})", field=field)
    if n > most:
        raise ScenarioError(f"must be at most {most}, {WORKERS_PER_CORE} x this machine's {cores()} cores "
                            f"(got {short(n)})", field=field)
    return n


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent_pid: int) -> None:
    """A pool worker's initializer: die when the parent does; leave interrupts to the parent."""
    # The parent turns SIGINT/SIGTERM into an exception and then kills the pool; a Ctrl-C reaches the whole
    # process group, so a worker ignores SIGINT (no traceback from each worker) and takes SIGTERM plainly.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    armed = False
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            armed = ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if not armed:
        import threading

        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed: nobody would send it
        os._exit(1)


def _watch_parent(parent_pid: int, every_s: float = 0.5) -> None:
    import time

    while os.getppid() == parent_pid:  # re-parented (to init or a subreaper) once the parent has died
        time.sleep(every_s)
    os._exit(1)


def _kill(pool) -> None:
    """Kill the pool's workers now and release the pool (shutdown(wait=True) alone waits for running points)."""
    for p in list((getattr(pool, "_processes", None) or {}).values()):  # private, but no public way before 3.14
        try:
            p.kill()
        except (OSError, AttributeError):
            pass
    pool.shutdown(wait=True, cancel_futures=True)


def _start_worker(parent_pid: int, held: dict[str, Any]) -> None:
    """A pool worker's initializer: die with the parent, and hold the plan's base (read and parsed once, in the
    parent) for every point this worker runs."""
    _die_with_parent(parent_pid)
    for key, base in held.items():
        hold(key, base)


def _held_key() -> str:
    import uuid

    return uuid.uuid4().hex  # unique on a shared Ray cluster too, whose workers outlive this process


class LocalPool:
    """Where a sweep's or a search's points run here: in this process (one worker), or a process pool (each
    point is a separate simulation, so processes, not threads: the engine is pure Python) kept for every batch
    of points it is given, its workers started once and each given the base (a config.load.ScenarioSource)
    when it starts: a point's job is then its overrides and a key."""

    def __init__(self, workers: int, most: int | None = None):
        self.workers = check_workers(workers, "workers")
        self.most = most  # the most points it will run at once (no more processes than that)
        self._pool = None
        self._keys: dict[int, str] = {}  # id(base) -> the key the workers hold it by

    def _ref(self, base: Any) -> Any:
        key = self._keys.get(id(base))
        return Held(key) if key is not None else base

    def _start(self, jobs: Sequence[Job]) -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        held = {}
        for _, base, _, _ in jobs:
            if isinstance(base, ScenarioSource) and id(base) not in self._keys:
                self._keys[id(base)] = key = _held_key()
                held[key] = base
        self._bases = list(held.values())  # alive while the pool is: the ids above stay theirs
        # fork starts fastest and the parent has imported no threads that matter; spawn where fork is missing.
        # With fork the pool forks every worker from this (the calling) thread at the first submit, so the death
        # signal, tied to the thread that forked, fires only when this thread, the main one, ends.
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        self._pool = ProcessPoolExecutor(max_workers=min(self.workers, max(1, self.most or len(jobs))),
                                         mp_context=ctx, initializer=_start_worker, initargs=(os.getpid(), held))

    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[int, dict]]:
        if self.workers <= 1:
            for i, base, over, reps in jobs:
                yield i, evaluate_point(base, over, reps)
            return
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        if self._pool is None:
            self._start(jobs)
        try:
            futures = {self._pool.submit(evaluate_point, self._ref(base), over, reps): i
                       for i, base, over, reps in jobs}
            for f in as_completed(futures):
                try:
                    row = f.result()
                except BrokenProcessPool:
                    raise RunFailed("a worker process died while simulating (killed by the system, perhaps out of "
                                    "memory: try fewer --workers); the points that finished are kept, so the same "
                                    "command finishes the rest") from None
                yield futures[f], row
        except BaseException:  # an interrupt, a failure, or the consumer stopped early: stop the workers now
            self.kill()
            raise

    def kill(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            _kill(pool)

    def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True)


def run_local(jobs: Sequence[Job], workers: int) -> Iterator[tuple[int, dict]]:
    """One worker: in this process. More: a process pool for these jobs (see LocalPool)."""
    pool = LocalPool(workers, len(jobs))
    yield from pool.run(jobs)
    pool.close()


def _ray_point(key: str, box: list, overrides: dict[str, Any], replicates: int) -> dict:
    """A point as a Ray task: the base is fetched from Ray's object store by the first point a worker runs (box
    holds its reference: Ray hands a reference inside a list over as it is) and held for the next ones."""
    if not is_held(key):
        import ray

        hold(key, ray.get(box[0]))
    return evaluate_point(Held(key), overrides, replicates)


class RayPool:
    """Points as Ray tasks, on the cluster at `address` or a local one started here (stopped at close), kept for
    every batch of points it is given; the base is put in the object store once and each worker holds it from
    its first point."""

    def __init__(self, address: str | None, workers: int | None = None):
        try:
            import ray
        except ImportError:
            raise ScenarioError("Ray is not installed: pip install 'simfl[cluster]'", field="--executor") from None
        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            try:
                kwargs = {"address": address} if address else {"num_cpus": workers} if workers else {}
                ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise ScenarioError(f"cannot connect to Ray at {address or 'a local instance'}: {e}",
                                    field="--address") from None
        self.task = ray.remote(_ray_point)
        self.plain = ray.remote(evaluate_point)
        self._put: dict[int, tuple[Any, str, Any]] = {}  # id(base) -> (base, key, its object reference)

    def _submit(self, base: Any, over: dict[str, Any], reps: int):
        if not isinstance(base, ScenarioSource):
            return self.plain.remote(base, over, reps)
        if id(base) not in self._put:
            self._put[id(base)] = (base, _held_key(), self.ray.put(base))
        _, key, ref = self._put[id(base)]
        return self.task.remote(key, [ref], over, reps)

    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[int, dict]]:
        pending = {self._submit(base, over, reps): i for i, base, over, reps in jobs}
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref), self.ray.get(ref)

    def close(self) -> None:
        if self.started:
            self.started = False
            self.ray.shutdown()

    kill = close


def run_ray(jobs: Sequence[Job], address: str | None, workers: int | None = None) -> Iterator[tuple[int, dict]]:
    """Each point a Ray task (see RayPool)."""
    pool = RayPool(address, workers)
    try:
        yield from pool.run(jobs)
    finally:
        pool.close()
