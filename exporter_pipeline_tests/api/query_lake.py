"""A real lake for the query routes' tests: the export tests' builder (simulated landing
files, ingested, both derived data sets) over three recent UTC hours, so seed 001's
"within the last 7 days" admits it; and DuckDB over the same Parquet files as the
independent side of every comparison."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from exporter_pipeline.settings import Settings
from exporter_pipeline_tests.exports.conftest import Lake, build_lake

HOURS = 3
# The lake's first hour: three hours before the current one, so a 1m query of it is in
# seed 001's last 7 days and none of its hours is in the future.
FIRST_HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS)


def query_lake(root: Path) -> Lake:
    return build_lake(root, events_per_hour=10_000, seed=33, hours=HOURS, day=FIRST_HOUR)


def lake_settings(settings: Settings, lake: Lake) -> Settings:
    return dataclasses.replace(settings, lake_url=str(lake.root))


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def duck_rows(sql: str, files: list[str], **parameters: Any) -> list[dict[str, Any]]:
    """Rows of `sql` over `files` (the table `lake`), each as a dict."""
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    quoted = ", ".join(f"'{f}'" for f in files)
    connection.execute(f"CREATE VIEW lake AS SELECT * FROM read_parquet([{quoted}])")
    result = connection.execute(sql, parameters)
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
