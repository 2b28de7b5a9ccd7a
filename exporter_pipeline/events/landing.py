"""Landing files: where they are for an hour and how each format is decoded to text columns.

Decoding turns any landing format into one *staged* shape: every event field as the
text that arrived (null when absent), plus where the record came from and, where the
format itself was broken (bad JSON, not an object), the reason. Typing and validation
happen afterwards, once, in `ingest.py`, the same way for every format.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from exporter_pipeline.events.schema import EVENT_COLUMNS

LANDING_SUFFIXES: Final = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".csv", ".parquet")
# Records per decoded batch: bounds memory whatever the size of a landing file.
DECODE_BATCH_ROWS: Final = 65_536

STAGED_META: Final = ("_source", "_record", "_raw", "_decode_reason")
STAGED_SCHEMA: Final = pl.Schema(
    {
        **{name: pl.String() for name in EVENT_COLUMNS},
        "_source": pl.String(),
        "_record": pl.Int64(),
        "_raw": pl.String(),
        "_decode_reason": pl.String(),
    }
)
_STAGED_ARROW: Final = pl.DataFrame(schema=STAGED_SCHEMA).to_arrow().schema


def hour_prefix(hour: datetime) -> str:
    """The landing (and lake) folder of one UTC hour: `dt=YYYY-MM-DD/hour=HH/`."""
    return f"dt={hour:%Y-%m-%d}/hour={hour:%H}/"


def landing_format(key: str) -> str | None:
    """`jsonl`, `csv` or `parquet` for a landing key, None for files we do not read."""
    name = key.rsplit("/", 1)[-1]
    if name.startswith("."):
        return None
    for suffix in LANDING_SUFFIXES:
        if name.endswith(suffix):
            return "jsonl" if "json" in suffix else suffix.lstrip(".")
    return None


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        # Booleans are never valid event values; keep them recognisable for the reason.
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    return orjson.dumps(value).decode()


def _open_text(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]  # GzipFile is a binary IO
    return open(path, "rb")


def _jsonl_batches(path: Path, source: str) -> Iterator[pa.RecordBatch]:
    columns: dict[str, list[Any]] = {name: [] for name in _STAGED_ARROW.names}

    def flush() -> pa.RecordBatch:
        batch = pa.RecordBatch.from_pydict(columns, schema=_STAGED_ARROW)
        for values in columns.values():
            values.clear()
        return batch

    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            # Keep the record exactly as it arrived, minus its line ending.
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            raw = line.decode("utf-8", errors="replace")
            reason = None
            record: Any = None
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                reason = "malformed JSON"
            if reason is None and not isinstance(record, dict):
                reason = "record is not a JSON object"
            fields = record if reason is None else {}
            data = fields.get("data")
            if reason is None and data is not None and not isinstance(data, dict):
                reason = "data is not a JSON object"
            for name in EVENT_COLUMNS:
                columns[name].append(_as_text(fields.get(name)))
            columns["_source"].append(source)
            columns["_record"].append(number)
            columns["_raw"].append(raw)
            columns["_decode_reason"].append(reason)
            if len(columns["_record"]) >= DECODE_BATCH_ROWS:
                yield flush()
    if columns["_record"]:
        yield flush()


def _data_reason(text: str | None) -> str | None:
    if text is None or text == "":
        return None
    try:
        return None if isinstance(orjson.loads(text), dict) else "data is not a JSON object"
    except orjson.JSONDecodeError:
        return "data is not a JSON object"


def _tabular_lazy(frame: pl.LazyFrame, source: str) -> pl.LazyFrame:
    """Stage a CSV or Parquet scan: known fields as text, the raw record as JSON."""
    present = frame.collect_schema()
    as_text = []
    for name in EVENT_COLUMNS:
        dtype = present.get(name)
        if dtype is None:
            as_text.append(pl.lit(None, pl.String).alias(name))
        elif isinstance(dtype, pl.Struct | pl.List):
            as_text.append(pl.col(name).struct.json_encode().alias(name))
        elif isinstance(dtype, pl.Datetime):
            as_text.append(pl.col(name).dt.to_string("%Y-%m-%dT%H:%M:%S%.f%:z").alias(name))
        else:
            as_text.append(pl.col(name).cast(pl.String).alias(name))
    raw_fields = [
        pl.col(n).cast(pl.String) if not isinstance(t, pl.Struct | pl.List) else pl.col(n)
        for n, t in present.items()
    ]
    return (
        frame.with_row_index("_record", offset=1)
        .select(
            *as_text,
            pl.lit(source).alias("_source"),
            pl.col("_record").cast(pl.Int64),
            pl.struct(raw_fields).struct.json_encode().alias("_raw"),
        )
        .with_columns(
            pl.col("data")
            .map_elements(_data_reason, return_dtype=pl.String, skip_nulls=True)
            .alias("_decode_reason")
        )
    )


def stage_landing_file(path: Path, source: str, fmt: str, staged: Path) -> None:
    """Decode one landing file into a staged Parquet file at `staged`."""
    if fmt == "jsonl":
        with pq.ParquetWriter(staged, _STAGED_ARROW) as writer:
            for batch in _jsonl_batches(path, source):
                writer.write_batch(batch)
        return
    if fmt == "csv":
        frame = pl.scan_csv(path, infer_schema=False)
    elif fmt == "parquet":
        frame = pl.scan_parquet(path)
    else:
        raise ValueError(f"unknown landing format {fmt!r}")
    _tabular_lazy(frame, source).sink_parquet(staged)
