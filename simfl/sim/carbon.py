"""Grams of CO2 for energy spent over intervals of simulated time, at the grid intensity of each instant.

The intensity is a step function of wall-clock time (each value holds until the next). Its integral
F(x) over seconds x since the run's start is piecewise linear, so the mean intensity over an interval
[a, b] is exactly (F(b) - F(a)) / (b - a), one `np.interp` for any number of intervals. Energy spent
at a constant rate over [a, b] then weighs (E / J_PER_KWH kWh) x that mean; energy at an instant (a == b)
the value at that instant.

`shifts_s` reprices the same intervals as if the run had started that many seconds later: the best
and worst start hour of the day.
"""

from __future__ import annotations

import numpy as np

from simfl.costs import J_PER_KWH


class CarbonCurve:
    def __init__(self, times_utc_s: np.ndarray, g_per_kwh: np.ndarray, t0_utc_s: float):
        """Intensity `g_per_kwh[i]` from `times_utc_s[i]` (increasing) on; the run starts at `t0_utc_s`,
        which must not be before the first time."""
        times = np.asarray(times_utc_s, dtype=float)
        g = np.asarray(g_per_kwh, dtype=float)
        assert len(times) == len(g) >= 1 and np.all(np.diff(times) > 0) and np.all(g >= 0)
        self.t0_utc_s = float(t0_utc_s)
        self.first_utc_s = float(times[0])
        assert self.t0_utc_s >= self.first_utc_s, "the run starts before the carbon series"
        self.constant = len(g) == 1
        self._x = times - self.t0_utc_s  # breakpoints in seconds since the run's start
        self._g = g
        self._f = np.concatenate([[0.0], np.cumsum(g[:-1] * np.diff(self._x))])  # F at the breakpoints

    @property
    def flat_g_per_kwh(self) -> float:
        assert self.constant
        return float(self._g[0])

    def flat_grams(self, joules: float) -> float:
        """Grams of CO2 of `joules` at the flat intensity (a constant curve): the one place a round's joules become
        grams without a time-varying intensity, for the SimPy rounds and the array kernel alike."""
        return joules * self.flat_g_per_kwh / J_PER_KWH

    @classmethod
    def flat(cls, g_per_kwh: float) -> "CarbonCurve":
        return cls(np.array([0.0]), np.array([g_per_kwh]), 0.0)

    def _integral(self, x: np.ndarray) -> np.ndarray:
        """F(x) = integral of the intensity from the first breakpoint to x (g s / kWh); linear past the last."""
        last = self._x[-1]
        inside = np.interp(x, self._x, self._f)
        return np.where(x > last, self._f[-1] + self._g[-1] * (x - last), inside)

    def _at(self, x: np.ndarray) -> np.ndarray:
        i = np.searchsorted(self._x, x, side="right") - 1
        return self._g[np.clip(i, 0, len(self._g) - 1)]

    def mean_g_per_kwh(self, a_s: np.ndarray, b_s: np.ndarray, shift_s: float = 0.0) -> np.ndarray:
        """The mean intensity over each [a, b] (seconds since the run's start), the run shifted by shift_s."""
        a = np.asarray(a_s, dtype=float) + shift_s
        b = np.asarray(b_s, dtype=float) + shift_s
        if self.constant:
            return np.full(np.broadcast(a, b).shape, self._g[0])
        width = b - a
        point = width <= 0
        safe = np.where(point, 1.0, width)
        mean = (self._integral(b) - self._integral(a)) / safe
        return np.where(point, self._at(a), mean)

    def grams(self, energy_j: np.ndarray, a_s: np.ndarray, b_s: np.ndarray, shift_s: float = 0.0) -> float:
        """Grams of CO2 of energies spent evenly over their intervals."""
        e = np.asarray(energy_j, dtype=float)
        if not e.size:
            return 0.0
        return float(np.sum(e * self.mean_g_per_kwh(a_s, b_s, shift_s)) / J_PER_KWH)
