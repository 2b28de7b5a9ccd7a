"""How the lake data sets are selected for one tenant, as lazy polars frames: view
segments by seed 003's range rules, viewers, and seed 001's metrics per interval.

These are pure functions of a *selection*: anything that names the tenant, its filters
and the data set's own keys. An export definition is one (`definition.py`); a query of
the HTTP API is another (the dataclasses below), so both read the lake the same way.

Every frame starts with the tenant filter, before anything else, so no later step can
see another tenant's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final, Protocol

import polars as pl

from exporter_pipeline.derived.delivery_metrics import DIMENSIONS, METRICS
from exporter_pipeline.exports.fields import METRIC_INTERVALS, VIEW_COLUMNS, VIEWER_COLUMNS
from exporter_pipeline.lake import scan_by_row_group


class TenantSelection(Protocol):
    """Whose rows, which values of which fields, and which columns (None: all)."""

    @property
    def tenant(self) -> str: ...

    @property
    def filters(self) -> dict[str, list[str]]: ...

    @property
    def columns(self) -> list[str] | None: ...


class SegmentSelection(TenantSelection, Protocol):
    """Seed 003's keys of a views selection."""

    @property
    def content_type(self) -> str | None: ...

    @property
    def content_ids(self) -> list[str] | None: ...

    @property
    def inclusive_range(self) -> bool: ...

    @property
    def list_unfinished_segments(self) -> bool: ...


class ViewerSelection(SegmentSelection, Protocol):
    @property
    def viewer_identifier(self) -> str | None: ...


class MetricSelection(TenantSelection, Protocol):
    """Seed 001's keys of a metrics selection."""

    @property
    def metrics(self) -> list[str] | None: ...

    @property
    def interval(self) -> str | None: ...

    @property
    def dimensions(self) -> list[str] | None: ...


@dataclass(frozen=True)
class SegmentQuery:
    """A views or viewers selection made by a request rather than an export definition."""

    tenant: str
    content_type: str | None = None
    content_ids: list[str] | None = None
    inclusive_range: bool = True
    list_unfinished_segments: bool = True
    viewer_identifier: str | None = None
    filters: dict[str, list[str]] = field(default_factory=dict)
    columns: list[str] | None = None


@dataclass(frozen=True)
class MetricQuery:
    """A metrics selection made by a request rather than an export definition."""

    tenant: str
    metrics: list[str]
    interval: str
    dimensions: list[str] = field(default_factory=list)
    filters: dict[str, list[str]] = field(default_factory=dict)
    columns: list[str] | None = None


def tenant_rows(selection: TenantSelection, files: list[Path]) -> pl.LazyFrame:
    """The tenant's rows of some lake files: the only way a data set reads the lake."""
    source = scan_by_row_group(files[0]) if len(files) == 1 else pl.scan_parquet(files)
    return source.filter(pl.col("tenant") == selection.tenant)


def row_filters(selection: TenantSelection, rename: dict[str, str] | None = None) -> pl.Expr:
    condition = pl.lit(True)
    for name, values in selection.filters.items():
        column = (rename or {}).get(name, name)
        condition = condition & pl.col(column).cast(pl.String).is_in(values)
    return condition


def chosen(selection: TenantSelection, every: tuple[str, ...]) -> list[str]:
    """The columns a selection chose, else every column of its data set."""
    return list(selection.columns) if selection.columns else list(every)


def segment_filter(selection: SegmentSelection, start: datetime, end: datetime) -> pl.Expr:
    """Seed 003's range rules for segments against the requested [start, end).

    inclusive_range (default): segments that started in the range, plus those that
    started before it and finished inside it. inclusive_range false: only segments
    that started in the range and finished in it (or are unfinished). In both,
    list_unfinished_segments false drops segments with no finished_at.
    """
    started_in = (pl.col("started_at") >= start) & (pl.col("started_at") < end)
    finished_in = (pl.col("finished_at") >= start) & (pl.col("finished_at") < end)
    unfinished = pl.col("finished_at").is_null()
    if selection.inclusive_range:
        condition = started_in | ((pl.col("started_at") < start) & finished_in.fill_null(False))
    else:
        condition = started_in & (finished_in.fill_null(False) | unfinished)
    if not selection.list_unfinished_segments:
        condition = condition & ~unfinished
    if selection.content_type is not None:
        condition = condition & (pl.col("content_type") == selection.content_type)
    if selection.content_ids:
        condition = condition & pl.col("content_id").is_in(selection.content_ids)
    return condition & row_filters(selection)


