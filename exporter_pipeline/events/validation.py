"""Typing and validation of staged landing rows: the rules every record must pass.

Staged rows are text (`landing.py`); here each column gets its type with polars
expressions that yield null where a value cannot be typed (never an exception, never a
panic), and `rejection_reason` names the first rule a record breaks (README, Quarantine).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import polars as pl

from exporter_pipeline.events.schema import (
    CONTENT_TYPES,
    COUNTER_COLUMNS,
    EVENT_COLUMNS,
    EVENT_TIME_DTYPE,
    EVENT_TYPES,
    FLOAT_COLUMNS,
    INTEGER_COLUMNS,
)

ISO_FORMATS: Final = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z")
# Epoch milliseconds polars can hold as a datetime and print: years 0001 to 9999. A
# value outside is quarantined; cast unbounded it panics (`out-of-range datetime`).
EPOCH_MS_MIN: Final = -62_135_596_800_000
EPOCH_MS_MAX: Final = 253_402_300_799_999
_EPOCH_DIGITS: Final = r"^-?\d+$"


def _blank_is_null(name: str) -> pl.Expr:
    text = pl.col(name).str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text)


def _parsed_event_time() -> pl.Expr:
    text = _blank_is_null("event_time")
    number = pl.when(text.str.contains(_EPOCH_DIGITS)).then(text.cast(pl.Int64, strict=False))
    epoch_ms = (
        pl.when(number.is_between(EPOCH_MS_MIN, EPOCH_MS_MAX))
        .then(number)
        .otherwise(None)
        .cast(pl.Datetime("ms", "UTC"))
        .cast(EVENT_TIME_DTYPE)
    )
    iso = [
        text.str.to_datetime(fmt, strict=False, time_zone="UTC", time_unit="us")
        for fmt in ISO_FORMATS
    ]
    return pl.coalesce(epoch_ms, *iso)


def typed_columns() -> list[pl.Expr]:
    """Expressions turning staged text columns into the typed event columns."""
    typed = []
    for name in EVENT_COLUMNS:
        if name == "event_time":
            typed.append(_parsed_event_time().alias(name))
        elif name in INTEGER_COLUMNS:
            typed.append(_blank_is_null(name).cast(pl.Int64, strict=False).alias(name))
        elif name in FLOAT_COLUMNS:
            typed.append(_blank_is_null(name).cast(pl.Float64, strict=False).alias(name))
        elif name == "data":
            typed.append(pl.col(name))
        else:
            typed.append(_blank_is_null(name).alias(name))
    return typed


def rejection_reason(hour: datetime) -> pl.Expr:
    """The first rule a typed record breaks, or null: evaluated on typed + staged columns."""
    end = hour + timedelta(hours=1)
    rules: list[tuple[pl.Expr, str | pl.Expr]] = [
        (pl.col("_decode_reason").is_not_null(), pl.col("_decode_reason")),
        (pl.col("event_id").is_null(), "missing event_id"),
        (pl.col("tenant").is_null(), "missing tenant"),
        (pl.col("_event_time_text").is_null(), "missing event_time"),
        (
            pl.col("event_time").is_null() & pl.col("_event_time_text").str.contains(_EPOCH_DIGITS),
            "event_time out of range",
        ),
        (pl.col("event_time").is_null(), "unparseable event_time"),
        (
            (pl.col("event_time") < hour) | (pl.col("event_time") >= end),
            "event_time outside partition hour",
        ),
        (pl.col("event_type").is_null(), "missing event_type"),
        (~pl.col("event_type").is_in(EVENT_TYPES), "unknown event_type"),
    ]
    for name in (*INTEGER_COLUMNS, *FLOAT_COLUMNS):
        rules.append(
            (pl.col(name).is_null() & pl.col(f"_{name}_text").is_not_null(), f"invalid {name}")
        )
    rules.append(
        (pl.col("position_s").is_nan() | pl.col("position_s").is_infinite(), "invalid position_s")
    )
    for name in COUNTER_COLUMNS:
        rules.append((pl.col(name) < 0, f"negative {name}"))
    rules += [
        (pl.col("position_s") < 0, "negative position_s"),
        (pl.col("bitrate_kbps") < 0, "negative bitrate_kbps"),
        (
            pl.col("content_type").is_not_null() & ~pl.col("content_type").is_in(CONTENT_TYPES),
            "unknown content_type",
        ),
        (
            pl.col("country").is_not_null() & ~pl.col("country").str.contains(r"^[A-Z]{2}$"),
            "invalid country",
        ),
    ]
    expr: pl.Expr | None = None
    for condition, reason in reversed(rules):
        value = pl.lit(reason) if isinstance(reason, str) else reason
        expr = (
            pl.when(condition.fill_null(False)).then(value).otherwise(expr)
            if expr is not None
            else pl.when(condition.fill_null(False)).then(value)
        )
    assert expr is not None
    return expr.cast(pl.String)


def classified(staged: pl.LazyFrame, hour: datetime) -> pl.LazyFrame:
    """Staged rows typed, each with `_reason` (null for a valid record)."""
    originals = [
        pl.col(n).str.strip_chars().replace("", None).alias(f"_{n}_text")
        for n in ("event_time", *INTEGER_COLUMNS, *FLOAT_COLUMNS)
    ]
    return (
        staged.with_columns(originals)
        .with_columns(typed_columns())
        .with_columns(rejection_reason(hour).alias("_reason"))
    )
