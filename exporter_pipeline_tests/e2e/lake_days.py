"""A month of raw data in seconds, for the end-to-end tests' long tasks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl

from exporter_pipeline.lake import hourly_key
from exporter_pipeline_tests.exports.conftest import DAY


def stretch_lake(lake_root: Path, first_hours: int, days: int) -> None:
    """Raw hours for `days` days from the first `first_hours` simulated ones, their event
    times moved to the new hour: a month of raw data in seconds (for a long task)."""
    for hour in range(first_hours, days * 24):
        source = DAY + timedelta(hours=hour % first_hours)
        shift = timedelta(hours=hour - hour % first_hours)
        frame = pl.read_parquet(lake_root / hourly_key("raw_events", source))
        target = lake_root / hourly_key("raw_events", DAY + timedelta(hours=hour))
        target.parent.mkdir(parents=True, exist_ok=True)
        frame.with_columns(pl.col("event_time") + shift).write_parquet(target)
