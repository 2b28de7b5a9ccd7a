"""The data sets an export can select, as one table: what each reads, writes and accepts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from exporter_pipeline.derived.delivery_metrics import DIMENSIONS, METRICS
from exporter_pipeline.events.schema import EVENT_COLUMNS

VIEW_COLUMNS: Final = (
    "view_id",
    "client_id",
    "content_id",
    "content_type",
    "country",
    "city",
    "started_at",
    "finished_at",
    "from",
    "to",
    "is_mobile_view",
    "view_session_id",
    "view_type",
    "viewer_identifier",
)
VIEWER_COLUMNS: Final = ("viewer_identifier", "last_activity", "videos_watched", "segments")
METRIC_NAMES: Final = (*METRICS, "sessions")
METRIC_INTERVALS: Final[dict[str, int]] = {
    # seconds in each interval of seed 001
    "1m": 60,
    "5m": 300,
    "10m": 600,
    "30m": 1800,
    "1h": 3600,
    "3h": 10800,
    "12h": 43200,
    "1d": 86400,
    "7d": 7 * 86400,
    "14d": 14 * 86400,
}
# Seed 001 limits for on-demand requests: (longest range, how far back), None = unlimited.
METRIC_RANGE_LIMITS: Final[dict[str, tuple[int | None, int | None]]] = {
    "1m": (6 * 3600, 7 * 86400),
    "5m": (6 * 3600, 7 * 86400),
    "10m": (7 * 86400, 14 * 86400),
    "30m": (7 * 86400, 14 * 86400),
    "1h": (None, 14 * 86400),
    "3h": (None, 14 * 86400),
    "12h": (None, 14 * 86400),
    "1d": (None, None),
    "7d": (None, None),
    "14d": (None, None),
}
MAX_METRIC_DIMENSIONS: Final = 2
# Seed 002: an on-demand (bounded) export covers at most 30 days.
MAX_ON_DEMAND_DAYS: Final = 30


@dataclass(frozen=True)
class DataSet:
    name: str
    # rows: one file per hour; aggregate: one file per window.
    shape: str
    # The lake data sets it reads (the export asset depends on them).
    sources: tuple[str, ...]
    # Columns `columns:` may select; empty means the data set has a fixed shape.
    columns: tuple[str, ...]
    # Dataset-specific keys a definition may set.
    keys: tuple[str, ...] = ()
    # For events/quality/ads: the event category the rows are limited to.
    category: str | None = None


VIEW_KEYS: Final = ("content_type", "content_ids", "inclusive_range", "list_unfinished_segments")

DATASETS: Final[dict[str, DataSet]] = {
    "raw": DataSet("raw", "rows", ("raw_events",), EVENT_COLUMNS),
    "events": DataSet("events", "rows", ("raw_events",), EVENT_COLUMNS, category="events"),
    "quality": DataSet("quality", "rows", ("raw_events",), EVENT_COLUMNS, category="quality"),
    "ads": DataSet("ads", "rows", ("raw_events",), EVENT_COLUMNS, category="ads"),
    "views": DataSet("views", "rows", ("view_segments",), VIEW_COLUMNS, VIEW_KEYS),
    "viewers": DataSet(
        "viewers",
        "aggregate",
        ("view_segments",),
        VIEWER_COLUMNS,
        (*VIEW_KEYS, "viewer_identifier"),
    ),
    "metrics": DataSet(
        "metrics", "aggregate", ("delivery_metrics",), (), ("metrics", "interval", "dimensions")
    ),
    "query": DataSet(
        "query",
        "aggregate",
        ("raw_events", "view_segments", "delivery_metrics"),
        (),
        ("query", "limits"),
    ),
}
# Every dataset-specific key, so a key set on the wrong data set is named as such.
ALL_DATASET_KEYS: Final = tuple(sorted({k for d in DATASETS.values() for k in d.keys}))
# Filters use event column names, or seed 001's dotted names for metrics.
FILTER_FIELDS: Final = {
    "rows": tuple(c for c in EVENT_COLUMNS if c not in ("tenant", "event_time", "data")),
    "metrics": tuple(DIMENSIONS),
}
