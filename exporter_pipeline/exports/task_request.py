"""Seed 000's export task request, checked (pure): the launchpad job `export_on_demand`
(defs/on_demand.py) and the HTTP API's `POST /v1/export-tasks` read the same request
with the same rules, so both refuse a bad one in the same words.

A request is a definition's keys (those a one-off task may set) plus its own: `name`,
`tenant`, `start_time`, `end_time` (any moment, not whole windows), `output` and `path`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.exports.definition import in_years, years_rule
from exporter_pipeline.exports.ownership import output_root, segments
from exporter_pipeline.exports.spec import ExportDefinition, describe_errors, validate_export
from exporter_pipeline.exports.validation import AnyExport

# A definition's keys a request does not take: its window and output are the request's
# own, and a one-off task has no schedule, delivery or re-export.
NOT_REQUESTED = frozenset(
    {"start", "end", "cadence", "schedule", "delivery", "description", "reexport_late_data"}
)
# The request's own keys and their defaults (None: required).
REQUEST_DEFAULTS: dict[str, Any] = {
    "name": "on_demand",
    "tenant": None,
    "start_time": None,
    "end_time": None,
    "dataset": "raw",
    "output": None,
    "path": "on-demand",
}
# Every key a request may hold.
REQUEST_KEYS = frozenset(REQUEST_DEFAULTS) | (frozenset(AnyExport.model_fields) - NOT_REQUESTED)

# Keys whose default depends on the data set (a query writes JSON Lines, the rest CSV):
# left unset in a request, each data set's model gives its own.
PER_DATASET_DEFAULT = frozenset({"format"})
DEFAULTS = {
    k: f.get_default(call_default_factory=True)
    for k, f in AnyExport.model_fields.items()
    if k not in PER_DATASET_DEFAULT
}

# Where a definition rule points, as the request's own field.
CONFIG_POINTERS = {
    "/start": "/start_time",
    "/end": "/end_time",
    "/output/name": "/output",
    "/output/path": "/path",
}


class TaskRequestError(DefinitionError):
    """A refused request: one line per problem, and each as (JSON pointer, message)."""

    def __init__(self, name: str, problems: list[tuple[str, str]], text: str | None = None) -> None:
        self.problems = problems
        super().__init__(
            text
            or "\n".join(
                f"export task {name!r} ({where}): {message}" for where, message in problems
            )
        )


def _window(request: Mapping[str, Any], name: str) -> tuple[datetime, datetime]:
    moments, problems = {}, []
    for key in ("start_time", "end_time"):
        try:
            given = datetime.fromisoformat(str(request.get(key)))
        except ValueError as error:
            problems.append((f"/{key}", f"{key}: {error}"))
            failure = str(error)
            continue
        # Outside the product's years before any arithmetic (9999-12-31T23:59-23:59
        # overflows when converted to UTC).
        moment = in_years(given)
        if moment is None:
            failure = years_rule(key, given)
            problems.append((f"/{key}", failure))
        else:
            moments[key] = moment
    if problems:
        text = f"export task {name!r}: start_time/end_time: {failure}"
        raise TaskRequestError(name, problems, text)
    return moments["start_time"], moments["end_time"]


def definition_of_request(
    request: Mapping[str, Any],
) -> tuple[ExportDefinition, datetime, datetime]:
    """The request as an export definition plus its exact window; TaskRequestError if not
    valid. Keys left out take the request's defaults."""
    request = {k: v for k, v in REQUEST_DEFAULTS.items() if v is not None} | dict(request)
    name = str(request["name"])
    start, end = _window(request, name)
    # Keys left at their default are not set: a views key left True is no views key.
    body = {
        key: value
        for key, value in request.items()
        if key not in ("start_time", "end_time", "output", "path")
        and value not in (None, {}, [])
        and not (key in DEFAULTS and value == DEFAULTS[key])
    }
    body.update(
        cadence="hourly",
        start=start.replace(minute=0, second=0, microsecond=0),
        output={"name": request.get("output"), "path": request["path"]},
    )
    try:
        export = validate_export(body, context={"window_end": end, "window_start": start})
    except ValidationError as error:
        problems = [
            (CONFIG_POINTERS.get(where, where), message)
            for where, message in describe_errors(error, (), union_at=0)
        ]
        raise TaskRequestError(name, problems) from None
    if end <= start:
        message = f"end_time {end:%Y-%m-%d %H:%M} is before start_time {start:%Y-%m-%d %H:%M}"
        raise TaskRequestError(name, [("/end_time", message)])
    return export, start, end


def _is_within(one: tuple[str, ...], other: tuple[str, ...]) -> bool:
    """Whether one location holds the other or is held by it (segment-wise)."""
    shorter = min(len(one), len(other))
    return one[:shorter] == other[:shorter]


def refuse_export_location(
    export: ExportDefinition,
    outputs: Mapping[str, Any],
    exports: Sequence[ExportDefinition],
) -> None:
    """TaskRequestError (at `/path`) when the task would write where a definition export
    writes: at its path, inside it or around it, on its output or one naming the same
    place. A task's publish would otherwise take that export's files for its own."""
    output = outputs.get(export.output.name)
    if output is None:
        return  # the unknown output is refused on its own
    mine = (*output_root(output), *segments(export.output.path))
    for other in exports:
        theirs_output = outputs.get(other.output.name)
        if theirs_output is None:
            continue
        theirs = (*output_root(theirs_output), *segments(other.output.path))
        if _is_within(mine, theirs):
            # Another tenant's export is not named to this one.
            whose = (
                f"export {other.name!r} (output {other.output.name!r}, path {other.output.path!r})"
                if other.tenant == export.tenant
                else "an export of another tenant"
            )
            message = (
                f"path {export.output.path!r} of output {export.output.name!r} meets the "
                f"files of {whose}: a task may not write at, inside or around an "
                "export's path; choose another path"
            )
            raise TaskRequestError(export.name, [("/path", message)])
