"""One export definition as pydantic models: the fields and rules every data set shares
(`ExportBase`), and one model per kind of data set holding only its own keys.

`ExportDefinition` is the union of those models; `validation.validate_export` picks the
model from `dataset` through the data set registry (`catalog.DATASETS`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from exporter_pipeline.destinations.outputs import StrictModel, named
from exporter_pipeline.events.schema import EVENT_COLUMNS
from exporter_pipeline.exports.definition_parts import (
    Delivery,
    FieldErrors,
    OutputRef,
    QueryLimitsSpec,
    Schedule,
    shown,
)
from exporter_pipeline.exports.fields import (
    EVENT_FILTER_FIELDS,
    MAX_ON_DEMAND_DAYS,
    METRIC_FILTER_FIELDS,
    METRIC_INTERVALS,
    VIEW_COLUMNS,
    VIEWER_COLUMNS,
)
from exporter_pipeline.exports.formats import FILE_FORMATS, canonical_format
from exporter_pipeline.exports.metric_rules import (
    alignment_rules,
    choice_rules,
    range_rules,
    window_rules,
)
from exporter_pipeline.windows import CADENCE_STEP, utc

# Dates of a definition fall within these years: Dagster's partitions format years with
# four digits, and `0001-01-01` became '1-01-01', which no partition key parses back.
FIRST_YEAR, LAST_YEAR = 2000, 2100
Rules = list[tuple[str, str]]


def in_years(value: date | datetime) -> datetime | None:
    """`value` in UTC if it falls within FIRST_YEAR … LAST_YEAR, else None. The year is
    checked first: converting 0001-01-01T00:00+01:00 to UTC would overflow, and so would
    a window's arithmetic near 9999."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        return None
    moment = utc(value)
    return moment if FIRST_YEAR <= moment.year <= LAST_YEAR else None


def years_rule(name: str, value: date | datetime) -> str:
    return (
        f"{name} {value.isoformat()} is not between {FIRST_YEAR}-01-01 and {LAST_YEAR}-12-31 (UTC)"
    )


