"""Partition definitions shared by the raw and derived hourly assets."""

from __future__ import annotations

import dagster as dg

from exporter_pipeline.settings import Settings
from exporter_pipeline.windows import HOUR_KEY_FORMAT


def hourly_partitions_def(settings: Settings | None = None) -> dg.HourlyPartitionsDefinition:
    """UTC hours from the configured start; keys look like `2026-10-01-05:00`."""
    settings = settings or Settings.from_env()
    return dg.HourlyPartitionsDefinition(
        start_date=settings.partitions_start.strftime(HOUR_KEY_FORMAT),
        timezone="UTC",
        fmt=HOUR_KEY_FORMAT,
    )
