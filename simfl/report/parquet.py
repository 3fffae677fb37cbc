"""Client-round rows to Parquet while the run goes, and CSV from that file afterwards when it is small."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from simfl.report.tables import CLIENT_COLUMNS
from simfl.sim.records import Chunk

# clients.csv is written beside clients.parquet for runs under this many client-rounds.
CSV_MAX_ROWS = 1_000_000
# Measured on the shipped scenarios: clients.csv 237-239 bytes a row; clients.parquet (zstd) 8 bytes a
# row for the homogeneous quickstart, 46 for mixed-fleet: `simfl validate` estimates with these.
CSV_BYTES_PER_ROW = 240
PARQUET_BYTES_PER_ROW = 50

_TEXT = {"device", "network", "status", "cell"}
_INTS = {"round", "client", "group", "version_downloaded", "version_aggregated"}
SCHEMA = pa.schema([(c, pa.string() if c in _TEXT else pa.int64() if c in _INTS else pa.float64())
                    for c in CLIENT_COLUMNS])


class ParquetSink:
    """A ClientLog sink: each chunk of rows becomes a row group of `path` (zstd), in CSV column order."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._writer = pq.ParquetWriter(self.path, SCHEMA, compression="zstd")
        self.rows = 0

    def __call__(self, chunk: Chunk) -> None:
        self._writer.write_table(pa.table({c: chunk[c] for c in CLIENT_COLUMNS}, schema=SCHEMA))
        self.rows += len(chunk["round"])

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def write_frame(df: pd.DataFrame, path: Path) -> None:
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, compression="zstd")


def parquet_to_csv(parquet: Path, csv: Path) -> None:
    """The same rows as CSV, one row group at a time (memory stays at one chunk)."""
    header = True
    with open(csv, "w", newline="") as out:
        for batch in pq.ParquetFile(parquet).iter_batches():
            batch.to_pandas().to_csv(out, index=False, header=header)
            header = False
        if header:  # no rows: the header alone
            pd.DataFrame(columns=CLIENT_COLUMNS).to_csv(out, index=False)


def read_rounds(parquet: Path, rounds: list[int]) -> pd.DataFrame:
    """The client-round rows of the given rounds (for plots), without reading the rest into memory."""
    return pq.read_table(parquet, filters=[("round", "in", list(rounds))]).to_pandas()