class ExportFields(StrictModel):
    """The keys every export has, with their own checks (no rule across keys)."""

    name: str
    tenant: str
    dataset: str
    columns: list[str] | None = None
    filters: dict[str, list[str]] = Field(default_factory=dict)
    format: str = "csv"
    compression: str | None = None
    cadence: Literal["hourly", "daily", "weekly"] = "daily"
    start: date | datetime
    end: date | datetime | None = None
    schedule: Schedule | None = None
    output: OutputRef
    delivery: Delivery | None = None
    description: str | None = None
    # Split a row data set's hourly file into numbered parts above this size.
    max_file_bytes: Annotated[int, Field(gt=0)] | None = None
    # Opt-in: re-export a window automatically when one of its raw hours is re-materialised.
    reexport_late_data: bool = False

    @field_validator("format")
    @classmethod
    def _format(cls, value: str) -> str:
        fmt = canonical_format(value)
        if fmt not in FILE_FORMATS:
            raise ValueError(f"format {value!r} is not one of csv, parquet, jsonl (ndjson)")
        return fmt

    @field_validator("name", "tenant")
    @classmethod
    def _names(cls, value: str, info: ValidationInfo) -> str:
        return named(str(info.field_name), value)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _moment(cls, value: Any, info: ValidationInfo) -> Any:
        # YAML gives dates; JSON and YAML strings that YAML could not read are parsed here,
        # so every form has one message and no date reaches Dagster unchecked.
        if value is None or isinstance(value, date):
            return value
        if isinstance(value, str):
            for parse in (date.fromisoformat, datetime.fromisoformat):
                try:
                    return parse(value)
                except ValueError:
                    pass
        raise ValueError(
            f"{info.field_name} must be a date (YYYY-MM-DD) or an ISO 8601 date and time, "
            f"not {shown(value)}"
        )

    @field_validator("start", "end", mode="after")
    @classmethod
    def _utc(cls, value: date | datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        moment = in_years(value)
        if moment is None:
            raise ValueError(years_rule(str(info.field_name), value))
        return moment

    @property
    def start_at(self) -> datetime:
        return utc(self.start)

    @property
    def end_at(self) -> datetime | None:
        """Exclusive end of the last partition (`end` names the last partition itself)."""
        if self.end is None:
            return None
        return utc(self.end) + CADENCE_STEP[self.cadence]


class ExportBase(ExportFields):
    """An export: which tenant's data, shaped how, written where, when, told to whom.

    The rules across keys run once every key is valid; a subclass adds its data set's
    own through `format_rules` and `dataset_rules`.
    """

    # What `columns:` may select (empty: a fixed shape) and what `filters:` may name.
    selectable_columns: ClassVar[tuple[str, ...]] = ()
    filter_fields: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> ExportBase:
        context = info.context or {}
        # An on-demand request (the launchpad job) passes its exact window in the context;
        # a definition ends after its `end` partition.
        start = context.get("window_start") or self.start_at
        end = context.get("window_end") or self.end_at
        now: datetime = context.get("now") or datetime.now(UTC)
        errors = self._shape_rules() + self._window_rules(start, end)
        errors += self.dataset_rules(start, end, now)
        if errors:
            raise FieldErrors(errors)
        return self

    def format_rules(self) -> Rules:
        """The data set's own rules on format and compression."""
        return []

    def dataset_rules(self, start: datetime, end: datetime | None, now: datetime) -> Rules:
        """The data set's own rules on its own keys and window."""
        return []

    def _shape_rules(self) -> Rules:
        errors: Rules = []
        spec = FILE_FORMATS[self.format]
        if self.compression is not None and self.compression not in spec.compressions:
            errors.append(
                (
                    "compression",
                    f"compression {self.compression!r} is not available "
                    f"for {self.format} (choose {', '.join(spec.compressions)})",
                )
            )
        errors += self.format_rules()
        allowed = self.selectable_columns
        if self.columns is not None:
            if not allowed:
                errors.append(
                    ("columns", f"dataset {self.dataset} has a fixed shape; columns does not apply")
                )
            elif not self.columns:
                errors.append(("columns", "columns must name at least one column"))
            for column in self.columns:
                if allowed and column not in allowed:
                    errors.append(
                        ("columns", f"unknown column {column!r} for dataset {self.dataset}")
                    )
            if len(set(self.columns)) != len(self.columns):
                errors.append(("columns", "columns must not repeat"))
        for field in self.filters:
            if field not in self.filter_fields:
                fields = self.filter_fields
                hint = f" (filterable: {', '.join(fields)})" if fields else ""
                errors.append(("filters", f"cannot filter {self.dataset} on {field!r}{hint}"))
        return errors

    def _window_rules(self, start: datetime, end: datetime | None) -> Rules:
        errors: Rules = []
        if end is not None and end <= start:
            # A request's window (no `end` of its own) is refused in its own words by the
            # request's check (defs.on_demand).
            if self.end is not None:
                errors.append(
                    (
                        "end",
                        f"end {self.end:%Y-%m-%d %H:%M} is before start "
                        f"{self.start:%Y-%m-%d %H:%M}",
                    )
                )
        elif end is not None and end - start > timedelta(days=MAX_ON_DEMAND_DAYS):
            errors.append(
                (
                    "end",
                    f"a bounded export covers at most {MAX_ON_DEMAND_DAYS} days; "
                    f"this one covers {(end - start).days}",
                )
            )
        if self.cadence != "hourly" and (start.hour or start.minute):
            errors.append(("start", f"a {self.cadence} export starts at midnight UTC"))
        if self.schedule is not None:
            if self.cadence == "weekly" and self.schedule.day_of_week is None:
                errors.append(("schedule", "a weekly schedule needs day_of_week"))
            if self.cadence != "weekly" and self.schedule.day_of_week is not None:
                errors.append(("schedule", "day_of_week applies to weekly cadence only"))
        return errors


class RowsExport(ExportBase):
    """raw, events, quality, ads: event rows, one file per hour."""

    selectable_columns: ClassVar[tuple[str, ...]] = EVENT_COLUMNS
    filter_fields: ClassVar[tuple[str, ...]] = EVENT_FILTER_FIELDS


class MetricsExport(ExportBase):
    """Seed 001's delivery metrics per interval and dimensions."""

    filter_fields: ClassVar[tuple[str, ...]] = METRIC_FILTER_FIELDS

    metrics: list[str] | None = None
    interval: str | None = None
    dimensions: list[str] | None = None

    def dataset_rules(self, start: datetime, end: datetime | None, now: datetime) -> Rules:
        errors = self._choice_rules()
        if self.interval in METRIC_INTERVALS:
            errors += self._interval_rules(self.interval, start, end, now)
        return errors

    def _choice_rules(self) -> Rules:
        return choice_rules(self.metrics, self.interval, self.dimensions)

    def _interval_rules(
        self, interval: str, start: datetime, end: datetime | None, now: datetime
    ) -> Rules:
        errors = alignment_rules(interval, {"start": start, "end": end})
        # An on-demand task's window is its request's (no `end` of its own): one range,
        # as seed 001 queries one; a definition's executions are its cadence's windows.
        on_demand = end is not None and self.end is None
        if not on_demand:
            errors += window_rules(interval, self.cadence)
        if end is not None:  # the whole range of a bounded export or of a task
            errors += range_rules(interval, start, end, now)
        return errors


class ViewsExport(ExportBase):
    """Seed 003's view segments, one file per hour."""

    selectable_columns: ClassVar[tuple[str, ...]] = VIEW_COLUMNS
    filter_fields: ClassVar[tuple[str, ...]] = VIEW_COLUMNS

    content_type: Literal["live", "recorded"] | None = None
    content_ids: list[str] | None = None
    inclusive_range: bool = True
    list_unfinished_segments: bool = True


class ViewersExport(ViewsExport):
    """Seed 003's viewers: one row per viewer over the window's segments."""

    selectable_columns: ClassVar[tuple[str, ...]] = VIEWER_COLUMNS

    viewer_identifier: str | None = None


class QueryExport(ExportBase):
    """Seed 004's SQL export: one SELECT over the tenant's tables of the window."""

    # Seed 004 writes query results as JSON Lines: the default, and the only format.
    format: str = "jsonl"
    query: str | None = None
    limits: QueryLimitsSpec | None = None

    def format_rules(self) -> Rules:
        if self.format != "jsonl":
            return [("format", "a query export writes NDJSON: set format: jsonl")]
        return []

    def dataset_rules(self, start: datetime, end: datetime | None, now: datetime) -> Rules:
        if not (self.query or "").strip():
            return [("query", "a query export needs query: a SQL SELECT")]
        from exporter_pipeline.exports.query import check_query

        problem = check_query(self.query or "")
        return [("query", problem)] if problem else []


# Every export is one of these; `validation.validate_export` picks one by `dataset`.
ExportDefinition = RowsExport | MetricsExport | ViewsExport | ViewersExport | QueryExport
