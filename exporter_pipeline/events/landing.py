"""Landing files: where they are for an hour and how each format is decoded to text columns.

Decoding turns any landing format into one *staged* shape: every event field as the
text that arrived (null when absent), plus where the record came from and, where the
format itself was broken (bad JSON, not an object), the reason. Typing and validation
happen afterwards, once, in `ingest.py`, the same way for every format.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, Final

import orjson
import polars as pl

from exporter_pipeline.events.landing_read import (
    TOO_LARGE_PREFIX_BYTES,
    LandingLimits,
    LineChunk,
    line_chunks,
)
from exporter_pipeline.events.schema import EVENT_COLUMNS

LANDING_SUFFIXES: Final = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".csv", ".parquet")
# The caps when a caller gives none (tests, the reference decoder); ingest reads settings.
DEFAULT_LIMITS: Final = LandingLimits()
# The reason of a record longer than EXPORTER_MAX_RECORD_BYTES.
TOO_LARGE: Final = "record too large"
# Rows of a CSV or Parquet landing file decoded at a time.
TABULAR_CHUNK_ROWS: Final = 65_536
# A run of lines polars refuses is halved down to this many, then decoded one by one.
_ONE_BY_ONE_LINES: Final = 16

STAGED_SCHEMA: Final = pl.Schema(
    {
        **{name: pl.String() for name in EVENT_COLUMNS},
        "_source": pl.String(),
        "_record": pl.Int64(),
        "_raw": pl.String(),
        "_decode_reason": pl.String(),
    }
)
_TEXT_FIELDS: Final = tuple(name for name in EVENT_COLUMNS if name != "data")
_FAST_SCHEMA: Final = pl.Schema(
    {name: pl.Struct({}) if name == "data" else pl.String() for name in EVENT_COLUMNS}
)


def landing_format(key: str) -> str | None:
    """`jsonl`, `csv` or `parquet` for a landing key, None for files we do not read."""
    name = key.rsplit("/", 1)[-1]
    if name.startswith("."):
        return None
    for suffix in LANDING_SUFFIXES:
        if name.endswith(suffix):
            return "jsonl" if "json" in suffix else suffix.lstrip(".")
    return None


def _number_text(value: int | float) -> str:
    """A JSON number as text, exactly as polars' JSON reader writes it: never an exponent."""
    if isinstance(value, int):
        return str(value)
    # repr is the shortest text that reads back to the same double; written out positionally.
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        # Booleans are never valid event values; keep them recognisable for the reason.
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number_text(value)
    return orjson.dumps(value).decode()


def _data_texts(raw: pl.Series) -> pl.Series:
    """The `data` object of each (valid JSON) line as compact JSON text."""
    return raw.str.json_path_match("$.data")


def _one_by_one(
    lines: list[bytes], numbers: list[int], source: str, limit: int | None = None
) -> pl.DataFrame:
    """Staged rows decoded record by record: every way a line can be broken gets its reason.

    A line longer than `limit` bytes is not parsed: its first bytes are kept, as too large.
    """
    columns: dict[str, list[Any]] = {name: [] for name in STAGED_SCHEMA.names()}
    with_data = []
    for line, number in zip(lines, numbers, strict=True):
        # Keep the record exactly as it arrived, minus its line ending.
        line = line.rstrip(b"\r\n")
        if not line.strip():
            continue
        reason = None
        record: Any = None
        if limit is not None and len(line) > limit:
            line, reason = line[:TOO_LARGE_PREFIX_BYTES], TOO_LARGE
        else:
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
        elif isinstance(data, dict):
            with_data.append(len(columns["_record"]))
        for name in EVENT_COLUMNS:
            columns[name].append(_as_text(fields.get(name)))
        columns["_source"].append(source)
        columns["_record"].append(number)
        columns["_raw"].append(line.decode("utf-8", errors="replace"))
        columns["_decode_reason"].append(reason)
    frame = pl.DataFrame(columns, schema=STAGED_SCHEMA)
    if with_data:
        # The same text the fast path writes (polars' JSON), not orjson's own rendering.
        rows = pl.Series(with_data, dtype=pl.UInt32)
        texts = _data_texts(frame["_raw"].gather(rows))
        frame = frame.with_columns(
            frame["data"].scatter(rows, texts.fill_null(frame["data"].gather(rows)))
        )
    return frame


def _fast(
    text: bytes, rows: pl.Series, raw: pl.Series, chunk: LineChunk, source: str
) -> pl.DataFrame | None:
    """Staged rows of `rows` (whose lines joined are `text`) decoded by polars in one pass,
    or None when polars refuses a line.

    Polars reads every field as text; `data` as an empty struct, which only checks that
    it is an object (its text is taken from the line afterwards, only where present).
    """
    try:
        fields = pl.read_ndjson(io.BytesIO(text), schema=_FAST_SCHEMA)
    except pl.exceptions.PolarsError:
        return None
    if fields.height != len(rows):
        return None
    data = pl.repeat(None, len(rows), dtype=pl.String, eager=True).alias("data")
    with_data = fields["data"].is_not_null().arg_true()
    if len(with_data):
        data = data.scatter(with_data, _data_texts(raw.gather(with_data)))
    return fields.with_columns(
        data,
        pl.lit(source).alias("_source"),
        chunk.number_series(rows).alias("_record"),
        raw,
        pl.lit(None, pl.String).alias("_decode_reason"),
    )


