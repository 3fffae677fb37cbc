"""Where points run: in this process, a local process pool, or Ray tasks. Each yields (index, row) as points
finish, in whatever order they finish; the sweep puts them back in order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from simfl.errors import ScenarioError
from simfl.plan.evaluate import evaluate_point

Job = tuple[int, str, dict[str, Any], int]  # (index, scenario path, overrides, replicates)


def run_local(jobs: Sequence[Job], workers: int) -> Iterator[tuple[int, dict]]:
    """One worker: in this process. More: a process pool (each point is a separate simulation, so
    processes, not threads: the engine is pure Python)."""
    if workers <= 1:
        for i, path, over, reps in jobs:
            yield i, evaluate_point(path, over, reps)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # fork starts fastest and the parent has imported no threads that matter; spawn where fork is missing
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {pool.submit(evaluate_point, path, over, reps): i for i, path, over, reps in jobs}
        try:
            for f in as_completed(futures):
                yield futures[f], f.result()
        finally:
            for f in futures:
                f.cancel()


def run_ray(jobs: Sequence[Job], address: str | None, workers: int | None = None) -> Iterator[tuple[int, dict]]:
    """Each point a Ray task, on the cluster at `address` or a local one started here (and stopped after)."""
    try:
        import ray
    except ImportError:
        raise ScenarioError("Ray is not installed: pip install 'simfl[cluster]'", field="--executor") from None
    started = not ray.is_initialized()
    if started:
        try:
            kwargs = {"address": address} if address else {"num_cpus": workers} if workers else {}
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ScenarioError(f"cannot connect to Ray at {address or 'a local instance'}: {e}",
                                field="--address") from None
    try:
        task = ray.remote(evaluate_point)
        pending = {task.remote(path, over, reps): i for i, path, over, reps in jobs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref), ray.get(ref)
    finally:
        if started:
            ray.shutdown()
