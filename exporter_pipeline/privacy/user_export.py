"""A user's data export (seed 002, GDPR/CCPA): everything held about one user of one tenant.

Written as JSON Lines to a chosen output, with a manifest last:

- `<path>/profile.jsonl`: one line: first and last seen, events by category and type,
  played and rebuffered time, top content types, linked device ids, sessions.
- `<path>/events.jsonl`: every raw event of the user, oldest first.
- `<path>/views.jsonl`: the user's view segments.

Only the lake's hours within retention exist, so this is everything held.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from exporter_pipeline.destinations import Destination
from exporter_pipeline.events.schema import EVENT_CATEGORIES
from exporter_pipeline.exports.manifest import (
    ManifestFile,
    build_manifest,
    manifest_bytes,
    sha256_of,
)
from exporter_pipeline.exports.naming import manifest_key
from exporter_pipeline.exports.writers import write_file
from exporter_pipeline.lake import hourly_key, lake_hours


@dataclass(frozen=True)
class UserExportResult:
    files: list[ManifestFile]
    manifest_key: str
    events: int


def _user_rows(
    lake: Destination, dataset: str, tenant: str, user_id: str, stack: contextlib.ExitStack
) -> pl.LazyFrame | None:
    files = [
        stack.enter_context(lake.local_copy(hourly_key(dataset, h)))
        for h in lake_hours(lake, dataset)
    ]
    if not files:
        return None
    return pl.scan_parquet(files).filter(
        (pl.col("tenant") == tenant) & (pl.col("user_id") == user_id)
    )


def export_user(
    lake: Destination, output: Destination, tenant: str, user_id: str, path: str, run_id: str
) -> UserExportResult:
    with tempfile.TemporaryDirectory(prefix="user-export-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        events = _user_rows(lake, "raw_events", tenant, user_id, stack)
        views = _user_rows(lake, "view_segments", tenant, user_id, stack)
        if events is None:
            events = pl.LazyFrame(
                schema={
                    "tenant": pl.String,
                    "user_id": pl.String,
                    "event_time": pl.Datetime("us", "UTC"),
                }
            )
        events = events.sort(
            ["event_time", "event_id"] if "event_id" in events.collect_schema() else ["event_time"]
        )
        written: list[tuple[Path, str, int]] = []
        rows = write_file(events, "jsonl", None, work / "events.jsonl")
        written.append((work / "events.jsonl", "events.jsonl", rows))
        view_rows = 0
        if views is not None:
            view_rows = write_file(views.sort("started_at"), "jsonl", None, work / "views.jsonl")
            written.append((work / "views.jsonl", "views.jsonl", view_rows))
        profile = _profile(events, tenant, user_id, view_rows)
        (work / "profile.jsonl").write_bytes(orjson.dumps(profile) + b"\n")
        written.insert(0, (work / "profile.jsonl", "profile.jsonl", 1))

        files = []
        base = path.strip("/")
        for local, name, count in written:
            key = f"{base}/{name}"
            output.put_file(local, key)
            files.append(ManifestFile(key, count, local.stat().st_size, sha256_of(local)))
    first = profile["first_seen"] or datetime.now(UTC).isoformat()
    start = datetime.fromisoformat(first)
    end = datetime.fromisoformat(profile["last_seen"]) if profile["last_seen"] else start
    key = manifest_key(base, start, end)
    manifest = build_manifest(
        export=f"user_data_export:{tenant}",
        tenant=tenant,
        dataset="user_data",
        start=start,
        end=end,
        run_id=run_id,
        file_format="jsonl",
        compression=None,
        columns=[],
        files=files,
    )
    output.put_bytes(manifest_bytes(manifest), key)
    return UserExportResult(files, key, rows)


def _profile(events: pl.LazyFrame, tenant: str, user_id: str, views: int) -> dict[str, Any]:
    frame = events.collect()
    if frame.height == 0:
        return {
            "tenant": tenant,
            "user_id": user_id,
            "events": 0,
            "first_seen": None,
            "last_seen": None,
            "views": views,
        }
    categories = (
        frame.get_column("event_type")
        .replace_strict(EVENT_CATEGORIES, default="other", return_dtype=pl.String)
        .value_counts(sort=True)
    )
    types = frame.get_column("event_type").value_counts(sort=True)
    content = (
        frame.filter(pl.col("content_type").is_not_null())
        .group_by("content_type")
        .len()
        .sort(["len", "content_type"], descending=True)
    )
    return {
        "tenant": tenant,
        "user_id": user_id,
        "events": frame.height,
        "first_seen": frame["event_time"].min().isoformat(),  # type: ignore[union-attr]
        "last_seen": frame["event_time"].max().isoformat(),  # type: ignore[union-attr]
        "engagement": {
            "by_category": dict(zip(categories["event_type"], categories["count"], strict=True)),
            "by_event_type": dict(zip(types["event_type"], types["count"], strict=True)),
            "played_ms": int(frame["played_ms"].sum() or 0),
            "rebuffered_ms": int(frame["rebuffered_ms"].sum() or 0),
            "contents_watched": frame["content_id"].n_unique(),
        },
        "top_content_types": [{"content_type": t, "events": n} for t, n in content.iter_rows()],
        "device_ids": sorted(frame["device_id"].drop_nulls().unique().to_list()),
        "sessions": sorted(frame["session_id"].drop_nulls().unique().to_list()),
        "views": views,
    }
