"""The pure window math agrees with the Dagster partitions the export jobs are built on."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from exporter_pipeline.defs.exports import export_partitions_def
from exporter_pipeline.exports.spec import validate_export
from exporter_pipeline.windows import hours_of, window_containing


@pytest.mark.parametrize(
    ("cadence", "start"),
    [
        ("hourly", "2026-01-01T05:00:00Z"),
        ("daily", "2026-01-01"),
        ("weekly", "2026-01-01"),  # a Thursday: weeks run Thursday to Thursday
        ("weekly", "2026-01-05"),  # a Monday
    ],
)
def test_window_containing_matches_the_export_partitions(cadence: str, start: str) -> None:
    export = validate_export(
        {
            "name": "w",
            "tenant": "acme",
            "dataset": "raw",
            "cadence": cadence,
            "start": start,
            "output": {"name": "local"},
        }
    )
    partitions = export_partitions_def(export)
    rng = random.Random(7)
    first = export.start_at
    for _ in range(200):
        hour = first + timedelta(hours=rng.randrange(0, 24 * 7 * 30))
        key = partitions.get_partition_key_for_timestamp(hour.timestamp())
        window = partitions.time_window_for_partition_key(key)
        assert window_containing(cadence, first, hour) == (window.start, window.end)


def test_hours_of_lists_every_hour_of_a_window() -> None:
    start = datetime(2026, 3, 29, tzinfo=UTC)  # a daylight-saving day elsewhere; UTC has 24
    assert hours_of(start, start + timedelta(days=1)) == [
        start + timedelta(hours=h) for h in range(24)
    ]
