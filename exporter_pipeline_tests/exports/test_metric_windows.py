"""Seed 001's intervals and range limits on metrics exports (issue 20, point 6): which
cadence a recurring export may use at each interval, why 7d and 14d ranges start on
Thursdays, and 14d in an on-demand task. Pure validation, no server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from exporter_pipeline.exports.spec import parse_definitions
from exporter_pipeline.exports.task_request import TaskRequestError, definition_of_request
from exporter_pipeline_tests.exports.test_spec import FILE, NOW, P, errors_of, metrics

ON_DEMAND_14D = (
    "interval 14d does not divide a weekly window; 14d is longer than every cadence's window: "
    "use it in an on-demand task (export_on_demand, POST /v1/export-tasks) or GET /v1/metrics"
)


@pytest.mark.parametrize(
    ("overrides", "errors"),
    [
        # A daily 1m export from January: each window (a day) exceeds 1m's 6 hours.
        (
            dict(interval="1m", start="2026-01-01"),
            [
                f"{P}/cadence): interval 1m allows a range of at most 6 hours, "
                "shorter than a daily window: use cadence hourly"
            ],
        ),
        (
            dict(interval="5m", cadence="weekly", start="2026-11-05"),
            [
                f"{P}/cadence): interval 5m allows a range of at most 6 hours, "
                "shorter than a weekly window: use cadence hourly"
            ],
        ),
        (
            dict(interval="10m", cadence="weekly", start="2026-11-12", end="2026-11-19"),
            [f"{P}/end): interval 10m allows a range of at most 7 days"],
        ),
        (
            dict(interval="14d", cadence="weekly", start="2026-11-05"),
            [f"{P}/interval): {ON_DEMAND_14D}"],
        ),
        (
            dict(interval="7d", cadence="weekly", start="2026-11-16"),
            [
                f"{P}/start): start must be aligned to the 7d interval: 7d intervals start "
                "every 7 days from Thursday 1970-01-01 00:00 UTC (seed 001 rounds timestamps "
                "to the interval), so on a Thursday; the nearest are 2026-11-12 and "
                "2026-11-19, 2026-11-16 is a Monday"
            ],
        ),
        (
            dict(interval="14d", cadence="weekly", start="2026-11-12"),
            [
                f"{P}/start): start must be aligned to the 14d interval: 14d intervals start "
                "every 14 days from Thursday 1970-01-01 00:00 UTC (seed 001 rounds timestamps "
                "to the interval), so on every other Thursday; the nearest are 2026-11-05 "
                "and 2026-11-19, 2026-11-12 is a Thursday",
                f"{P}/interval): {ON_DEMAND_14D}",
            ],
        ),
    ],
)
def test_recurring_metrics_windows(overrides: dict[str, Any], errors: list[str]) -> None:
    assert errors_of(metrics(**overrides)) == errors


@pytest.mark.parametrize(
    "overrides",
    [
        # Recurring: each window within the interval's limits, however old `start` is.
        dict(interval="1m", cadence="hourly", start="2026-01-01T00:00:00Z"),
        dict(interval="10m", cadence="weekly", start="2026-01-01"),
        dict(interval="12h", cadence="daily", start="2026-01-01"),
        dict(interval="7d", cadence="weekly", start="2026-11-19"),
    ],
)
def test_recurring_metrics_windows_that_fit(overrides: dict[str, Any]) -> None:
    document = {
        "outputs": {"local": {"type": "local", "path": "/tmp/x"}},
        "exports": [metrics(**overrides)],
    }
    [export] = parse_definitions(document, FILE, now=NOW).exports
    assert export.interval == overrides["interval"]  # type: ignore[union-attr]  # a MetricsExport


def request(**fields: Any) -> dict[str, Any]:
    return {
        "tenant": "acme",
        "dataset": "metrics",
        "metrics": ["http", "sessions"],
        "interval": "14d",
        "output": "local",
        **fields,
    }


def test_on_demand_task_uses_14d_between_aligned_thursdays() -> None:
    export, start, end = definition_of_request(
        request(start_time="2026-11-05T00:00:00Z", end_time="2026-11-19T00:00:00Z")
    )
    assert (export.dataset, start, end) == (
        "metrics",
        datetime(2026, 11, 5, tzinfo=UTC),
        datetime(2026, 11, 19, tzinfo=UTC),
    )


def test_on_demand_task_14d_off_its_thursdays_says_which_days() -> None:
    with pytest.raises(TaskRequestError) as raised:
        definition_of_request(
            request(start_time="2026-11-12T00:00:00Z", end_time="2026-11-19T00:00:00Z")
        )
    assert raised.value.problems == [
        (
            "/start_time",
            "start must be aligned to the 14d interval: 14d intervals start every 14 days "
            "from Thursday 1970-01-01 00:00 UTC (seed 001 rounds timestamps to the interval), "
            "so on every other Thursday; the nearest are 2026-11-05 and 2026-11-19, "
            "2026-11-12 is a Thursday",
        )
    ]
