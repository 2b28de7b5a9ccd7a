"""What the data sets hold and accept, as plain tables: their columns, filter fields and
seed 001's metric intervals and range limits. The data set objects (`datasets.py`) and
the definition models (`definition.py`) both read them."""

from __future__ import annotations

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
# Filters use event column names, or seed 001's dotted names for metrics.
EVENT_FILTER_FIELDS: Final = tuple(
    c for c in EVENT_COLUMNS if c not in ("tenant", "event_time", "data")
)
METRIC_FILTER_FIELDS: Final = tuple(DIMENSIONS)
