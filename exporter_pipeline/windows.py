"""Time in one place: UTC moments, hour keys and the windows of a cadence (pure).

Dagster's partition definitions (`defs/partitions.py`, `defs/exports.py`) are built from
these formats; the core (erasure, ingest, the lake layout) uses the math here and never
loads Dagster for it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal

Cadence = Literal["hourly", "daily", "weekly"]

# Partition keys: hours look like `2026-10-01-05:00`, days and weeks like `2026-10-01`.
HOUR_KEY_FORMAT: Final = "%Y-%m-%d-%H:%M"
DAY_KEY_FORMAT: Final = "%Y-%m-%d"
CADENCE_STEP: Final[dict[str, timedelta]] = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(weeks=1),
}
# Monday first, as `date.weekday()` counts.
WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def utc(value: date | datetime) -> datetime:
    """A date (midnight) or a moment as an aware UTC datetime; naive moments are UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or UTC).astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def parse_utc(text: str) -> datetime:
    """An ISO 8601 date or moment as UTC (naive text is UTC)."""
    return utc(datetime.fromisoformat(text))


def hour_prefix(hour: datetime) -> str:
    """The landing (and lake) folder of one UTC hour: `dt=YYYY-MM-DD/hour=HH/`."""
    return f"dt={hour:%Y-%m-%d}/hour={hour:%H}/"


def hour_of(partition_key: str) -> datetime:
    return datetime.strptime(partition_key, HOUR_KEY_FORMAT).replace(tzinfo=UTC)


def partition_key_of(hour: datetime) -> str:
    return hour.astimezone(UTC).strftime(HOUR_KEY_FORMAT)


def hours_of(start: datetime, end: datetime) -> list[datetime]:
    """Every UTC hour in [start, end)."""
    hours, hour = [], start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    while hour < end:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def window_containing(cadence: str, first: datetime, moment: datetime) -> tuple[datetime, datetime]:
    """The window of `cadence` holding `moment`, windows being counted from `first` (the
    start of an export's first window: hours from the hour, days from midnight, weeks from
    the weekday of `first`)."""
    step = CADENCE_STEP[cadence]
    if cadence == "hourly":
        first = first.replace(minute=0, second=0, microsecond=0)
    start = first + step * ((moment - first) // step)
    return start, start + step
