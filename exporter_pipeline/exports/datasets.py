"""The data sets an export can select, each one object carrying its behaviour: its
definition model, the lake data sets it reads, the columns it writes and how it selects
a window's rows, as lazy polars frames over local lake files. `catalog.DATASETS` lists
them.

Every frame starts with the tenant filter, before anything else, so no later step can
see another tenant's rows. Row data sets are built per hour; aggregated ones over a
whole window.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import ClassVar, Protocol, TypeVar

import polars as pl

from exporter_pipeline.derived.delivery_metrics import DIMENSIONS, METRICS
from exporter_pipeline.events.schema import EVENT_TIME_DTYPE, event_types_of
from exporter_pipeline.exports.definition import (
    ExportBase,
    ExportDefinition,
    ExportFields,
    MetricsExport,
    QueryExport,
    ViewersExport,
    ViewsExport,
)
from exporter_pipeline.exports.fields import METRIC_INTERVALS, VIEW_COLUMNS, VIEWER_COLUMNS
from exporter_pipeline.exports.query import QUERY_TABLES, QueryLimits, run_query
from exporter_pipeline.lake import scan_by_row_group
from exporter_pipeline.settings import Settings

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def tenant_rows(export: ExportDefinition, files: list[Path]) -> pl.LazyFrame:
    """The tenant's rows of some lake files: the only way a data set reads the lake."""
    source = scan_by_row_group(files[0]) if len(files) == 1 else pl.scan_parquet(files)
    return source.filter(pl.col("tenant") == export.tenant)


def _filters(export: ExportDefinition, rename: dict[str, str] | None = None) -> pl.Expr:
    condition = pl.lit(True)
    for field, values in export.filters.items():
        column = (rename or {}).get(field, field)
        condition = condition & pl.col(column).cast(pl.String).is_in(values)
    return condition


def _chosen(export: ExportDefinition, every: tuple[str, ...]) -> list[str]:
    """The columns an export chose, else every column of its data set."""
    return list(export.columns) if export.columns else list(every)


def _instant(moment: datetime) -> pl.Expr:
    """`moment` as an event_time literal; built from an integer, 20 times cheaper than
    `pl.lit(datetime)`, which counts when a backfill cuts hundreds of small hours."""
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    return pl.lit(micros, dtype=pl.Int64).cast(EVENT_TIME_DTYPE)


def event_rows(
    export: ExportDefinition,
    hour_file: Path,
    start: datetime,
    end: datetime,
    category: str | None = None,
) -> pl.LazyFrame:
    """Event rows of one hour file, cut to [start, end), of one category or all."""
    frame = tenant_rows(export, [hour_file])
    if category is not None:
        frame = frame.filter(pl.col("event_type").is_in(event_types_of(category)))
    return (
        frame.filter(_filters(export))
        .filter((pl.col("event_time") >= _instant(start)) & (pl.col("event_time") < _instant(end)))
        .select(_chosen(export, export.selectable_columns))
    )


def _segment_filter(export: ViewsExport, start: datetime, end: datetime) -> pl.Expr:
    """Seed 003's range rules for segments against the requested [start, end).

    inclusive_range (default): segments that started in the range, plus those that
    started before it and finished inside it. inclusive_range false: only segments
    that started in the range and finished in it (or are unfinished). In both,
    list_unfinished_segments false drops segments with no finished_at.
    """
    started_in = (pl.col("started_at") >= start) & (pl.col("started_at") < end)
    finished_in = (pl.col("finished_at") >= start) & (pl.col("finished_at") < end)
    unfinished = pl.col("finished_at").is_null()
    if export.inclusive_range:
        condition = started_in | ((pl.col("started_at") < start) & finished_in.fill_null(False))
    else:
        condition = started_in & (finished_in.fill_null(False) | unfinished)
    if not export.list_unfinished_segments:
        condition = condition & ~unfinished
    if export.content_type is not None:
        condition = condition & (pl.col("content_type") == export.content_type)
    if export.content_ids:
        condition = condition & pl.col("content_id").is_in(export.content_ids)
    return condition & _filters(export)


def view_rows(
    export: ViewsExport, files: list[Path], start: datetime, end: datetime
) -> pl.LazyFrame:
    return (
        tenant_rows(export, files)
        .filter(_segment_filter(export, start, end))
        .sort(["started_at", "view_id"])
        .select(_chosen(export, VIEW_COLUMNS))
    )


