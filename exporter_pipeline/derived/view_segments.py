"""View segments (seed 003 `/views`): one row per continuous viewing of one content.

Rules, applied per (tenant, session_id, content_id) in event-time order (ties by
event_id), on the events of one hour:

- Playback events are playStart, watchProgress, heartbeat, rebuffer and qualityChange;
  ending events are pause, seek, completion, swipe and error. Impressions and ads
  do not take part.
- A segment starts at a playStart, or at a playback event that follows an ending
  event or opens the hour's events of that session and content (a view that began in
  an earlier hour continues as a new segment).
- A segment ends at its first ending event: `finished_at` is that event's time and
  `to` its position. With no ending event in the hour the segment is unfinished:
  `finished_at` is null and `to` is the last position seen.
- Events after an ending event and before the next start belong to no segment.
- `from` is the position at the segment's first event; descriptive fields (country,
  city, device, page, user) come from that event too.
- `view_id` is a UUID derived from (tenant, session, content, start time): re-running
  an hour gives the same ids. `client_id` is the device id; `viewer_identifier` the
  user id, or the device id for anonymous viewers; `is_mobile_view` is true on mobile
  and tablet devices; `view_type` is `onsite` when the player ran on a web page
  (`page` set), `offsite` otherwise (apps, TV).
"""

from __future__ import annotations

import uuid
from typing import Final

import polars as pl

PLAYBACK_TYPES: Final = ("playStart", "watchProgress", "heartbeat", "rebuffer", "qualityChange")
ENDING_TYPES: Final = ("pause", "seek", "completion", "swipe", "error")
MOBILE_DEVICES: Final = ("mobile", "tablet")
VIEW_KEYS: Final = ("tenant", "session_id", "content_id")

VIEW_SEGMENT_SCHEMA: Final = pl.Schema(
    {
        "tenant": pl.String(),
        "view_id": pl.String(),
        "client_id": pl.String(),
        "content_id": pl.String(),
        "content_type": pl.String(),
        "country": pl.String(),
        "city": pl.String(),
        "started_at": pl.Datetime("us", "UTC"),
        "finished_at": pl.Datetime("us", "UTC"),
        "from": pl.Float64(),
        "to": pl.Float64(),
        "is_mobile_view": pl.Boolean(),
        "view_session_id": pl.String(),
        "view_type": pl.String(),
        "viewer_identifier": pl.String(),
        "user_id": pl.String(),
        "device_type": pl.String(),
        "events": pl.UInt32(),
    }
)


def view_segments(events: pl.LazyFrame) -> pl.LazyFrame:
    """The view segments of a set of events (typically one hour), per the rules above."""
    keys = list(VIEW_KEYS)
    ordered = _segment_rows(events)
    first = pl.col
    segments = ordered.group_by([*keys, "segment"]).agg(
        started_at=first("event_time").first(),
        finished_at=first("event_time").filter(pl.col("is_end")).first(),
        **{"from": first("position_s").first()},
        to=first("position_s").last(),
        client_id=first("device_id").first(),
        content_type=first("content_type").first(),
        country=first("country").first(),
        city=first("city").first(),
        user_id=first("user_id").first(),
        device_type=first("device_type").first(),
        page=first("page").first(),
        events=pl.len(),
    )
    view_id_source = pl.concat_str(
        [
            pl.col("tenant"),
            pl.col("session_id"),
            pl.col("content_id"),
            pl.col("started_at").dt.epoch("us").cast(pl.String),
        ],
        separator="|",
    )
    return (
        segments.with_columns(
            view_id=_uuid_from(view_id_source),
            is_mobile_view=pl.col("device_type").is_in(MOBILE_DEVICES).fill_null(False),
            view_type=pl.when(pl.col("page").is_not_null())
            .then(pl.lit("onsite"))
            .otherwise(pl.lit("offsite")),
            viewer_identifier=pl.coalesce("user_id", "client_id"),
            view_session_id=pl.col("session_id"),
        )
        .select(list(VIEW_SEGMENT_SCHEMA.names()))
        .cast(VIEW_SEGMENT_SCHEMA)
        .sort(["tenant", "started_at", "view_id"])
    )


# Namespace for view ids: uuid5(namespace, "tenant|session|content|start µs").
VIEW_ID_NAMESPACE: Final = uuid.UUID("6f1c3a52-7e0b-4c55-9a8e-3d2b1f0c9e41")


def view_id_for(source: str) -> str:
    return str(uuid.uuid5(VIEW_ID_NAMESPACE, source))


def _uuid_from(text: pl.Expr) -> pl.Expr:
    return text.map_elements(view_id_for, return_dtype=pl.String)


def _segment_rows(events: pl.LazyFrame) -> pl.LazyFrame:
    """Playback events numbered by segment within their view key, ends and later rows cut."""
    keys = list(VIEW_KEYS)
    return (
        events.filter(
            pl.col("event_type").is_in((*PLAYBACK_TYPES, *ENDING_TYPES))
            & pl.col("session_id").is_not_null()
            & pl.col("content_id").is_not_null()
        )
        .sort([*keys, "event_time", "event_id"])
        .with_columns(
            is_end=pl.col("event_type").is_in(ENDING_TYPES),
            previous=pl.col("event_type").shift(1).over(keys),
        )
        .with_columns(
            is_start=(pl.col("event_type") == "playStart")
            | (
                ~pl.col("is_end")
                & (pl.col("previous").is_null() | pl.col("previous").is_in(ENDING_TYPES))
            )
        )
        .with_columns(segment=pl.col("is_start").cum_sum().over(keys))
        # Ends already seen in this segment before this row: >0 means the row is after the end.
        .with_columns(
            ends_before=(pl.col("is_end").cast(pl.UInt32).cum_sum() - pl.col("is_end")).over(
                [*keys, "segment"]
            )
        )
        .filter((pl.col("segment") > 0) & (pl.col("ends_before") == 0))
    )
