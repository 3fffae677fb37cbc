"""What the engine appends while it runs: one row per client-round (streamed in chunks), one per round.

Client-round rows do not accumulate as Python objects: `ClientLog` buffers them as tuples and
turns every `chunk_rows` of them into columns, handed to a sink (the report layer writes each
chunk to Parquet as the run goes) or, with no sink, kept as compact columns in memory. A column
is a list of Python values, or (rows the array kernel wrote) a numpy array of int64 or float64:
pandas and pyarrow read both alike; iterating the log gives Python values either way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields

import numpy as np

NAN = float("nan")


@dataclass(frozen=True, slots=True)
class ClientRound:
    round: int
    client: int
    device: str
    network: str
    group: int  # index of its fleet group
    cell: str  # its radio cell; "" when none
    status: str  # completed | dropped | late | surplus | offline (see job.STATUSES)
    download_start_s: float
    download_end_s: float
    compute_start_s: float
    compute_end_s: float
    upload_start_s: float
    upload_end_s: float
    end_s: float  # when the client stopped working for this round
    compute_s: float
    bits_down: float
    bits_up: float
    energy_compute_j: float
    energy_idle_j: float
    energy_network_j: float
    version_downloaded: int  # the model version it trained from (sync: the round's index)
    version_aggregated: int  # the version its update went into (sync: round + 1); -1 when none
    staleness: float  # aggregations completed when its upload arrived, minus version_downloaded; NaN: none


@dataclass(frozen=True, slots=True)
class RoundRecord:
    round: int
    start_s: float
    end_s: float
    clients_selected: int
    clients_completed: int
    clients_dropped: int
    clients_late: int
    clients_surplus: int
    clients_offline: int
    wait_s: float  # the server waited this long, before start_s, for a client to come online
    aggregation_s: float
    t_comp_s: float  # longest compute among the aggregated (completed) clients; 0 when none
    t_comm_s: float  # the rest of the round: duration - t_comp_s
    granularity: float  # t_comp_s / t_comm_s; NaN when the round aggregated nothing
    bits_down: float
    bits_up: float
    energy_network_j: float
    energy_client_compute_j: float
    energy_client_idle_j: float
    energy_server_j: float
    co2_g: float  # at the grid intensity of each instant energy was spent (NaN: not priced)
    clients_stale: int  # async: uploads discarded as older than max_staleness (sync: 0)
    staleness_mean: float  # over the aggregated updates (sync: 0); NaN when none
    staleness_max: float


CLIENT_FIELDS = tuple(f.name for f in fields(ClientRound))
STATUS_INDEX = CLIENT_FIELDS.index("status")
Chunk = dict[str, list]  # column name -> values of up to chunk_rows client-rounds (a list, or a numpy array)

CHUNK_ROWS = 65_536


def _columns(rows: list[tuple]) -> Chunk:
    return dict(zip(CLIENT_FIELDS, (list(col) for col in zip(*rows))))


class ClientLog:
    """Client-round rows in fixed-size column chunks: memory stays flat however long the run.

    With a `sink`, each full chunk is handed over and dropped here; iterating the rows is then
    not possible (read what the sink wrote). Without one, chunks stay in memory as columns.
    """

    def __init__(self, sink: Callable[[Chunk], None] | None = None, chunk_rows: int = CHUNK_ROWS):
        assert chunk_rows > 0
        self.sink = sink
        self.chunk_rows = chunk_rows
        self.status_counts: Counter[str] = Counter()
        self._rows: list[tuple] = []
        self._cols: Chunk | None = None  # rows given as columns (extend_columns), not yet a chunk
        self._chunks: list[Chunk] = []
        self._len = 0

    def append(self, row: ClientRound | tuple) -> None:
        row = tuple(getattr(row, f) for f in CLIENT_FIELDS) if isinstance(row, ClientRound) else row
        self._rows.append(row)
        self._len += 1
        self.status_counts[row[STATUS_INDEX]] += 1
        if len(self._rows) >= self.chunk_rows:
            self.flush()

    def extend(self, rows: list[tuple], status_counts: dict[str, int]) -> None:
        """Rows (tuples in CLIENT_FIELDS order) whose statuses the caller has counted already."""
        if self._cols is not None:  # rows given as columns before (the array kernel's), not yet a chunk
            self._rows, self._cols = list(zip(*(_values(self._cols[f]) for f in CLIENT_FIELDS))), None
        self._rows.extend(rows)
        self._len += len(rows)
        self.status_counts.update(status_counts)
        while len(self._rows) >= self.chunk_rows:
            rest = self._rows[self.chunk_rows:]
            self._rows = self._rows[:self.chunk_rows]
            self.flush()
            self._rows = rest

    def extend_columns(self, cols: Chunk, status_counts: dict[str, int]) -> None:
        """Rows given as columns (a list per name in CLIENT_FIELDS; other keys are ignored), whose statuses the
        caller has counted already: the array kernel's rows, chunked exactly as the same rows appended one by
        one would be. The lists are handed over: the log may keep and extend them."""
        if self._rows:  # rows appended one by one before, not yet a chunk
            self._cols, self._rows = _columns(self._rows), []
        n = len(cols["round"])
        self._len += n
        self.status_counts.update(status_counts)
        if self._cols is None:  # the caller's columns become the buffer (it hands them over)
            self._cols = {f: cols[f] for f in CLIENT_FIELDS}
        else:
            self._cols = {f: _join(self._cols[f], cols[f]) for f in CLIENT_FIELDS}
        while len(self._cols["round"]) >= self.chunk_rows:
            size = self.chunk_rows
            full = self._cols
            self._cols = {f: full[f][:size] for f in CLIENT_FIELDS}
            rest = {f: full[f][size:] for f in CLIENT_FIELDS}
            self.flush()
            self._cols = rest

    def flush(self) -> None:
        """Hand the rows buffered so far on as one chunk (the end of a run calls this)."""
        if self._cols is not None:
            chunk, self._cols = (self._cols if len(self._cols["round"]) else None), None
            if chunk is None:
                return
        elif not self._rows:
            return
        else:
            chunk = _columns(self._rows)
            self._rows = []
        if self.sink is not None:
            self.sink(chunk)
        else:
            self._chunks.append(chunk)

    def chunks(self) -> Iterator[Chunk]:
        if self.sink is not None:
            raise RuntimeError("client-round rows were streamed to a sink; read them from there")
        yield from self._chunks
        if self._rows:
            yield _columns(self._rows)
        elif self._cols is not None and len(self._cols["round"]):
            yield {f: v.copy() if isinstance(v, np.ndarray) else list(v) for f, v in self._cols.items()}

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[ClientRound]:
        for chunk in self.chunks():
            yield from (ClientRound(*row) for row in zip(*map(_values, chunk.values())))

    def __getitem__(self, i: int) -> ClientRound:
        if not -self._len <= i < self._len:
            raise IndexError(i)
        i %= self._len
        for chunk in self.chunks():
            n = len(chunk["round"])
            if i < n:
                return ClientRound(*(_values(col[i:i + 1])[0] for col in chunk.values()))
            i -= n
        raise IndexError(i)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClientLog) and list(self) == list(other)


def _values(column) -> list:
    """A column's Python values (a numpy column's ints and floats as Python ints and floats)."""
    return column.tolist() if isinstance(column, np.ndarray) else column


def _join(a, b):
    """Two pieces of one column, end to end: an array if both are arrays, else a list."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return np.concatenate([a, b])
    return _values(a) + _values(b) if isinstance(a, np.ndarray) else a + _values(b)


@dataclass
class RunRecords:
    rounds: list[RoundRecord] = field(default_factory=list)
    clients: ClientLog = field(default_factory=ClientLog)
    notes: list[str] = field(default_factory=list)  # what the engine must tell the user (a run that stopped early)
    co2_g_by_shift: list[float] = field(default_factory=list)  # the run's CO2 at each of inputs.carbon_shifts_s
    selected_by_group: Counter[int] = field(default_factory=Counter)  # client-rounds per fleet group
    aggregated_by_group: Counter[int] = field(default_factory=Counter)  # completed (aggregated) ones
    cell_bits: Counter[tuple[str, str]] = field(default_factory=Counter)  # (cell, "down" | "up") -> bits moved
    group_bits: Counter[int] = field(default_factory=Counter)  # fleet group -> bits moved, both directions