def viewers(
    export: ViewersExport, files: list[Path], start: datetime, end: datetime
) -> pl.LazyFrame:
    """One row per viewer (seed 003 /viewers) over the window's segments."""
    segments = tenant_rows(export, files).filter(_segment_filter(export, start, end))
    if export.viewer_identifier:
        segments = segments.filter(
            pl.col("viewer_identifier").str.contains(export.viewer_identifier, literal=True)
        )
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
        .select(_chosen(export, VIEWER_COLUMNS))
    )


def metrics(
    export: MetricsExport, files: list[Path], start: datetime, end: datetime
) -> pl.LazyFrame:
    """Seed 001 export rows: per interval and dimension values, the chosen metrics."""
    assert export.interval is not None and export.metrics
    step_ms = METRIC_INTERVALS[export.interval] * 1000
    minutes = METRIC_INTERVALS[export.interval] // 60
    dimensions = export.dimensions or []
    rows = (
        tenant_rows(export, files)
        .filter(_filters(export, DIMENSIONS))
        .filter((pl.col("minute") >= start) & (pl.col("minute") < end))
        .with_columns(timestamp=(pl.col("minute").dt.epoch("ms") // step_ms) * step_ms)
    )
    sums = {name: pl.col(column).sum().alias(name) for name, column in METRICS.items()}
    # sessions: the average over the interval's minutes of distinct active sessions,
    # a minute without sessions counting as 0.
    sums["sessions"] = (pl.col("sessions").sum() / minutes).alias("sessions")
    return (
        rows.group_by(["timestamp", *(DIMENSIONS[d] for d in dimensions)])
        .agg([sums[m] for m in export.metrics])
        .rename({DIMENSIONS[d]: d for d in dimensions})
        .sort(["timestamp", *dimensions], nulls_last=True)
        .select(metric_columns(export))
    )


def metric_columns(export: MetricsExport) -> list[str]:
    return ["timestamp", *(export.dimensions or []), *(export.metrics or [])]


def query_limits(export: QueryExport, settings: Settings | None = None) -> QueryLimits:
    """The caps of the export's query runs: the operator's, lowered by the export's own."""
    settings = settings or Settings.from_env()
    operator = QueryLimits(
        memory_mb=settings.query_memory_mb,
        timeout_s=settings.query_timeout_s,
        max_rows=settings.query_max_rows,
        temp_mb=settings.query_temp_mb,
    )
    return operator.lowered(**(export.limits.model_dump() if export.limits else {}))


# The column each lake data set's rows are placed in time by.
TIME_COLUMNS = {
    "raw_events": "event_time",
    "view_segments": "started_at",
    "delivery_metrics": "minute",
}


class LakeHours(Protocol):
    """Local copies of a lake data set's hourly files (the execution provides them)."""

    def hour(self, dataset: str, hour: datetime) -> Path: ...

    def hours(self, dataset: str, start: datetime, end: datetime) -> list[Path]: ...


M = TypeVar("M", bound=ExportBase)


def _as(export: ExportDefinition, model: type[M]) -> M:
    if not isinstance(export, model):
        raise TypeError(f"export {export.name} is not a {model.__name__}")
    return export


@dataclass(frozen=True)
class DataSet(ABC):
    """A data set an export selects: its definition model and the lake data sets it reads."""

    name: str
    # The definition model: the keys of this data set and the rules on them.
    model: type[ExportBase]
    # The lake data sets it reads (the export asset depends on them).
    sources: tuple[str, ...]
    # rows: one file per hour; aggregate: one file per window.
    shape: ClassVar[str]
    # For event data sets: the event category the rows are limited to (None: all).
    category: str | None = None
    # Whether the rows written are counted again against the raw lake (`reconcile.py`).
    reconciled: ClassVar[bool] = False

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns `columns:` may select; empty means the data set has a fixed shape."""
        return self.model.selectable_columns

    @cached_property
    def keys(self) -> tuple[str, ...]:
        """The keys a definition of this data set has beyond every export's."""
        return tuple(k for k in self.model.model_fields if k not in ExportFields.model_fields)

    def output_columns(self, export: ExportDefinition) -> list[str]:
        """The columns an export writes, in order (the manifest lists them)."""
        return _chosen(export, self.columns)


@dataclass(frozen=True)
class RowsDataSet(DataSet):
    """Rows written one file per hour of the window."""

    shape: ClassVar[str] = "rows"

    @abstractmethod
    def hour_rows(
        self,
        export: ExportDefinition,
        lake: LakeHours,
        hour: datetime,
        start: datetime,
        end: datetime,
    ) -> pl.LazyFrame:
        """The rows of one hour file of the window [start, end)."""


@dataclass(frozen=True)
class AggregateDataSet(DataSet):
    """Rows computed over the whole window, written as one file."""

    shape: ClassVar[str] = "aggregate"

    @abstractmethod
    def window_rows(
        self, export: ExportDefinition, lake: LakeHours, start: datetime, end: datetime, work: Path
    ) -> pl.LazyFrame:
        """The rows of the whole window [start, end); `work` holds any local files."""


@dataclass(frozen=True)
class EventRows(RowsDataSet):
    """raw, or the events of one category (events, quality, ads)."""

    reconciled: ClassVar[bool] = True

    def hour_rows(
        self,
        export: ExportDefinition,
        lake: LakeHours,
        hour: datetime,
        start: datetime,
        end: datetime,
    ) -> pl.LazyFrame:
        cut_start, cut_end = max(start, hour), min(end, hour + timedelta(hours=1))
        hour_file = lake.hour("raw_events", hour)
        return event_rows(export, hour_file, cut_start, cut_end, self.category)


@dataclass(frozen=True)
class ViewRows(RowsDataSet):
    """Seed 003's view segments of each hour, by the range rules of the whole window."""

    def hour_rows(
        self,
        export: ExportDefinition,
        lake: LakeHours,
        hour: datetime,
        start: datetime,
        end: datetime,
    ) -> pl.LazyFrame:
        views = _as(export, ViewsExport)
        return view_rows(views, [lake.hour("view_segments", hour)], start, end)


@dataclass(frozen=True)
class HourFilesAggregate(AggregateDataSet):
    """An aggregate of the window's hour files of its one lake source."""

    def window_rows(
        self, export: ExportDefinition, lake: LakeHours, start: datetime, end: datetime, work: Path
    ) -> pl.LazyFrame:
        [source] = self.sources
        return self.aggregate(export, lake.hours(source, start, end), start, end)

    @abstractmethod
    def aggregate(
        self, export: ExportDefinition, files: list[Path], start: datetime, end: datetime
    ) -> pl.LazyFrame:
        """The window's rows from its hour files."""


@dataclass(frozen=True)
class Viewers(HourFilesAggregate):
    def aggregate(
        self, export: ExportDefinition, files: list[Path], start: datetime, end: datetime
    ) -> pl.LazyFrame:
        return viewers(_as(export, ViewersExport), files, start, end)


@dataclass(frozen=True)
class Metrics(HourFilesAggregate):
    def output_columns(self, export: ExportDefinition) -> list[str]:
        return metric_columns(_as(export, MetricsExport))

    def aggregate(
        self, export: ExportDefinition, files: list[Path], start: datetime, end: datetime
    ) -> pl.LazyFrame:
        return metrics(_as(export, MetricsExport), files, start, end)


@dataclass(frozen=True)
class Query(AggregateDataSet):
    """Seed 004: the export's SELECT over the tenant's tables of the window."""

    def window_rows(
        self, export: ExportDefinition, lake: LakeHours, start: datetime, end: datetime, work: Path
    ) -> pl.LazyFrame:
        query = _as(export, QueryExport)
        tables = self._tables(query, lake, start, end, work)
        answer = run_query(query.query or "", tables, work / "query", query_limits(query))
        return pl.scan_parquet(answer.path)

    @staticmethod
    def _tables(
        export: QueryExport, lake: LakeHours, start: datetime, end: datetime, work: Path
    ) -> dict[str, Path]:
        """The tenant's rows of the window, one local Parquet file per table.

        The tenant and window cut is ours, made before the query engine sees any row.
        """
        tables = {}
        for table, dataset in QUERY_TABLES.items():
            rows = tenant_rows(export, lake.hours(dataset, start, end))
            time_column = TIME_COLUMNS[dataset]
            rows = rows.filter((pl.col(time_column) >= start) & (pl.col(time_column) < end))
            local = work / f"table-{table}.parquet"
            rows.sink_parquet(local)
            tables[table] = local
        return tables
