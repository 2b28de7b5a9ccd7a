"""Query parameters the query routes share: lists given repeated or comma separated, ISO
8601 times read in a time zone, and the refusal of a request as JSON:API errors, every
problem naming its parameter."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import polars as pl
from fastapi.responses import JSONResponse

from exporter_pipeline.api.errors import ApiError, error_response
from exporter_pipeline.exports.definition import FIRST_YEAR, LAST_YEAR
from exporter_pipeline.exports.definition_parts import shown


def listed(values: Iterable[str] | None) -> list[str]:
    """`a,b` and `x=a&x=b` alike: every non-empty item, in order."""
    return [item.strip() for value in values or () for item in value.split(",") if item.strip()]


def repeated(parameter: str, values: list[str]) -> list[ApiError]:
    if len(set(values)) == len(values):
        return []
    return [bad(parameter, f"{parameter} must not repeat a value")]


@functools.cache
def answer_zones() -> frozenset[str]:
    """The IANA zones an answer may be written in: the zone database's names that polars
    converts to (not `Factory` or `localtime`; `posix/…`, `right/…` and `posixrules` are
    files of the database, not names it lists)."""
    probe = pl.Series([0]).cast(pl.Datetime("us", "UTC"))
    found = set()
    for name in available_timezones():
        try:
            probe.dt.convert_time_zone(name)
        except pl.exceptions.PolarsError:
            continue
        found.add(name)
    return frozenset(found)


def time_zone(name: str) -> ZoneInfo | None:
    """The IANA zone of that name, or None (also for a zone polars cannot write in)."""
    if name not in answer_zones():
        return None
    try:
        return ZoneInfo(name)
    # A folder of the zone database ("America") or an over-long name is an OSError.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def moment(parameter: str, text: str, zone: tzinfo) -> datetime | str:
    """An ISO 8601 date and time; one without an offset is read in `zone`. A str is the
    problem."""
    try:
        found = datetime.fromisoformat(text.strip())
    except ValueError:
        return (
            f"{parameter} must be an ISO 8601 date and time, like 2026-10-01T09:30:00-07:00, "
            f"not {shown(text)}"
        )
    if not FIRST_YEAR <= found.year <= LAST_YEAR:
        return f"{parameter} must be between {FIRST_YEAR}-01-01 and {LAST_YEAR}-12-31"
    return found if found.tzinfo is not None else found.replace(tzinfo=zone)


def bad(parameter: str, message: str, code: str = "invalid_parameter") -> ApiError:
    """One problem of a query parameter (`invalid_range` for the rules on a range)."""
    return ApiError(422, code, message, title="Invalid request", parameter=parameter)


def refusal(problems: list[ApiError]) -> JSONResponse:
    """422 with one JSON:API error per problem, every problem at once."""
    return error_response(problems, 422)
