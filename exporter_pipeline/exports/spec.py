"""The export definitions file (DESIGN.md, Export definitions file) as pydantic models.

`load_definitions_file` collects every problem at once. Each message names the file,
the export (by name, or by position when it has none) and the field as a JSON pointer
into the document, like seed 003's `source.pointer`:

    exports.yaml: export 'acme_daily' (/exports/0/interval): interval 2m is not one of ...
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from exporter_pipeline.derived.delivery_metrics import DIMENSIONS
from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.exports.catalog import (
    ALL_DATASET_KEYS,
    DATASETS,
    FILTER_FIELDS,
    MAX_METRIC_DIMENSIONS,
    MAX_ON_DEMAND_DAYS,
    METRIC_INTERVALS,
    METRIC_NAMES,
    METRIC_RANGE_LIMITS,
    VIEW_COLUMNS,
)
from exporter_pipeline.exports.formats import FILE_FORMATS, canonical_format

NAME_PATTERN = r"^[a-z0-9_]+$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


EnvName = Annotated[str, Field(pattern=ENV_NAME_PATTERN)]


class LocalOutput(_Strict):
    type: Literal["local"]
    path: str
    # Outputs we manage: retention and erasure may rewrite or remove files there.
    managed: bool = True


class S3Output(_Strict):
    type: Literal["s3"]
    bucket: str
    region: str | None = None
    prefix: str = ""
    endpoint_url_env: EnvName | None = None
    access_key_id_env: EnvName | None = None
    secret_access_key_env: EnvName | None = None
    managed: bool = False


class GCSOutput(_Strict):
    type: Literal["gcs"]
    bucket: str
    prefix: str = ""
    project: str | None = None
    credentials_json_env: EnvName | None = None
    endpoint_url_env: EnvName | None = None
    managed: bool = False


class AzureOutput(_Strict):
    type: Literal["azure"]
    container: str
    prefix: str = ""
    account_url: str | None = None
    account_url_env: EnvName | None = None
    account_name_env: EnvName | None = None
    account_key_env: EnvName | None = None
    connection_string_env: EnvName | None = None
    managed: bool = False


Output = Annotated[LocalOutput | S3Output | GCSOutput | AzureOutput, Field(discriminator="type")]


class OutputRef(_Strict):
    name: str
    path: str = ""

    @field_validator("path")
    @classmethod
    def _relative_path(cls, path: str) -> str:
        parts = [p for p in path.strip("/").split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise ValueError("path must not contain '.' or '..' segments")
        return "/".join(parts)


class WebhookDelivery(_Strict):
    url: Annotated[str, Field(pattern=r"^https?://")]
    secret_env: EnvName
    # Retries of 5xx, 408, 429, timeouts and connection errors, with exponential backoff.
    attempts: Annotated[int, Field(ge=1, le=20)] = 6
    backoff_seconds: Annotated[float, Field(ge=0, le=600)] = 1.0

    @field_validator("url")
    @classmethod
    def _allowed_url(cls, url: str) -> str:
        # Imported here to keep this edit inside the class; both modules are pure.
        from exporter_pipeline.delivery.addresses import webhook_url_problem
        from exporter_pipeline.settings import Settings

        # The address of a name is checked again when the webhook is sent, after resolving.
        problem = webhook_url_problem(url, Settings.from_env().webhook_allow_private)
        if problem:
            raise ValueError(problem)
        return url


class Delivery(_Strict):
    webhook: WebhookDelivery | None = None
    email: list[str] = Field(default_factory=list)

    @field_validator("email")
    @classmethod
    def _emails(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            if not EMAIL_PATTERN.match(address):
                raise ValueError(f"{address!r} is not an email address")
        return addresses


class Schedule(_Strict):
    hour: Annotated[int, Field(ge=0, le=23)] = 0
    minute: Annotated[int, Field(ge=0, le=59)] = 0
    timezone: str = "UTC"
    day_of_week: str | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {zone!r} (use an IANA name like Europe/Berlin)"
            ) from None
        return zone

    @field_validator("day_of_week")
    @classmethod
    def _weekday(cls, day: str | None) -> str | None:
        if day is not None and day.lower() not in WEEKDAYS:
            raise ValueError(f"day_of_week must be one of {', '.join(WEEKDAYS)}")
        return day.lower() if day else None


def _as_utc(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or UTC).astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


class ExportDefinition(_Strict):
    """One export: which tenant's data, shaped how, written where, when, told to whom."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    tenant: Annotated[str, Field(min_length=1)]
    dataset: Literal["raw", "events", "quality", "ads", "metrics", "views", "viewers", "query"]
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
    # metrics (seed 001)
    metrics: list[str] | None = None
    interval: str | None = None
    dimensions: list[str] | None = None
    # views / viewers (seed 003)
    content_type: Literal["live", "recorded"] | None = None
    content_ids: list[str] | None = None
    inclusive_range: bool = True
    list_unfinished_segments: bool = True
    viewer_identifier: str | None = None
    # query (seed 004)
    query: str | None = None

    @field_validator("format")
    @classmethod
    def _format(cls, value: str) -> str:
        fmt = canonical_format(value)
        if fmt not in FILE_FORMATS:
            raise ValueError(f"format {value!r} is not one of csv, parquet, jsonl (ndjson)")
        return fmt

    @field_validator("start", "end", mode="after")
    @classmethod
    def _utc(cls, value: date | datetime | None) -> datetime | None:
        return None if value is None else _as_utc(value)

    @property
    def start_at(self) -> datetime:
        return _as_utc(self.start)

    @property
    def end_at(self) -> datetime | None:
        """Exclusive end of the last partition (`end` names the last partition itself)."""
        if self.end is None:
            return None
        step = {
            "hourly": timedelta(hours=1),
            "daily": timedelta(days=1),
            "weekly": timedelta(weeks=1),
        }[self.cadence]
        return _as_utc(self.end) + step

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> ExportDefinition:
        now: datetime = (info.context or {}).get("now") or datetime.now(UTC)
        errors: list[tuple[str, str]] = []
        dataset = DATASETS[self.dataset]
        set_fields = self.model_fields_set
        for key in ALL_DATASET_KEYS:
            if key in set_fields and key not in dataset.keys:
                errors.append((key, f"{key} does not apply to dataset {self.dataset}"))
        spec = FILE_FORMATS[self.format]
        if self.compression is not None and self.compression not in spec.compressions:
            errors.append(
                (
                    "compression",
                    f"compression {self.compression!r} is not available "
                    f"for {self.format} (choose {', '.join(spec.compressions)})",
                )
            )
        if self.dataset == "query" and self.format != "jsonl":
            errors.append(("format", "a query export writes NDJSON: set format: jsonl"))
        if self.columns is not None:
            if not dataset.columns:
                errors.append(
                    ("columns", f"dataset {self.dataset} has a fixed shape; columns does not apply")
                )
            elif not self.columns:
                errors.append(("columns", "columns must name at least one column"))
            for column in self.columns:
                if dataset.columns and column not in dataset.columns:
                    errors.append(
                        ("columns", f"unknown column {column!r} for dataset {self.dataset}")
                    )
            if len(set(self.columns)) != len(self.columns):
                errors.append(("columns", "columns must not repeat"))
        allowed = (
            FILTER_FIELDS["metrics"]
            if self.dataset == "metrics"
            else VIEW_COLUMNS
            if self.dataset in ("views", "viewers")
            else FILTER_FIELDS["rows"]
            if dataset.shape == "rows"
            else ()
        )
        for field in self.filters:
            if field not in allowed:
                hint = f" (filterable: {', '.join(allowed)})" if allowed else ""
                errors.append(("filters", f"cannot filter {self.dataset} on {field!r}{hint}"))
        # An on-demand request (the launchpad job) passes its exact window in the context.
        start = (info.context or {}).get("window_start") or self.start_at
        # ... and its exact exclusive end; a definition ends after its `end` partition.
        end = (info.context or {}).get("window_end") or self.end_at
        if end is not None and end <= start:
            errors.append(
                (
                    "end",
                    f"end {self.end:%Y-%m-%d %H:%M} is before start {self.start:%Y-%m-%d %H:%M}",
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
        if self.dataset == "metrics":
            errors += self._metric_rules(start, end, now)
        if self.dataset == "query":
            if not (self.query or "").strip():
                errors.append(("query", "a query export needs query: a SQL SELECT"))
            else:
                from exporter_pipeline.exports.query import check_query

                problem = check_query(self.query or "")
                if problem:
                    errors.append(("query", problem))
        if errors:
            raise _FieldErrors(errors)
        return self

    def _metric_rules(
        self, start: datetime, end: datetime | None, now: datetime
    ) -> list[tuple[str, str]]:
        errors: list[tuple[str, str]] = []
        if not self.metrics:
            errors.append(("metrics", f"metrics must list some of {', '.join(METRIC_NAMES)}"))
        for metric in self.metrics or []:
            if metric not in METRIC_NAMES:
                errors.append(
                    ("metrics", f"unknown metric {metric!r} (choose {', '.join(METRIC_NAMES)})")
                )
        if self.interval is None:
            errors.append(("interval", "metrics need an interval"))
        elif self.interval not in METRIC_INTERVALS:
            errors.append(
                (
                    "interval",
                    f"interval {self.interval!r} is not one of {', '.join(METRIC_INTERVALS)}",
                )
            )
        for dimension in self.dimensions or []:
            if dimension not in DIMENSIONS:
                errors.append(
                    (
                        "dimensions",
                        f"unknown dimension {dimension!r} (choose {', '.join(DIMENSIONS)})",
                    )
                )
        if len(self.dimensions or []) > MAX_METRIC_DIMENSIONS:
            errors.append(
                (
                    "dimensions",
                    f"at most {MAX_METRIC_DIMENSIONS} dimensions, got {len(self.dimensions or [])}",
                )
            )
        if self.interval in METRIC_INTERVALS:
            seconds = METRIC_INTERVALS[self.interval]
            for field, moment in (("start", start), ("end", end)):
                if moment is not None and int(moment.timestamp()) % seconds:
                    errors.append(
                        (field, f"{field} must be aligned to the {self.interval} interval")
                    )
            cadence_seconds = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400}[self.cadence]
            if cadence_seconds % seconds:
                errors.append(
                    (
                        "interval",
                        f"interval {self.interval} does not divide a {self.cadence} window",
                    )
                )
            longest, back = METRIC_RANGE_LIMITS[self.interval]
            if end is not None:  # seed 001's limits apply to on-demand (bounded) requests
                if longest is not None and (end - start).total_seconds() > longest:
                    errors.append(
                        (
                            "end",
                            f"interval {self.interval} allows a range of at most "
                            f"{_duration(longest)}",
                        )
                    )
                if back is not None and start < now - timedelta(seconds=back):
                    errors.append(
                        (
                            "start",
                            f"interval {self.interval} allows ranges within "
                            f"the last {_duration(back)} only",
                        )
                    )
        return errors


def _duration(seconds: int) -> str:
    return f"{seconds // 86400} days" if seconds % 86400 == 0 else f"{seconds // 3600} hours"


class _FieldErrors(ValueError):
    """Several rule violations of one export, each with the field it concerns."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(message for _, message in errors))
        self.errors = errors


class DefinitionsFile(BaseModel):
    path: Path
    outputs: dict[str, Output]
    exports: list[ExportDefinition]

    def export(self, name: str) -> ExportDefinition:
        return next(e for e in self.exports if e.name == name)


def _pointer(location: tuple[Any, ...]) -> str:
    return "/" + "/".join(str(part) for part in location)


def describe_errors(error: ValidationError, prefix: tuple[Any, ...]) -> list[tuple[str, str]]:
    found = []
    for item in error.errors():
        context = item.get("ctx", {})
        inner = context.get("error") if context else None
        if isinstance(inner, _FieldErrors):
            found += [(_pointer((*prefix, field)), message) for field, message in inner.errors]
            continue
        location = tuple(p for p in item["loc"] if not str(p).startswith("function-"))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = f"unknown field {location[-1]!r}"
        elif item["type"] == "missing":
            message = f"field {location[-1]!r} is required"
        found.append((_pointer((*prefix, *location)), message))
    return found


def parse_definitions(document: Any, path: Path, now: datetime | None = None) -> DefinitionsFile:
    """Validate a parsed document; raise one DefinitionError listing every problem."""
    where = str(path)
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise DefinitionError(f"{where}: the top level must be a mapping with outputs/exports")
    problems: list[str] = []
    for key in document:
        if key not in ("outputs", "exports"):
            problems.append(f"{where}: unknown top-level key {key!r} (expected outputs, exports)")

    outputs: dict[str, Output] = {}
    raw_outputs = document.get("outputs") or {}
    if not isinstance(raw_outputs, dict):
        problems.append(f"{where}: field 'outputs' must be a mapping of output names")
        raw_outputs = {}
    output_model = _OutputHolder
    for name, body in raw_outputs.items():
        if not re.match(NAME_PATTERN, str(name)):
            problems.append(
                f"{where}: output {name!r} (/outputs/{name}): an output name must match [a-z0-9_]+"
            )
            continue
        try:
            outputs[name] = output_model.model_validate({"output": body}).output
        except ValidationError as error:
            for pointer, message in describe_errors(error, ()):
                pointer = pointer.replace("/output", f"/outputs/{name}", 1)
                problems.append(f"{where}: output {name!r} ({pointer}): {message}")

    exports: list[ExportDefinition] = []
    raw_exports = document.get("exports") or []
    if not isinstance(raw_exports, list):
        problems.append(f"{where}: field 'exports' must be a list of export definitions")
        raw_exports = []
    seen: dict[str, int] = {}
    for index, body in enumerate(raw_exports):
        label = f"export #{index}"
        if isinstance(body, dict) and isinstance(body.get("name"), str):
            label = f"export {body['name']!r}"
        if not isinstance(body, dict):
            problems.append(f"{where}: {label} (/exports/{index}): must be a mapping")
            continue
        output_name = (
            (body.get("output") or {}).get("name") if isinstance(body.get("output"), dict) else None
        )
        if isinstance(output_name, str) and output_name not in raw_outputs:
            known = ", ".join(sorted(raw_outputs)) or "none declared"
            output_problem = (
                f"{where}: {label} (/exports/{index}/output/name): unknown output "
                f"{output_name!r} (outputs: {known})"
            )
        else:
            output_problem = None
        try:
            export = ExportDefinition.model_validate(body, context={"now": now})
        except ValidationError as error:
            for pointer, message in describe_errors(error, ("exports", index)):
                problems.append(f"{where}: {label} ({pointer}): {message}")
            problems += [output_problem] if output_problem else []
            continue
        if export.name in seen:
            problems.append(
                f"{where}: {label} (/exports/{index}/name): name {export.name!r} is "
                f"already used by /exports/{seen[export.name]}"
            )
        seen.setdefault(export.name, index)
        problems += [output_problem] if output_problem else []
        exports.append(export)
    if problems:
        raise DefinitionError("\n".join(problems))
    return DefinitionsFile(path=path, outputs=outputs, exports=exports)


class _OutputHolder(BaseModel):
    output: Output


def load_definitions_file(path: Path, now: datetime | None = None) -> DefinitionsFile:
    """The validated file; a missing or empty file declares no outputs and no exports."""
    if not path.exists():
        return DefinitionsFile(path=path, outputs={}, exports=[])
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise DefinitionError(f"{path}: not valid YAML: {error}") from None
    return parse_definitions(document, path, now)
