"""Partition definitions shared by the raw and derived hourly assets."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from exporter_pipeline.settings import Settings

HOUR_KEY_FORMAT = "%Y-%m-%d-%H:%M"


def hourly_partitions_def(settings: Settings | None = None) -> dg.HourlyPartitionsDefinition:
    """UTC hours from the configured start; keys look like `2026-10-01-05:00`."""
    settings = settings or Settings.from_env()
    return dg.HourlyPartitionsDefinition(
        start_date=settings.partitions_start.strftime(HOUR_KEY_FORMAT),
        timezone="UTC",
        fmt=HOUR_KEY_FORMAT,
    )


def hour_of(partition_key: str) -> datetime:
    return datetime.strptime(partition_key, HOUR_KEY_FORMAT).replace(tzinfo=UTC)


def partition_key_of(hour: datetime) -> str:
    return hour.astimezone(UTC).strftime(HOUR_KEY_FORMAT)