def segments_in(
    selection: SegmentSelection, files: list[Path], start: datetime, end: datetime
) -> pl.LazyFrame:
    """The tenant's segments of [start, end) by the range rules, in no particular order."""
    return tenant_rows(selection, files).filter(segment_filter(selection, start, end))


def view_rows(
    selection: SegmentSelection, files: list[Path], start: datetime, end: datetime
) -> pl.LazyFrame:
    return (
        segments_in(selection, files, start, end)
        .sort(["started_at", "view_id"])
        .select(chosen(selection, VIEW_COLUMNS))
    )


def viewer_segments(
    selection: ViewerSelection, files: list[Path], start: datetime, end: datetime
) -> pl.LazyFrame:
    """The segments `viewers` groups: those of the range, of the matching viewers."""
    segments = segments_in(selection, files, start, end)
    if selection.viewer_identifier:
        segments = segments.filter(
            pl.col("viewer_identifier").str.contains(selection.viewer_identifier, literal=True)
        )
    return segments


def viewers_of(selection: ViewerSelection, segments: pl.LazyFrame) -> pl.LazyFrame:
    """One row per viewer of some segments (seed 003 /viewers), by viewer_identifier."""
    segment_fields = [c for c in VIEW_COLUMNS if c != "viewer_identifier"]
    return (
        segments.sort(["viewer_identifier", "started_at", "view_id"])
        .group_by("viewer_identifier", maintain_order=True)
        .agg(
            last_activity=pl.max_horizontal(
                pl.col("finished_at").max(), pl.col("started_at").max()
            ),
            videos_watched=pl.col("content_id").n_unique().cast(pl.Int64),
            segments=pl.struct(segment_fields),
        )
        .select(chosen(selection, VIEWER_COLUMNS))
    )


def viewers(
    selection: ViewerSelection, files: list[Path], start: datetime, end: datetime
) -> pl.LazyFrame:
    """One row per viewer (seed 003 /viewers) over the window's segments."""
    return viewers_of(selection, viewer_segments(selection, files, start, end))


# Decimals of `sessions`: one session in one minute of a 14d interval is 0.00005.
SESSIONS_DECIMALS: Final = 6


def metrics(
    selection: MetricSelection, files: list[Path], start: datetime, end: datetime
) -> pl.LazyFrame:
    """Seed 001 export rows: per interval and dimension values, the chosen metrics."""
    assert selection.interval is not None and selection.metrics
    step_ms = METRIC_INTERVALS[selection.interval] * 1000
    minutes = METRIC_INTERVALS[selection.interval] // 60
    dimensions = selection.dimensions or []
    rows = (
        tenant_rows(selection, files)
        .filter(row_filters(selection, DIMENSIONS))
        .filter((pl.col("minute") >= start) & (pl.col("minute") < end))
        .with_columns(timestamp=(pl.col("minute").dt.epoch("ms") // step_ms) * step_ms)
    )
    sums = {name: pl.col(column).sum().alias(name) for name, column in METRICS.items()}
    # sessions: the average over the interval's minutes of distinct active sessions,
    # a minute without sessions counting as 0, rounded so no float noise is printed
    # (6 sessions over 10 minutes is 0.6, not 0.6000000000000001).
    average = pl.col("sessions").sum() / minutes
    sums["sessions"] = average.round(SESSIONS_DECIMALS).alias("sessions")
    return (
        rows.group_by(["timestamp", *(DIMENSIONS[d] for d in dimensions)])
        .agg([sums[m] for m in selection.metrics])
        .rename({DIMENSIONS[d]: d for d in dimensions})
        .sort(["timestamp", *dimensions], nulls_last=True)
        .select(metric_columns(selection))
    )


def metric_columns(selection: MetricSelection) -> list[str]:
    return ["timestamp", *(selection.dimensions or []), *(selection.metrics or [])]
