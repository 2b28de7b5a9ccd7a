"""Seed 001's rules on a metrics request, as pure functions: which metrics, interval and
dimensions exist, and the range limits of each interval. An export definition
(`definition.MetricsExport`) and the HTTP API's `GET /v1/metrics` both apply them; each
problem is (the field it concerns, message), the range's ends named by the caller
(`start`/`end` in a definition, `from`/`to` in the API)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from exporter_pipeline.derived.delivery_metrics import DIMENSIONS
from exporter_pipeline.exports.fields import (
    MAX_METRIC_DIMENSIONS,
    METRIC_INTERVALS,
    METRIC_NAMES,
    METRIC_RANGE_LIMITS,
)
from exporter_pipeline.windows import CADENCE_STEP

Rules = list[tuple[str, str]]
DAY_S: Final = 86400
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def choice_rules(
    metrics: list[str] | None, interval: str | None, dimensions: list[str] | None
) -> Rules:
    """Known metrics (at least one), a known interval, at most two known dimensions."""
    errors: Rules = []
    if not metrics:
        errors.append(("metrics", f"metrics must list some of {', '.join(METRIC_NAMES)}"))
    for metric in metrics or []:
        if metric not in METRIC_NAMES:
            errors.append(
                ("metrics", f"unknown metric {metric!r} (choose {', '.join(METRIC_NAMES)})")
            )
    if interval is None:
        errors.append(("interval", "metrics need an interval"))
    elif interval not in METRIC_INTERVALS:
        errors.append(
            ("interval", f"interval {interval!r} is not one of {', '.join(METRIC_INTERVALS)}")
        )
    for dimension in dimensions or []:
        if dimension not in DIMENSIONS:
            errors.append(
                ("dimensions", f"unknown dimension {dimension!r} (choose {', '.join(DIMENSIONS)})")
            )
    if len(dimensions or []) > MAX_METRIC_DIMENSIONS:
        errors.append(
            (
                "dimensions",
                f"at most {MAX_METRIC_DIMENSIONS} dimensions, got {len(dimensions or [])}",
            )
        )
    return errors


def alignment_rules(interval: str, ends: dict[str, datetime | None]) -> Rules:
    """Seed 001: each end of the range is rounded to the interval (from the epoch)."""
    seconds = METRIC_INTERVALS[interval]
    return [
        (name, aligned_message(name, interval, moment))
        for name, moment in ends.items()
        if moment is not None and int(moment.timestamp()) % seconds
    ]


def aligned_message(name: str, interval: str, moment: datetime) -> str:
    """`name` is not on a boundary of `interval`; for 7d and 14d, which days are."""
    message = f"{name} must be aligned to the {interval} interval"
    seconds = METRIC_INTERVALS[interval]
    if seconds <= DAY_S:
        return message
    # Counted from the epoch, which fell on a Thursday: so does every 7d/14d boundary.
    before = EPOCH + timedelta(seconds=seconds * (int(moment.timestamp()) // seconds))
    after = before + timedelta(seconds=seconds)
    days = seconds // DAY_S
    thursdays = "a Thursday" if days == 7 else "every other Thursday"  # 7d or 14d
    return (
        f"{message}: {interval} intervals start every {days} days from "
        f"Thursday 1970-01-01 00:00 UTC (seed 001 rounds timestamps to the interval), so "
        f"on {thursdays}; the nearest are {before:%Y-%m-%d} and {after:%Y-%m-%d}, "
        f"{moment:%Y-%m-%d} is a {moment:%A}"
    )


def window_rules(interval: str, cadence: str) -> Rules:
    """A recurring export's limits at `interval`: each window (one execution, seed 001's
    "query range") holds whole intervals and is no longer than the interval allows. How
    far back a range may start is not a rule here: a recurring export runs each window
    when it ends, and its backfills read the lake, which keeps what seed 001 drops."""
    seconds, window = METRIC_INTERVALS[interval], CADENCE_STEP[cadence].total_seconds()
    errors: Rules = []
    if window % seconds:
        message = f"interval {interval} does not divide a {cadence} window"
        if seconds > max(step.total_seconds() for step in CADENCE_STEP.values()):
            message += (
                f"; {interval} is longer than every cadence's window: use it in an on-demand "
                "task (export_on_demand, POST /v1/export-tasks) or GET /v1/metrics"
            )
        errors.append(("interval", message))
    longest, _ = METRIC_RANGE_LIMITS[interval]
    if longest is not None and window > longest:
        fitting = [c for c, step in CADENCE_STEP.items() if step.total_seconds() <= longest]
        errors.append(
            (
                "cadence",
                f"interval {interval} allows a range of at most {duration(longest)}, "
                f"shorter than a {cadence} window: use cadence {' or '.join(fitting)}",
            )
        )
    return errors


def range_rules(
    interval: str,
    start: datetime,
    end: datetime,
    now: datetime,
    names: tuple[str, str] = ("start", "end"),
) -> Rules:
    """Seed 001's limits of a bounded range at `interval`: its longest span (reported on
    the end) and how far back it may start (reported on the start)."""
    errors: Rules = []
    longest, back = METRIC_RANGE_LIMITS[interval]
    if longest is not None and (end - start).total_seconds() > longest:
        errors.append(
            (names[1], f"interval {interval} allows a range of at most {duration(longest)}")
        )
    if back is not None and start < now - timedelta(seconds=back):
        errors.append(
            (
                names[0],
                f"interval {interval} allows ranges within the last {duration(back)} only",
            )
        )
    return errors


def duration(seconds: int) -> str:
    return f"{seconds // 86400} days" if seconds % 86400 == 0 else f"{seconds // 3600} hours"
