"""Ingest one hour of landing files into the lake: validate, type, dedupe, quarantine.

Every record that arrives is accounted for: it is written to the hour's events file,
dropped as a repeat of an earlier `event_id`, or quarantined with the first reason it
failed, or, for a user erased earlier, dropped before anything else and kept nowhere.
`rows_in == rows_written + duplicates + quarantined + erased` always holds.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import polars as pl

from exporter_pipeline.checksums import sha256_of
from exporter_pipeline.destinations import Destination
from exporter_pipeline.events.landing import (
    STAGED_SCHEMA,
    hour_prefix,
    landing_format,
    stage_landing_file,
)
from exporter_pipeline.events.schema import (
    CONTENT_TYPES,
    COUNTER_COLUMNS,
    EVENT_COLUMNS,
    EVENT_SCHEMA,
    EVENT_TIME_DTYPE,
    EVENT_TYPES,
    FLOAT_COLUMNS,
    INTEGER_COLUMNS,
    QUARANTINE_SCHEMA,
)
from exporter_pipeline.lake import ROW_GROUP_ROWS, hourly_key
from exporter_pipeline.privacy.tombstones import erased_pairs, lake_salt, load_tombstones

ISO_FORMATS: Final = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z")


@dataclass
class IngestReport:
    hour: datetime
    landing_files: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    rows_in: int = 0
    rows_written: int = 0
    duplicates: int = 0
    quarantined: int = 0
    # Records of users erased earlier (right to erasure): dropped, kept nowhere.
    erased: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    rows_by_tenant: dict[str, int] = field(default_factory=dict)
    bytes_written: int = 0
    # sha256 of the events file: the hour's data version (late data changes it).
    sha256: str = ""


def _blank_is_null(name: str) -> pl.Expr:
    text = pl.col(name).str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text)


def _parsed_event_time() -> pl.Expr:
    text = _blank_is_null("event_time")
    epoch_ms = (
        pl.when(text.str.contains(r"^-?\d+$"))
        .then(text.cast(pl.Int64, strict=False))
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


def ingest_hour(
    hour: datetime,
    landing: Destination,
    lake: Destination,
) -> IngestReport:
    """Read every landing file of `hour` and (re)write that hour in the lake atomically."""
    report = IngestReport(hour=hour)
    prefix = hour_prefix(hour)
    with tempfile.TemporaryDirectory(prefix="exporter-ingest-") as tmp:
        work = Path(tmp)
        staged_files = []
        for number, info in enumerate(landing.list(prefix)):
            fmt = landing_format(info.key)
            if fmt is None:
                report.ignored_files.append(info.key)
                continue
            report.landing_files.append(info.key)
            staged_file = work / f"staged-{number:05d}.parquet"
            with landing.local_copy(info.key) as local:
                stage_landing_file(local, info.key, fmt, staged_file)
            staged_files.append(staged_file)

        staged = (
            pl.scan_parquet(staged_files) if staged_files else pl.LazyFrame(schema=STAGED_SCHEMA)
        )
        tombstones = load_tombstones(lake)
        # Counted before erasure only when something can be erased; otherwise the count of
        # classified rows below is the count of rows in (one pass over the staged data).
        rows_in = staged.select(pl.len()).collect().item() if tombstones else None
        if tombstones:
            erased = erased_pairs(staged, tombstones, lake_salt(lake))
            staged = staged.join(
                erased.lazy(),
                how="anti",
                nulls_equal=False,
                left_on=[pl.col("tenant").str.strip_chars(), pl.col("user_id").str.strip_chars()],
                right_on=["tenant", "user_id"],
            )
        rows = classified(staged, hour)

        events_file = work / "events.parquet"
        valid = rows.filter(pl.col("_reason").is_null())
        (
            valid.select(list(EVENT_COLUMNS))
            .cast(EVENT_SCHEMA)
            .unique(subset=["event_id"], keep="first", maintain_order=True)
            .sink_parquet(events_file, row_group_size=ROW_GROUP_ROWS, compression="zstd")
        )
        quarantine_file = work / "quarantine.parquet"
        (
            rows.filter(pl.col("_reason").is_not_null())
            .select(
                pl.col("_reason").alias("reason"),
                pl.col("_source").alias("source_file"),
                pl.col("_record").alias("record_number"),
                pl.col("_raw").alias("record"),
            )
            .cast(QUARANTINE_SCHEMA)
            .sink_parquet(quarantine_file, row_group_size=ROW_GROUP_ROWS, compression="zstd")
        )

        counts = rows.select(
            pl.len().alias("rows_in"), pl.col("_reason").is_null().sum().alias("valid")
        ).collect()
        classified_rows = int(counts["rows_in"][0])
        report.rows_in = classified_rows if rows_in is None else int(rows_in)
        report.erased = report.rows_in - classified_rows
        written = pl.scan_parquet(events_file)
        by_tenant = written.group_by("tenant").len().sort("tenant").collect()
        report.rows_by_tenant = dict(zip(by_tenant["tenant"], by_tenant["len"], strict=True))
        report.rows_written = sum(report.rows_by_tenant.values())
        report.duplicates = int(counts["valid"][0]) - report.rows_written
        reasons = pl.scan_parquet(quarantine_file).group_by("reason").len().collect()
        report.reasons = dict(sorted(zip(reasons["reason"], reasons["len"], strict=True)))
        report.quarantined = sum(report.reasons.values())
        assert report.rows_in == (
            report.rows_written + report.duplicates + report.quarantined + report.erased
        )

        # Events first, then quarantine: both keys are replaced whole, never appended to.
        lake.put_file(events_file, hourly_key("raw_events", hour))
        report.bytes_written = events_file.stat().st_size
        report.sha256 = sha256_of(events_file)
        if report.quarantined:
            lake.put_file(quarantine_file, hourly_key("raw_events_quarantine", hour))
        else:
            lake.delete(hourly_key("raw_events_quarantine", hour))
    return report