def _decoded(chunk: LineChunk, source: str) -> pl.DataFrame:
    """Staged rows of one chunk of lines, in line order.

    Polars decodes the lines that look like JSON objects, in one pass; a run of lines it
    refuses is halved until the broken ones are found. Lines that are not objects, hold
    a nested value in an event field, or that polars refuses are decoded one by one.
    """
    lines, limit = chunk.lines, chunk.max_record_bytes
    if chunk.too_large:  # `lines` holds the first bytes of one record, the rest was skipped
        return _one_by_one(lines, chunk.numbers([0]), source, limit=0)
    try:
        raw = pl.Series("_raw", lines, dtype=pl.Binary).cast(pl.String).str.strip_chars_end("\r\n")
    except pl.exceptions.PolarsError:  # a line is not UTF-8: Python decodes with replacement
        return _one_by_one(lines, chunk.numbers(list(range(len(lines)))), source, limit)
    trimmed = raw.str.strip_chars(" \t")
    # Lines longer than the limit go one by one, where they are quarantined unparsed.
    looks_like_object = (
        trimmed.str.starts_with("{") & trimmed.str.ends_with("}") & (raw.str.len_bytes() <= limit)
    ).fill_null(False)
    candidates = looks_like_object.arg_true()
    rest: list[int] = (~looks_like_object).arg_true().to_list()
    frames = []
    pending = [candidates] if len(candidates) else []
    while pending:
        rows = pending.pop()
        if len(rows) == len(lines):
            frame = _fast(chunk.text, rows, raw, chunk, source)
        else:
            text = b"\n".join([lines[row] for row in rows.to_list()])
            frame = _fast(text, rows, raw.gather(rows), chunk, source)
        if frame is None:
            if len(rows) <= _ONE_BY_ONE_LINES:
                rest += rows.to_list()
            else:
                half = len(rows) // 2
                pending += [rows[half:], rows[:half]]
            continue
        # Polars writes a nested value in an event field its own way: those rows go one by one.
        nested = frame.select(
            pl.any_horizontal(
                pl.col(_TEXT_FIELDS).str.ends_with("}") | pl.col(_TEXT_FIELDS).str.ends_with("]")
            ).fill_null(False)
        ).to_series()
        if nested.any():
            rest += rows.filter(nested).to_list()
            frame = frame.filter(~nested)
        frames.append(frame)
    if rest:
        frames.append(_one_by_one([lines[row] for row in rest], chunk.numbers(rest), source, limit))
    if len(frames) == 1:
        return frames[0]
    return pl.concat(frames).sort("_record")


def jsonl_frames(
    path: Path, source: str, limits: LandingLimits = DEFAULT_LIMITS
) -> Iterator[pl.DataFrame]:
    """Staged rows of a JSON Lines file, one frame per chunk, in line order."""
    for chunk in line_chunks(path, limits):
        yield _decoded(chunk, source)


def jsonl_frames_one_by_one(
    path: Path, source: str, limits: LandingLimits = DEFAULT_LIMITS
) -> Iterator[pl.DataFrame]:
    """The same rows as `jsonl_frames`, every record decoded in Python (the reference)."""
    for chunk in line_chunks(path, limits):
        limit = 0 if chunk.too_large else chunk.max_record_bytes
        yield _one_by_one(chunk.lines, chunk.numbers(list(range(len(chunk.lines)))), source, limit)


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


def staged_chunks(
    path: Path, source: str, fmt: str, limits: LandingLimits = DEFAULT_LIMITS
) -> Iterator[Callable[[], pl.DataFrame]]:
    """One landing file as bounded chunks of staged rows, in record order.

    Each item decodes its chunk when called, so callers can decode chunks in parallel
    while the file is read in order.
    """
    if fmt == "jsonl":
        for chunk in line_chunks(path, limits):
            yield partial(_decoded, chunk, source)
        return
    if fmt == "csv":
        scan = pl.scan_csv(path, infer_schema=False)
    elif fmt == "parquet":
        scan = pl.scan_parquet(path)
    else:
        raise ValueError(f"unknown landing format {fmt!r}")
    for frame in _tabular_lazy(scan, source).collect_batches(chunk_size=TABULAR_CHUNK_ROWS):
        yield partial(_already_decoded, frame)


def _already_decoded(frame: pl.DataFrame) -> pl.DataFrame:
    return frame
