"""The lake's key layout and its hourly Parquet files (pure: no Dagster here)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import polars as pl
import pyarrow.parquet as pq
from polars.io.plugins import register_io_source

from exporter_pipeline.checksums import sha256_of
from exporter_pipeline.destinations import Destination
from exporter_pipeline.windows import hour_prefix

# Row groups stay small enough for later readers to stream an hour in bounded memory.
ROW_GROUP_ROWS: Final = 128 * 1024

# Every hourly data set in the lake: its folder and the one file an hour holds.
HOURLY_DATASET_FILES: Final[dict[str, str]] = {
    "raw_events": "events.parquet",
    "raw_events_quarantine": "quarantine.parquet",
    "view_segments": "segments.parquet",
    "delivery_metrics": "metrics.parquet",
}


def hourly_key(dataset: str, hour: datetime) -> str:
    """`<dataset>/dt=YYYY-MM-DD/hour=HH/<file>`: the hive layout of the lake."""
    return f"{dataset}/{hour_prefix(hour)}{HOURLY_DATASET_FILES[dataset]}"


def write_hourly(
    lake: Destination, dataset: str, hour: datetime, frame: pl.LazyFrame, work_dir: Path
) -> tuple[str, int, int, str]:
    """Stream `frame` to a temporary Parquet file, then put it at the hour's key atomically.

    Returns (key, rows, bytes, sha256).
    """
    key = hourly_key(dataset, hour)
    local = work_dir / HOURLY_DATASET_FILES[dataset]
    frame.sink_parquet(local, compression="zstd", row_group_size=ROW_GROUP_ROWS)
    rows = pl.scan_parquet(local).select(pl.len()).collect().item()
    lake.put_file(local, key)
    return key, int(rows), local.stat().st_size, sha256_of(local)


def scan_by_row_group(file: Path) -> pl.LazyFrame:
    """A lake Parquet file as a lazy frame that decodes one row group at a time.

    polars' own Parquet scan decodes far ahead of a slower sink (pola-rs/polars#28569):
    writing an hour of 5 M events to CSV peaked near 1 GB, whatever the prefetch
    settings. Here each row group is its own small query, pulled when the sink wants the
    next batch, so memory follows the row group, not the hour (`register_io_source` is
    marked unstable: polars is pinned by the lock, and the tests read such files).
    A file of one row group is scanned as it is.
    """
    metadata = pq.read_metadata(file)
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    scan = pl.scan_parquet(file)
    if len(sizes) < 2:
        return scan

    def batches(
        columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None, _size: int | None
    ) -> Iterator[pl.DataFrame]:
        offset, left = 0, n_rows
        for size in sizes:
            group = scan.slice(offset, size)
            offset += size
            if predicate is not None:
                group = group.filter(predicate)
            if columns is not None:
                group = group.select(columns)
            batch = group.collect()
            if left is not None:
                batch = batch.head(left)
                left -= batch.height
            yield batch
            if left == 0:
                return

    return register_io_source(batches, schema=scan.collect_schema())


_HOUR_KEY = re.compile(r"^(?P<dataset>[a-z_]+)/dt=(?P<day>\d{4}-\d{2}-\d{2})/hour=(?P<hour>\d{2})/")


def lake_hours(lake: Destination, dataset: str) -> list[datetime]:
    """Every hour the lake holds a file of `dataset` for, oldest first."""
    hours = set()
    for info in lake.list(f"{dataset}/"):
        match = _HOUR_KEY.match(info.key)
        if match and info.key == hourly_key(dataset, _parse_hour(match)):
            hours.add(_parse_hour(match))
    return sorted(hours)


def _parse_hour(match: re.Match[str]) -> datetime:
    return datetime.strptime(f"{match['day']} {match['hour']}", "%Y-%m-%d %H").replace(tzinfo=UTC)
