"""Delivery metrics (seed 001): per minute, tenant and dimension values, summed counters.

One row per (minute, tenant, browser, country, city, isp, os, page) with the sums of
http/p2p bytes and played/rebuffered ms, and `sessions`, the number of distinct
sessions with any event in that minute. Any interval of seed 001 (1m … 14d) and any
two dimensions are served by summing these rows. Summing `sessions` over rows is exact
because a session's dimension values do not change within a minute (they are
properties of the session's device, place and page).
"""

from __future__ import annotations

from typing import Final

import polars as pl

# Seed 001's dimension names → our event columns.
DIMENSIONS: Final[dict[str, str]] = {
    "browser.name": "browser",
    "country.code": "country",
    "city.name": "city",
    "isp.name": "isp",
    "os.name": "os",
    "session.page": "page",
}
# Seed 001's metric names → our counter columns (sessions is computed, not summed from events).
METRICS: Final[dict[str, str]] = {
    "http": "http_bytes",
    "p2p": "p2p_bytes",
    "played": "played_ms",
    "rebuffered": "rebuffered_ms",
}

DELIVERY_METRICS_SCHEMA: Final = pl.Schema(
    {
        "minute": pl.Datetime("us", "UTC"),
        "tenant": pl.String(),
        **{column: pl.String() for column in DIMENSIONS.values()},
        **{column: pl.Int64() for column in METRICS.values()},
        "sessions": pl.UInt32(),
    }
)


def delivery_metrics(events: pl.LazyFrame) -> pl.LazyFrame:
    """Minute rollups of a set of events (typically one hour)."""
    keys = ["minute", "tenant", *DIMENSIONS.values()]
    return (
        events.with_columns(minute=pl.col("event_time").dt.truncate("1m"))
        .group_by(keys)
        .agg(
            *[pl.col(c).fill_null(0).sum().alias(c) for c in METRICS.values()],
            sessions=pl.col("session_id").drop_nulls().n_unique(),
        )
        .select(list(DELIVERY_METRICS_SCHEMA.names()))
        .cast(DELIVERY_METRICS_SCHEMA)
        .sort(keys, nulls_last=True)
    )
