"""Sinks: a lazy frame streamed to one local file per format (dlt's WRITER_SPECS idea).

Text formats (CSV, JSON Lines) write timestamps as ISO-8601 UTC with microseconds and a
`Z`; CSV has a header and quotes per RFC 4180 and turns nested values into JSON text.
Parquet keeps native types. Every sink streams (polars `sink_*`): an hour of any size
is written without holding it in memory. `formats.FILE_FORMATS` maps a format to its sink.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

import polars as pl

TEXT_TIMESTAMP_FORMAT: Final = "%Y-%m-%dT%H:%M:%S%.6fZ"
ROW_GROUP_ROWS: Final = 128 * 1024


def _text_timestamps(frame: pl.LazyFrame) -> pl.LazyFrame:
    schema = frame.collect_schema()
    return frame.with_columns(
        pl.col(n).dt.convert_time_zone("UTC").dt.strftime(TEXT_TIMESTAMP_FORMAT)
        for n, t in schema.items()
        if isinstance(t, pl.Datetime)
    )


def _flat(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Nested columns as JSON text: CSV cells hold text, not lists or structs."""
    schema = frame.collect_schema()
    nested = [n for n, t in schema.items() if isinstance(t, pl.List | pl.Struct | pl.Array)]
    if not nested:
        return frame
    return frame.with_columns(
        pl.struct(pl.col(n).alias("v")).struct.json_encode().str.slice(5).str.head(-1).alias(n)
        for n in nested
    )


# Each writer returns its sink as a lazy query, so the row count can ride the same scan.
def write_csv(frame: pl.LazyFrame, path: Path, compression: str | None) -> pl.LazyFrame:
    return _flat(frame).sink_csv(  # type: ignore[call-overload]  # compression was checked against its FileFormat
        path,
        compression=compression or "uncompressed",
        datetime_format=TEXT_TIMESTAMP_FORMAT,
        check_extension=False,
        lazy=True,
    )


def write_jsonl(frame: pl.LazyFrame, path: Path, compression: str | None) -> pl.LazyFrame:
    return _text_timestamps(frame).sink_ndjson(  # type: ignore[call-overload]  # compression was checked against its FileFormat
        path,
        compression=compression or "uncompressed",
        check_extension=False,
        lazy=True,
    )


def write_parquet(frame: pl.LazyFrame, path: Path, compression: str | None) -> pl.LazyFrame:
    return frame.sink_parquet(  # type: ignore[call-overload]  # compression was checked against its FileFormat
        path,
        compression=compression or "snappy",
        row_group_size=ROW_GROUP_ROWS,
        lazy=True,
    )


Writer = Callable[[pl.LazyFrame, Path, str | None], pl.LazyFrame]
