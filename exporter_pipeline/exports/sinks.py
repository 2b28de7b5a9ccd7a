"""Sinks: a lazy frame streamed to one local file per format (dlt's WRITER_SPECS idea).

Text formats (CSV, JSON Lines) write timestamps as ISO-8601 UTC with microseconds and a
`Z`, at any depth (a viewer's segments hold timestamps too); CSV has a header and quotes
per RFC 4180 and turns nested values into JSON text. Parquet keeps native types. Every
sink streams (polars `sink_*`): an hour of any size is written without holding it in
memory. `formats.FILE_FORMATS` maps a format to its sink.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

import polars as pl

TEXT_TIMESTAMP_FORMAT: Final = "%Y-%m-%dT%H:%M:%S%.6fZ"
ROW_GROUP_ROWS: Final = 128 * 1024


def _text_timestamps(frame: pl.LazyFrame, nested_only: bool = False) -> pl.LazyFrame:
    """Every timestamp, top level or inside structs and lists, as the one text format
    (`nested_only`: those inside only, the CSV writer formats the top level itself)."""
    schema = frame.collect_schema()
    return frame.with_columns(
        _as_text(pl.col(n), t).alias(n)
        for n, t in schema.items()
        if _has_datetime(t) and not (nested_only and isinstance(t, pl.Datetime))
    )


def _has_datetime(dtype: pl.DataType) -> bool:
    if isinstance(dtype, pl.Datetime):
        return True
    if isinstance(dtype, pl.Struct):
        return any(_has_datetime(f.dtype) for f in dtype.fields)  # type: ignore[arg-type]  # a field's dtype is an instance here
    if isinstance(dtype, pl.List):
        return _has_datetime(dtype.inner)  # type: ignore[arg-type]  # an instance here
    return False


def _as_text(value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """`value` with its timestamps as TEXT_TIMESTAMP_FORMAT (naive ones taken as UTC)."""
    if isinstance(dtype, pl.Datetime):
        utc = (
            value.dt.replace_time_zone("UTC")
            if dtype.time_zone is None
            else value.dt.convert_time_zone("UTC")
        )
        return utc.dt.strftime(TEXT_TIMESTAMP_FORMAT)
    if isinstance(dtype, pl.Struct):
        return value.struct.with_fields(
            _as_text(pl.field(f.name), f.dtype)  # type: ignore[arg-type]  # an instance here
            for f in dtype.fields
            if _has_datetime(f.dtype)  # type: ignore[arg-type]  # an instance here
        )
    assert isinstance(dtype, pl.List)
    return value.list.eval(_as_text(pl.element(), dtype.inner))  # type: ignore[arg-type]  # an instance here


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
    return _flat(_text_timestamps(frame, nested_only=True)).sink_csv(  # type: ignore[call-overload]  # compression was checked against its FileFormat
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
