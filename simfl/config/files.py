"""Data files a scenario points to: availability traces and carbon-intensity series, read and checked.

Formats (CSV, a header row, `#` lines are comments):

- availability trace: `client,start_s,end_s`. `client` is the 0-based index of a member within its
  fleet group; `start_s` and `end_s` are seconds of simulated time (t = 0 is the run's start) with
  start_s < end_s. The member is online over [start_s, end_s); a member with no row is never online.
- carbon intensity: `time,g_per_kwh`. `time` is ISO 8601 with a UTC offset (2026-06-01T00:00:00+02:00),
  strictly increasing; `g_per_kwh` (grams of CO2 per kWh, >= 0) holds from its time until the next
  row's, and the last row's holds on.

Each error names the file, the row (as a line number of the file) and the value.
"""

from __future__ import annotations

import csv
import math
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np

from simfl.errors import ScenarioError, short
from simfl.safeio import CSV_MAX_BYTES, read_text, regular_file


def _rows(path: Path, header: tuple[str, ...], field: str, what: str):
    """(line number, row) of a CSV file with exactly this header, skipping blank and comment lines."""
    text = read_text(path, field=field, what=what, max_bytes=CSV_MAX_BYTES)
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.startswith("#")]
    if not lines:
        raise ScenarioError(f"{path} is empty; expected the header {','.join(header)}", field=field)
    (n0, first), body = lines[0], lines[1:]
    got = tuple(c.strip() for c in next(csv.reader([first])))
    if got != header:
        raise ScenarioError(f"{path} line {n0}: header must be {','.join(header)} (got {short(','.join(got))})",
                            field=field)
    for n, line in body:
        row = [c.strip() for c in next(csv.reader([line]))]
        if len(row) != len(header):
            raise ScenarioError(f"{path} line {n}: expected {len(header)} values, got {short(line)}", field=field)
        yield n, row


def _number(path: Path, n: int, name: str, text: str, field: str) -> float:
    try:
        x = float(text)
    except ValueError:
        x = math.nan
    if not math.isfinite(x):
        raise ScenarioError(f"{path} line {n}: {name} must be a finite number (got {short(text)})", field=field)
    return x


@lru_cache(maxsize=16)
def _trace(path: Path, mtime_ns: int, field: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c, s, e = [], [], []
    for n, (client, start, end) in _rows(path, ("client", "start_s", "end_s"), field, "availability trace"):
        ci = _number(path, n, "client", client, field)
        if ci != int(ci) or ci < 0:
            raise ScenarioError(f"{path} line {n}: client must be a 0-based index (got {short(client)})", field=field)
        si, ei = _number(path, n, "start_s", start, field), _number(path, n, "end_s", end, field)
        if not si < ei:
            raise ScenarioError(f"{path} line {n}: start_s must be before end_s (got {si:g}, {ei:g})", field=field)
        c.append(int(ci)), s.append(si), e.append(ei)
    return np.array(c, dtype=np.int64), np.array(s, dtype=float), np.array(e, dtype=float)


def _fits(path: Path, trace: tuple[np.ndarray, np.ndarray, np.ndarray], count: int,
          field: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = trace[0]
    if len(c) and c.max() >= count:
        raise ScenarioError(f"{path}: client {int(c.max())} is outside the group's {count} members (0..{count - 1})",
                            field=field)
    return trace


@lru_cache(maxsize=16)
def _carbon(path: Path, mtime_ns: int, field: str) -> tuple[np.ndarray, np.ndarray]:
    times, values = [], []
    for n, (time, g) in _rows(path, ("time", "g_per_kwh"), field, "carbon-intensity file"):
        try:
            t = datetime.fromisoformat(time)
        except ValueError:
            raise ScenarioError(f"{path} line {n}: time must be ISO 8601 (got {short(time)})", field=field) from None
        if t.tzinfo is None:
            raise ScenarioError(f"{path} line {n}: time needs a UTC offset, e.g. +00:00 (got {short(time)})",
                                field=field)
        v = _number(path, n, "g_per_kwh", g, field)
        if v < 0:
            raise ScenarioError(f"{path} line {n}: g_per_kwh must be >= 0 (got {v:g})", field=field)
        ts = t.timestamp()
        if times and ts <= times[-1]:
            raise ScenarioError(f"{path} line {n}: times must increase (got {short(time)})", field=field)
        times.append(ts), values.append(v)
    if not times:
        raise ScenarioError(f"{path} has no rows", field=field)
    return np.array(times), np.array(values)


def _from_start(series: tuple[np.ndarray, np.ndarray], start: datetime, field: str) -> tuple[np.ndarray, np.ndarray]:
    if start.timestamp() < series[0][0]:
        raise ScenarioError(f"start_time {start.isoformat()} is before the file's first row", field=field)
    return series


class DataFiles:
    """The traces and carbon series a scenario names, each read and checked once and kept with the scenario:
    loading reads them (a bad row is an error before anything runs) and build takes them from here, never from
    the disk again; replicates and copies of the scenario share them. Keyed by path, so a copy that names
    another file reads that one when asked. A memo of what the scenario's fields name, not part of its value:
    any two compare equal."""

    def __init__(self) -> None:
        self._traces: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._carbon: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def trace(self, path: str | Path, count: int, field: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(client, start_s, end_s) arrays of an availability trace for a group of `count` members."""
        key = str(path)
        if key not in self._traces:
            self._traces[key] = _trace(Path(path), _mtime(Path(path), field), field)
        return _fits(Path(path), self._traces[key], count, field)

    def carbon(self, path: str | Path, start: datetime, field: str) -> tuple[np.ndarray, np.ndarray]:
        """(times as Unix seconds, g/kWh) of a carbon-intensity series for a run starting at `start`, which must
        not be before its first row."""
        key = str(path)
        if key not in self._carbon:
            self._carbon[key] = _carbon(Path(path), _mtime(Path(path), field), field)
        return _from_start(self._carbon[key], start, field)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataFiles)

    __hash__ = None  # type: ignore[assignment]


def _mtime(path: Path, field: str) -> int:
    return regular_file(path, field=field).stat().st_mtime_ns  # a FIFO or a device: one line, never opened
