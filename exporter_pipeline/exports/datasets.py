"""The data sets an export can select, each one object carrying its behaviour: its
definition model, the lake data sets it reads, the columns it writes and how it selects
a window's rows, as lazy polars frames over local lake files. `catalog.DATASETS` lists
them; the selections themselves are pure functions of `selections.py`, shared with the
HTTP API's queries.

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
from exporter_pipeline.exports.query import QUERY_TABLES, QueryLimits, run_query
from exporter_pipeline.exports.selections import (
    chosen,
    metric_columns,
    metrics,
    row_filters,
    tenant_rows,
    view_rows,
    viewers,
)
from exporter_pipeline.settings import Settings

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
        frame.filter(row_filters(export))
        .filter((pl.col("event_time") >= _instant(start)) & (pl.col("event_time") < _instant(end)))
        .select(chosen(export, export.selectable_columns))
    )


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
        return chosen(export, self.columns)


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
