"""The canonical event table (DESIGN.md, Landing files) as one typed definition.

`EVENT_SCHEMA` is the schema of `raw_events` in the lake; its column names are the
names an export's `columns:` selects. `EVENT_CATEGORIES` maps every accepted
`event_type` to the data set (seed 002) it belongs to.
"""

from __future__ import annotations

from typing import Final

import polars as pl

EVENT_TIME_DTYPE: Final = pl.Datetime("us", "UTC")

EVENT_SCHEMA: Final = pl.Schema(
    {
        "event_id": pl.String(),
        "tenant": pl.String(),
        "license_key": pl.String(),
        "event_time": EVENT_TIME_DTYPE,
        "event_type": pl.String(),
        "user_id": pl.String(),
        "session_id": pl.String(),
        "device_id": pl.String(),
        "content_id": pl.String(),
        "content_type": pl.String(),
        "device_type": pl.String(),
        "browser": pl.String(),
        "os": pl.String(),
        "country": pl.String(),
        "city": pl.String(),
        "isp": pl.String(),
        "page": pl.String(),
        "http_bytes": pl.Int64(),
        "p2p_bytes": pl.Int64(),
        "played_ms": pl.Int64(),
        "rebuffered_ms": pl.Int64(),
        "position_s": pl.Float64(),
        "bitrate_kbps": pl.Int64(),
        # The event-specific payload, kept as JSON text so any shape survives.
        "data": pl.String(),
    }
)

EVENT_COLUMNS: Final = tuple(EVENT_SCHEMA.names())
# Byte and millisecond counters are deltas since the session's previous event: never negative.
COUNTER_COLUMNS: Final = ("http_bytes", "p2p_bytes", "played_ms", "rebuffered_ms")
INTEGER_COLUMNS: Final = (*COUNTER_COLUMNS, "bitrate_kbps")
FLOAT_COLUMNS: Final = ("position_s",)
CONTENT_TYPES: Final = ("live", "recorded")

EVENT_CATEGORIES: Final[dict[str, str]] = {
    "impression": "events",
    "playStart": "events",
    "watchProgress": "events",
    "pause": "events",
    "seek": "events",
    "completion": "events",
    "swipe": "events",
    "rebuffer": "quality",
    "qualityChange": "quality",
    "error": "quality",
    "adImpression": "ads",
    "adCompletion": "ads",
    "adClick": "ads",
    "heartbeat": "heartbeat",
}
EVENT_TYPES: Final = tuple(EVENT_CATEGORIES)


def event_types_of(category: str) -> list[str]:
    """Event types of one category, in table order."""
    return [t for t, c in EVENT_CATEGORIES.items() if c == category]


# Quarantined records keep every field as the text that arrived, plus why and where from.
QUARANTINE_SCHEMA: Final = pl.Schema(
    {
        "reason": pl.String(),
        "source_file": pl.String(),
        "record_number": pl.Int64(),
        "record": pl.String(),
    }
)
