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
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from exporter_pipeline.derived.delivery_metrics import DIMENSIONS
from exporter_pipeline.destinations.outputs import (
    EnvName,
    Output,
    StrictModel,
    named,
)
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
from exporter_pipeline.exports.ownership import (
    Placed,
    location_conflicts,
    output_root,
    segments,
)
from exporter_pipeline.names import (
    RESERVED_EXPORT_NAMES,
    dagster_name,
    dagster_name_clashes,
    export_job_name,
    name_problem,
)
from exporter_pipeline.windows import CADENCE_STEP, WEEKDAYS, utc

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# Dates of a definition fall within these years: Dagster's partitions format years with
# four digits, and `0001-01-01` became '1-01-01', which no partition key parses back.
FIRST_YEAR, LAST_YEAR = 2000, 2100


class OutputRef(StrictModel):
    name: str
    path: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return named("output name", name)

    @field_validator("path")
    @classmethod
    def _relative_path(cls, path: str) -> str:
        parts = [p for p in path.strip("/").split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise ValueError("path must not contain '.' or '..' segments")
        return "/".join(parts)


class WebhookDelivery(StrictModel):
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


class Delivery(StrictModel):
    webhook: WebhookDelivery | None = None
    email: list[str] = Field(default_factory=list)

    @field_validator("email")
    @classmethod
    def _emails(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            if not EMAIL_PATTERN.match(address):
                raise ValueError(f"{address!r} is not an email address")
        return addresses


class Schedule(StrictModel):
    hour: Annotated[int, Field(ge=0, le=23)] = 0
    minute: Annotated[int, Field(ge=0, le=59)] = 0
    timezone: str = "UTC"
    day_of_week: str | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        # A folder of the zone database ("Europe") or an over-long name is an OSError.
        except (ZoneInfoNotFoundError, ValueError, OSError):
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


class QueryLimitsSpec(StrictModel):
    """An export's own caps for its query runs; each only lowers the operator's setting."""

    memory_mb: Annotated[int, Field(ge=64)] | None = None
    timeout_s: Annotated[float, Field(gt=0)] | None = None
    max_rows: Annotated[int, Field(ge=1)] | None = None
    temp_mb: Annotated[int, Field(ge=1)] | None = None


class ExportDefinition(StrictModel):
    """One export: which tenant's data, shaped how, written where, when, told to whom."""

    name: str
    tenant: str
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
    limits: QueryLimitsSpec | None = None

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
            f"not {_shown(value)}"
        )

    @field_validator("start", "end", mode="after")
    @classmethod
    def _utc(cls, value: date | datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        # The year first: converting 0001-01-01T00:00+01:00 to UTC would overflow.
        moment = utc(value) if FIRST_YEAR <= value.year <= LAST_YEAR else None
        if moment is None or not FIRST_YEAR <= moment.year <= LAST_YEAR:
            raise ValueError(
                f"{info.field_name} {value.isoformat()} is not between "
                f"{FIRST_YEAR}-01-01 and {LAST_YEAR}-12-31 (UTC)"
            )
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


class RejectedExport(BaseModel):
    """An export a lenient load left out, with every problem found in it."""

    index: int
    name: str | None
    problems: list[str]


class DefinitionsFile(BaseModel):
    path: Path
    outputs: dict[str, Output]
    exports: list[ExportDefinition]
    # Lenient loads only (the code location): the exports and outputs left out, and why.
    rejected: list[RejectedExport] = Field(default_factory=list)
    rejected_outputs: list[str] = Field(default_factory=list)

    def export(self, name: str) -> ExportDefinition:
        return next(e for e in self.exports if e.name == name)


def _pointer(location: tuple[Any, ...]) -> str:
    return "/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in location)


def _shown(value: Any, limit: int = 70) -> str:
    """A value quoted for a message, cut short: a stranger's text may be very long."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


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
            message = f"unknown field {_shown(location[-1])}"
        elif item["type"] == "missing":
            message = f"field {location[-1]!r} is required"
        found.append((_pointer((*prefix, *location)), message))
    return found


def _location(export: ExportDefinition) -> str:
    return f"{export.output.name}:{export.output.path or '/'}"


def parse_definitions(
    document: Any, path: Path, now: datetime | None = None, *, lenient: bool = False
) -> DefinitionsFile:
    """Validate a parsed document; raise one DefinitionError listing every problem.

    `lenient` (the code location's load) raises only when the file as a whole is unusable;
    an output or export with a problem is left out and listed in `rejected`, so one bad
    entry does not take every tenant's jobs down with it.
    """
    where = str(path)
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise DefinitionError(f"{where}: the top level must be a mapping with outputs/exports")
    problems: list[str] = []
    for key in document:
        if key not in ("outputs", "exports"):
            problems.append(
                f"{where}: unknown top-level key {_shown(key)} (expected outputs, exports)"
            )

    outputs: dict[str, Output] = {}
    raw_outputs = document.get("outputs") or {}
    if not isinstance(raw_outputs, dict):
        problems.append(f"{where}: field 'outputs' must be a mapping of output names")
        raw_outputs = {}
    raw_exports = document.get("exports") or []
    if not isinstance(raw_exports, list):
        problems.append(f"{where}: field 'exports' must be a list of export definitions")
        raw_exports = []
    if problems and lenient:
        raise DefinitionError("\n".join(problems))
    output_model = _OutputHolder
    for name, body in raw_outputs.items():
        label = f"{where}: output {_shown(name)} ({_pointer(('outputs', name))})"
        if not isinstance(name, str):
            problems.append(
                f"{label}: output name must be a string (got {type(name).__name__} {name!r})"
            )
            continue
        problem = name_problem(name)
        if problem:
            problems.append(f"{label}: output name {problem}")
            continue
        try:
            outputs[name] = output_model.model_validate({"output": body}).output
        except ValidationError as error:
            tag = body.get("type") if isinstance(body, dict) else None
            for pointer, message in describe_errors(error, ()):
                # pydantic puts the union's tag in the location: /output/s3/bucket.
                branch = _pointer(("output", tag))
                if isinstance(tag, str) and (pointer + "/").startswith(branch + "/"):
                    pointer = "/output" + pointer[len(branch) :]
                pointer = pointer.replace("/output", _pointer(("outputs", name)), 1)
                problems.append(f"{where}: output {_shown(name)} ({pointer}): {message}")
    # `a-b` and `a_b` would both be the resource `output_a_b` (names).
    for name, earlier in dagster_name_clashes(outputs):
        problems.append(
            f"{where}: output {name!r} ({_pointer(('outputs', name))}): output name {name!r} "
            f"and output {earlier!r} both become the Dagster name {dagster_name(name)!r}; "
            "rename one"
        )
        del outputs[name]

    exports: dict[int, ExportDefinition] = {}
    found: dict[int, list[str]] = {}
    labels: dict[int, str] = {}
    seen: dict[str, int] = {}
    jobs: dict[str, tuple[str, int]] = {}
    for index, body in enumerate(raw_exports):
        label = f"export #{index}"
        if isinstance(body, dict) and isinstance(body.get("name"), str):
            label = f"export {_shown(body['name'])}"
        labels[index] = label
        mine = found.setdefault(index, [])
        at = f"{where}: {label} ({_pointer(('exports', index))}"
        if not isinstance(body, dict):
            mine.append(f"{at}): must be a mapping")
            continue
        output_name = (
            (body.get("output") or {}).get("name") if isinstance(body.get("output"), dict) else None
        )
        if isinstance(output_name, str) and output_name not in raw_outputs:
            known = ", ".join(sorted(str(n) for n in raw_outputs)) or "none declared"
            output_problem = (
                f"{at}/output/name): unknown output {_shown(output_name)} (outputs: {known})"
            )
        else:
            output_problem = None
        try:
            export = ExportDefinition.model_validate(body, context={"now": now})
        except ValidationError as error:
            for pointer, message in describe_errors(error, ("exports", index)):
                mine.append(f"{where}: {label} ({pointer}): {message}")
            mine += [output_problem] if output_problem else []
            continue
        if export.name in seen:
            mine.append(
                f"{at}/name): name {export.name!r} is already used by /exports/{seen[export.name]}"
            )
        seen.setdefault(export.name, index)
        if export.name in RESERVED_EXPORT_NAMES:
            mine.append(
                f"{at}/name): name {export.name!r} is reserved (the job "
                f"{export_job_name(export.name)} already exists)"
            )
        job = export_job_name(export.name)
        earlier_name, earlier_index = jobs.setdefault(job, (export.name, index))
        if earlier_name != export.name:
            mine.append(
                f"{at}/name): name {export.name!r} and export {earlier_name!r} "
                f"(/exports/{earlier_index}) both become the Dagster job {job!r}; rename one"
            )
        mine += [output_problem] if output_problem else []
        output = outputs.get(export.output.name)
        if output is not None and output.tenant not in (None, export.tenant):
            mine.append(
                f"{at}/output/name): output {export.output.name!r} belongs to tenant "
                f"{output.tenant!r}; an export of tenant {export.tenant!r} may not use it"
            )
        exports[index] = export

    # Exports of different tenants must not write into one place (exports.ownership).
    placed = [
        Placed(index, e.tenant, (*output_root(outputs[e.output.name]), *segments(e.output.path)))
        for index, e in exports.items()
        if e.output.name in outputs
    ]
    for mine_at, theirs_at in location_conflicts(placed):
        ours, theirs = exports[mine_at.index], exports[theirs_at.index]
        found[mine_at.index].append(
            f"{where}: {labels[mine_at.index]} ({_pointer(('exports', mine_at.index))}/output): "
            f"{_location(ours)} of export {ours.name!r} (tenant {ours.tenant!r}) "
            f"overlaps {_location(theirs)} of export {theirs.name!r} "
            f"(tenant {theirs.tenant!r}, /exports/{theirs_at.index}); exports of different "
            "tenants may not share an output location"
        )

    output_problems = list(problems)
    for index in range(len(raw_exports)):
        problems += found.get(index, [])
    if not lenient:
        if problems:
            raise DefinitionError("\n".join(problems))
        return DefinitionsFile(path=path, outputs=outputs, exports=list(exports.values()))

    # Lenient: an export loads when it has no problem and its output loaded.
    rejected = []
    for index in range(len(raw_exports)):
        export_or_none = exports.get(index)
        mine = list(found.get(index, []))
        if export_or_none is not None and export_or_none.output.name not in outputs and not mine:
            mine.append(
                f"{where}: {labels[index]} ({_pointer(('exports', index))}/output/name): "
                f"output {export_or_none.output.name!r} is not valid"
            )
        if mine:
            body = raw_exports[index]
            name = body.get("name") if isinstance(body, dict) else None
            valid_name = name if isinstance(name, str) and not name_problem(name) else None
            rejected.append(RejectedExport(index=index, name=valid_name, problems=mine))
    left_out = {r.index for r in rejected}
    return DefinitionsFile(
        path=path,
        outputs=outputs,
        exports=[e for index, e in exports.items() if index not in left_out],
        rejected=rejected,
        rejected_outputs=output_problems,
    )


class _OutputHolder(BaseModel):
    output: Output


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, except that a timestamp it cannot build (`0000-01-01`) stays
    text, so the field's own rule reports it instead of a traceback."""

    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:  # type: ignore[override]
        try:
            return super().construct_yaml_timestamp(node)  # type: ignore[arg-type]
        except (ValueError, OverflowError):
            return self.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def read_definitions_text(path: Path, missing_ok: bool = False) -> str | None:
    """The file's text; a DefinitionError of one line naming the file when it cannot be
    read. None when it is missing and `missing_ok`."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if missing_ok:
            return None
        raise DefinitionError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DefinitionError(f"{path}: is a directory, not a definitions file") from None
    except PermissionError:
        raise DefinitionError(f"{path}: cannot be read (permission denied)") from None
    except OSError as error:
        raise DefinitionError(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DefinitionError(
            f"{path}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})"
        ) from None


def load_definitions_file(
    path: Path, now: datetime | None = None, *, missing_ok: bool = True, lenient: bool = False
) -> DefinitionsFile:
    """The validated file; a missing (when `missing_ok`) or empty file declares nothing."""
    text = read_definitions_text(path, missing_ok)
    if text is None:
        return DefinitionsFile(path=path, outputs={}, exports=[])
    try:
        document = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as error:
        raise DefinitionError(f"{path}: not valid YAML: {error}") from None
    except RecursionError:
        raise DefinitionError(f"{path}: not valid YAML: nested too deeply") from None
    return parse_definitions(document, path, now, lenient=lenient)
