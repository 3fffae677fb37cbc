"""When clients are online: always, a trace of intervals, a daily window, or an on/off process.

Each fleet group has one model over its members (local indices 0..count-1). A model answers
three questions at a simulated time t, which the round policy asks only with t never
decreasing:

- `available(t)`: a boolean mask of the members online at t;
- `until(members, t)`: for members online at t, the end of their current interval (inf: never);
- `next_start(t)`: the earliest time > t at which a member comes online (inf: never).

Intervals are half-open, [start, end): a member is online at its start and offline at its end.

A model that draws (on/off durations, diurnal jitter) gets its own generator spawned from the
availability stream, one per group in fleet order, so that what one group draws never depends on
when another group was asked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_INF = float("inf")
DAY_S = 86_400.0


class Always:
    def __init__(self, n: int):
        self.n = n

    def available(self, t: float) -> np.ndarray:
        return np.ones(self.n, dtype=bool)

    def until(self, members: np.ndarray, t: float) -> np.ndarray:
        return np.full(len(members), _INF)

    def next_start(self, t: float) -> float:
        return _INF


@dataclass(frozen=True)
class AlwaysSpec:
    def model(self, n: int, rng: np.random.Generator) -> Always:
        return Always(n)


@dataclass(frozen=True, eq=False)
class TraceSpec:
    """Intervals per member: `client[i]` is online over [start_s[i], end_s[i]). Overlapping or
    touching intervals of one member are merged. A member with no interval is never online."""

    client: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray

    def model(self, n: int, rng: np.random.Generator) -> "Trace":
        return Trace(n, self.client, self.start_s, self.end_s)


class Trace:
    def __init__(self, n: int, client: np.ndarray, start_s: np.ndarray, end_s: np.ndarray):
        assert len(client) == len(start_s) == len(end_s)
        assert len(client) == 0 or (0 <= client.min() and client.max() < n), "trace clients are 0..count-1"
        assert np.all(start_s < end_s)
        self.n = n
        order = np.lexsort((start_s, client))
        c, s, e = client[order], start_s[order], end_s[order]
        # Merge: a row that starts at or before the running end of its member's previous rows joins them.
        keep_c, keep_s, keep_e = [], [], []
        for ci, si, ei in zip(c.tolist(), s.tolist(), e.tolist()):
            if keep_c and keep_c[-1] == ci and si <= keep_e[-1]:
                keep_e[-1] = max(keep_e[-1], ei)
            else:
                keep_c.append(ci), keep_s.append(si), keep_e.append(ei)
        self.client = np.array(keep_c, dtype=np.int64)
        self.start_s = np.array(keep_s, dtype=float)
        self.end_s = np.array(keep_e, dtype=float)

    def _open(self, t: float) -> np.ndarray:
        return (self.start_s <= t) & (t < self.end_s)

    def available(self, t: float) -> np.ndarray:
        mask = np.zeros(self.n, dtype=bool)
        mask[self.client[self._open(t)]] = True
        return mask

    def until(self, members: np.ndarray, t: float) -> np.ndarray:
        end = np.full(self.n, _INF)
        rows = self._open(t)
        end[self.client[rows]] = self.end_s[rows]
        return end[members]

    def next_start(self, t: float) -> float:
        later = self.start_s[self.start_s > t]
        return float(later.min()) if len(later) else _INF


@dataclass(frozen=True)
class OnOffSpec:
    """Each member alternates online and offline periods, exponentially distributed with these means
    (seconds), independently of the others, starting in its stationary state."""

    mean_on_s: float
    mean_off_s: float

    def model(self, n: int, rng: np.random.Generator) -> "OnOff":
        return OnOff(n, self.mean_on_s, self.mean_off_s, rng)


class OnOff:
    """Durations come in blocks of one standard exponential per member: a member's j-th period uses
    block j. Blocks are drawn in order as the slowest member needs them, so the periods do not depend
    on when the model is asked."""

    def __init__(self, n: int, mean_on_s: float, mean_off_s: float, rng: np.random.Generator):
        assert mean_on_s > 0 and mean_off_s > 0
        self.n, self.rng = n, rng
        self.means = np.array([mean_off_s, mean_on_s])  # indexed by state (0 off, 1 on)
        self.on = rng.random(n) < mean_on_s / (mean_on_s + mean_off_s)  # stationary start
        self._blocks: dict[int, np.ndarray] = {}
        self._next_block = 0
        self.flips = np.zeros(n, dtype=np.int64)  # periods begun so far, per member
        # The first period is the residual of the stationary one: exponential with its mean (memoryless).
        self.change_at = self._period(np.arange(n), self.on)
        self._t = 0.0

    def _block(self, j: int) -> np.ndarray:
        while self._next_block <= j:
            self._blocks[self._next_block] = self.rng.standard_exponential(self.n)
            self._next_block += 1
        return self._blocks[j]

    def _period(self, members: np.ndarray, on: np.ndarray) -> np.ndarray:
        out = np.empty(len(members))
        js = self.flips[members]
        for j in np.unique(js):
            sel = js == j
            out[sel] = self._block(int(j))[members[sel]] * self.means[on[sel].astype(int)]
        return out

    def _advance(self, t: float) -> None:
        assert t >= self._t, "availability is asked forward in time"
        self._t = t
        while True:
            due = np.flatnonzero(self.change_at <= t)
            if not len(due):
                break
            self.on[due] = ~self.on[due]
            self.flips[due] += 1
            self.change_at[due] += self._period(due, self.on[due])
        lowest = int(self.flips.min())
        for j in [j for j in self._blocks if j < lowest]:
            del self._blocks[j]  # every member is past it

    def available(self, t: float) -> np.ndarray:
        self._advance(t)
        return self.on.copy()

    def until(self, members: np.ndarray, t: float) -> np.ndarray:
        self._advance(t)
        return self.change_at[members].copy()

    def next_start(self, t: float) -> float:
        self._advance(t)
        off = ~self.on
        return float(self.change_at[off].min()) if off.any() else _INF


@dataclass(frozen=True)
class DiurnalSpec:
    """Online every day from `start_hour` to `end_hour` local time (wrapping midnight when start > end,
    e.g. 22 to 6: charging at night). Local time is the run's wall clock at t = 0 (`t0_utc_s`, seconds
    since the Unix epoch) plus `utc_offset_h`. Each member's window is shifted by its own uniform draw
    in [-jitter_h, +jitter_h] hours, once for the run."""

    start_hour: float
    end_hour: float
    utc_offset_h: float
    t0_utc_s: float
    jitter_h: float = 0.0

    def model(self, n: int, rng: np.random.Generator) -> "Diurnal":
        shift_s = (rng.uniform(-1.0, 1.0, n) * self.jitter_h * 3600.0) if self.jitter_h > 0 else np.zeros(n)
        return Diurnal(self, shift_s)


class Diurnal:
    def __init__(self, spec: DiurnalSpec, shift_s: np.ndarray):
        assert spec.start_hour != spec.end_hour
        self.n = len(shift_s)
        self.open_s = spec.start_hour * 3600.0
        self.length_s = ((spec.end_hour - spec.start_hour) % 24) * 3600.0
        # Seconds into the member's day at simulated t = 0, from the window's opening.
        self.phase0 = (spec.t0_utc_s + spec.utc_offset_h * 3600.0 - self.open_s - shift_s) % DAY_S

    def _since_open(self, t: float) -> np.ndarray:
        """Seconds since each member's window last opened. A value within a microsecond of a full day is
        an opening that float rounding put just before it: counted as the opening itself."""
        s = (self.phase0 + t) % DAY_S
        s[s > DAY_S - 1e-6] = 0.0
        return s

    def available(self, t: float) -> np.ndarray:
        return self._since_open(t) < self.length_s

    def until(self, members: np.ndarray, t: float) -> np.ndarray:
        return t + (self.length_s - self._since_open(t)[members])

    def next_start(self, t: float) -> float:
        if self.n == 0:
            return _INF
        return t + float((DAY_S - self._since_open(t)).min())


class PopulationAvailability:
    """The groups' models side by side: member ids are global (group g's members follow group g-1's)."""

    def __init__(self, models: list, offsets: list[int]):
        self.models = models
        self.offsets = offsets

    def available_ids(self, t: float) -> np.ndarray:
        return np.concatenate([np.flatnonzero(m.available(t)) + off for m, off in zip(self.models, self.offsets)])

    def until(self, ids: np.ndarray, t: float) -> np.ndarray:
        out = np.empty(len(ids))
        for m, off in zip(self.models, self.offsets):
            sel = (ids >= off) & (ids < off + m.n)
            if sel.any():
                out[sel] = m.until(ids[sel] - off, t)
        return out

    def next_start(self, t: float) -> float:
        return min(m.next_start(t) for m in self.models)
