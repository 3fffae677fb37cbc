"""What a scenario, a profile or a sweep can ask for: integers that fit the arrays they land in, and work
(members, rounds, client-rounds, points) that a run can finish. Each bound fails as one line naming it."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

INT32_MAX = 2**31 - 1  # local steps per member are an int32 array (simfl/sim/inputs.py Population.steps)
INT64_MAX = 2**63 - 1  # every other integer: numpy's int64, C's long, a Parquet int64 column
UINT32_MAX = 2**32 - 1  # Optuna's sampler seeds numpy's RandomState, which takes 0 .. 2^32 - 1

# The population is built in memory before a run: 1,000,000 clients took 2.7 s and 324 MB here.
MAX_POPULATION = 10_000_000
# Work a run may be asked for, checked from the inputs before anything is built. A quickstart point
# (845 rounds, 8,450 client-rounds) takes about 0.15 s, so 10^9 client-rounds is about five hours of one core.
MAX_ROUNDS = 10_000_000
MAX_CLIENT_ROUNDS = 1_000_000_000
MAX_POINTS = 1_000_000  # simulations one sweep or plan may ask for: points x replicates
# The simulated clock is a float64 of seconds: at 1e15 s (31.7 million years) it still resolves 0.125 s.
MAX_SIM_TIME_S = 1e15
# A lognormal multiplier exp(sigma z): at sigma 10 a draw 8 sd out is e^80, still finite; at sigma 100 a draw
# of 7.5 sd overflows to inf (or underflows to a rate of 0).
MAX_SIGMA = 10.0


def _within(low: int, high: int, what: str):
    def check(v: int) -> int:
        if v > high:
            raise ValueError(f"must be at most {high}, the largest {what}")
        if v < low:
            raise ValueError(f"must be at least {low}, the smallest {what}")
        return v
    return check


def _bounded(low: int, high: int, what: str):
    return Annotated[int, AfterValidator(_within(low, high, what)),
                     Field(json_schema_extra={"maximum": high})]


# Every integer field of a schema is one of these: a value beyond it is an error naming the field, never a
# number that wraps (int32) or overflows (C long) on its way into an array.
Int64 = _bounded(-INT64_MAX - 1, INT64_MAX, "integer simfl holds (64 bits)")
Steps = _bounded(-INT32_MAX - 1, INT32_MAX, "count of local steps simfl holds (32 bits)")
Seed32 = _bounded(0, UINT32_MAX, "seed Optuna's sampler takes (32 bits)")


def work_error(what: str, n: int, limit: int, why: str) -> str:
    return f"{n:,} {what}; simfl runs at most {limit:,} ({why})"
