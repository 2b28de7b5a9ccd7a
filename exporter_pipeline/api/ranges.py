"""Which windows an execution covers (pure): the windows of [start, end) an API request
asks for, checked against the export's cadence and bounds, and the windows of a run read
back from its partition tags. Partition keys are written as the jobs' partitions
definitions write them (defs/exports.py): hours `2026-10-01-05:00`, days and weeks
`2026-10-01` (a window's start, UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from exporter_pipeline.api.errors import ApiError, ApiErrors
from exporter_pipeline.exports.definition import in_years, years_rule
from exporter_pipeline.exports.fields import MAX_ON_DEMAND_DAYS
from exporter_pipeline.exports.manifest import iso
from exporter_pipeline.exports.spec import ExportDefinition
from exporter_pipeline.windows import (
    CADENCE_STEP,
    DAY_KEY_FORMAT,
    HOUR_KEY_FORMAT,
    utc,
    window_containing,
)

PARTITION_TAG: Final = "dagster/partition"
RANGE_START_TAG: Final = "dagster/asset_partition_range_start"
RANGE_END_TAG: Final = "dagster/asset_partition_range_end"

Window = tuple[datetime, datetime]


def key_format(cadence: str) -> str:
    return HOUR_KEY_FORMAT if cadence == "hourly" else DAY_KEY_FORMAT


def partition_key(cadence: str, start: datetime) -> str:
    return start.astimezone(UTC).strftime(key_format(cadence))


def range_tags(cadence: str, windows: list[Window]) -> dict[str, str]:
    """The tags of one run over `windows` (Dagster's single-run backfill of a range)."""
    return {
        RANGE_START_TAG: partition_key(cadence, windows[0][0]),
        RANGE_END_TAG: partition_key(cadence, windows[-1][0]),
    }


def windows_between(cadence: str, start: datetime, end: datetime) -> list[Window]:
    """The windows of `cadence` from the aligned `start` up to `end` (exclusive)."""
    step, found = CADENCE_STEP[cadence], []
    while start < end:
        found.append((start, start + step))
        start += step
    return found


def run_windows(export: ExportDefinition, tags: dict[str, str]) -> list[Window]:
    """The windows a run of `export`'s job covers, from its partition tags ([] if none)."""
    step = CADENCE_STEP[export.cadence]
    fmt = key_format(export.cadence)
    try:
        if PARTITION_TAG in tags:
            first = last = utc(datetime.strptime(tags[PARTITION_TAG], fmt))
        elif RANGE_START_TAG in tags and RANGE_END_TAG in tags:
            first = utc(datetime.strptime(tags[RANGE_START_TAG], fmt))
            last = utc(datetime.strptime(tags[RANGE_END_TAG], fmt))
        else:
            return []
    except ValueError:  # not this cadence's key (the export was changed since)
        return []
    return windows_between(export.cadence, first, last + step)


def requested_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[start, end) in UTC (naive moments are UTC); 422 at /start or /end for a moment
    outside the product's years, refused before any arithmetic could overflow."""
    found, problems = [], []
    for where, moment in (("/start", start), ("/end", end)):
        found.append(in_years(moment))
        if found[-1] is None:
            problems.append(
                ApiError(422, "invalid_range", years_rule(where[1:], moment), pointer=where)
            )
    if problems:
        raise ApiErrors(problems)
    first, last = found
    assert first is not None and last is not None
    return first, last


def _window_start_hint(export: ExportDefinition, moment: datetime) -> str:
    aligned, following = window_containing(export.cadence, export.start_at, moment)
    return (
        f"the {export.cadence} windows of {export.name} around it start "
        f"{iso(aligned)} and {iso(following)}"
    )


def requested_windows(
    export: ExportDefinition, start: datetime, end: datetime, now: datetime
) -> list[Window]:
    """The windows of [start, end): whole windows of the export's cadence, within its
    first and last window, ended by `now` and at most MAX_ON_DEMAND_DAYS long (one run);
    else 422 errors pointing at /start, /end. Both are moments of `requested_range`."""
    problems: list[ApiError] = []

    def refuse(where: str, detail: str) -> None:
        problems.append(ApiError(422, "invalid_range", detail, pointer=where))

    for where, moment in (("/start", start), ("/end", end)):
        if window_containing(export.cadence, export.start_at, moment)[0] != moment:
            refuse(
                where,
                f"{where[1:]} {iso(moment)} is not the start of a window: "
                + _window_start_hint(export, moment),
            )
    if start < export.start_at:
        refuse(
            "/start",
            f"start {iso(start)} is before the export's first window, {iso(export.start_at)}",
        )
    if end <= start:
        refuse(
            "/end", f"end {iso(end)} must be after start {iso(start)}: the range holds no window"
        )
    elif export.end_at is not None and end > export.end_at:
        refuse(
            "/end",
            f"end {iso(end)} is after the end of the export's last window, {iso(export.end_at)}",
        )
    elif end > now:
        last = window_containing(export.cadence, export.start_at, now)[0]
        refuse(
            "/end", f"end {iso(end)} is in the future: the last complete window ends {iso(last)}"
        )
    if end - start > timedelta(days=MAX_ON_DEMAND_DAYS):
        refuse(
            "/end",
            f"end {iso(end)} is more than {MAX_ON_DEMAND_DAYS} days after start {iso(start)}: "
            f"an execution covers at most {MAX_ON_DEMAND_DAYS} days; start several",
        )
    if problems:
        raise ApiErrors(problems)
    return windows_between(export.cadence, start, end)
