"""The lake's hour files a query reads, as local paths (a local lake's own files; an
object store's downloaded for the request). An hour the lake does not hold has no
rows: a query over it answers what there is, as seed 001 and 003 do."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from exporter_pipeline.destinations import destination_from_url
from exporter_pipeline.lake import hourly_key, lake_hours
from exporter_pipeline.windows import hours_of

# Above this many hours a range is matched against one listing of the lake rather than
# asked hour by hour (a 1d metrics query may span years, most of them empty).
LISTING_ABOVE_HOURS = 31 * 24


@contextlib.contextmanager
def hour_files(lake_url: str, dataset: str, start: datetime, end: datetime) -> Iterator[list[Path]]:
    """The files of `dataset` for the UTC hours that meet [start, end), oldest first,
    valid inside the `with` block."""
    with destination_from_url(lake_url) as lake, contextlib.ExitStack() as stack:
        if (end - start).total_seconds() > LISTING_ABOVE_HOURS * 3600:
            first = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            hours = [hour for hour in lake_hours(lake, dataset) if first <= hour < end]
        else:
            hours = hours_of(start, end)
        files = []
        for hour in hours:
            try:
                files.append(stack.enter_context(lake.local_copy(hourly_key(dataset, hour))))
            except FileNotFoundError:
                continue
        yield files
