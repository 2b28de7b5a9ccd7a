"""One page of views or viewers as seed 003's resources (`type`, `attributes`), and how
many there are in all, reading no more of the lake than the page needs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from exporter_pipeline.api.pagination import PageRequest
from exporter_pipeline.exports.fields import VIEW_COLUMNS
from exporter_pipeline.exports.selections import (
    SegmentQuery,
    segments_in,
    view_rows,
    viewers_of,
)

# ISO 8601 with the zone's offset, fractions of a second only when there are any.
ISO_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%:z"


def _iso(moment: pl.Expr, zone: ZoneInfo) -> pl.Expr:
    return moment.dt.convert_time_zone(zone.key).dt.strftime(ISO_FORMAT)


def _whole_seconds(segments: pl.LazyFrame) -> pl.LazyFrame:
    """Positions in whole seconds: seed 003's `from` and `to` are integers."""
    return segments.with_columns(pl.col("from", "to").cast(pl.Int64))


def view_page(
    query: SegmentQuery,
    files: list[Path],
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    page: PageRequest,
) -> tuple[pl.DataFrame, int]:
    """A page of views, by start time then id, and the total.

    The hour files are in hour order and a segment starts in its file's hour (it is
    built from that hour's events: derived/view_segments.py), so the views are the
    files' views one file after the other. Each file's matches are counted first
    (reading only the filtered columns); then only the files the page falls in are
    read whole and sorted: a page of a 30-day range reads an hour or two.
    """
    counts = pl.collect_all([segments_in(query, [f], start, end).select(pl.len()) for f in files])
    sizes = [int(count.item()) for count in counts]
    chosen: list[Path] = []
    before = seen = 0
    for file, size in zip(files, sizes, strict=True):
        if size and seen + size > page.offset and seen < page.offset + page.limit:
            before = before if chosen else seen
            chosen.append(file)
        seen += size
    if not chosen:
        return pl.DataFrame(), seen
    rows = _whole_seconds(view_rows(query, chosen, start, end))
    times = [_iso(pl.col(c), zone).alias(c) for c in ("started_at", "finished_at")]
    resources = rows.slice(page.offset - before, page.limit).select(
        type=pl.lit("View"), attributes=pl.struct(pl.all()).struct.with_fields(times)
    )
    return resources.collect(), seen


# The fields of a viewer's segment: seed 003 calls the view_id `id`.
SEGMENT_FIELDS = ["id" if c == "view_id" else c for c in VIEW_COLUMNS if c != "viewer_identifier"]


def viewer_page(
    query: SegmentQuery, segments: pl.LazyFrame, zone: ZoneInfo, page: PageRequest
) -> tuple[pl.DataFrame, int]:
    """One page of viewers of `segments` and how many there are in all.

    Only the page's identifiers are collected first; then only their segments are read
    again and grouped, so a page costs its own viewers, not every viewer of the range.
    """
    who = pl.col("viewer_identifier")
    ids, total = pl.collect_all(
        [
            segments.select(who).unique().sort(who).slice(page.offset, page.limit),
            segments.select(who.n_unique()),
        ]
    )
    named = ids["viewer_identifier"]
    mine = who.is_in(named.drop_nulls().to_list())
    mine = mine | who.is_null() if named.null_count() else mine
    # Every viewer column; the segments' fields renamed as seed 003 names them, times
    # written in the zone only now (they are compared and ordered as instants before).
    rows = viewers_of(query, _whole_seconds(segments.filter(mine)))
    segment = pl.element().struct.rename_fields(SEGMENT_FIELDS)
    segment = segment.struct.with_fields(
        [_iso(pl.field(c), zone).alias(c) for c in ("started_at", "finished_at")]
    )
    attributes = pl.struct(
        pl.col("viewer_identifier", "videos_watched"),
        _iso(pl.col("last_activity"), zone),
        pl.col("segments").list.eval(segment),
    )
    resources = rows.select(type=pl.lit("Viewer"), attributes=attributes)
    return resources.collect(), int(total.item())
