"""Whether a tenant has any event in a window of the lake (pure): an on-demand task for a
tenant nobody declared is refused when the lake holds nothing of it, rather than
succeeding with header-only files."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from exporter_pipeline.destinations import Destination
from exporter_pipeline.lake import hourly_key
from exporter_pipeline.windows import hours_of


def tenant_has_events(lake: Destination, tenant: str, start: datetime, end: datetime) -> bool:
    """True at the first raw hour of [start, end) holding a row of `tenant`. An hour not
    in the lake counts as holding some: the export then fails naming the missing hour,
    which says more than "no data"."""
    for hour in hours_of(start, end):
        key = hourly_key("raw_events", hour)
        if not lake.exists(key):
            return True
        with lake.local_copy(key) as path:
            rows = pl.scan_parquet(path).filter(pl.col("tenant") == tenant).head(1)
            if rows.collect().height:
                return True
    return False
