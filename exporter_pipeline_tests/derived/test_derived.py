"""Derived hourly data sets on simulated data, each against an independent computation:
view segments against a plain-Python walk of the documented rules, delivery metrics
against DuckDB SQL over the same raw Parquet file."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from exporter_pipeline.derived.delivery_metrics import DELIVERY_METRICS_SCHEMA, delivery_metrics
from exporter_pipeline.derived.view_segments import (
    VIEW_SEGMENT_SCHEMA,
    view_id_for,
    view_segments,
)
from exporter_pipeline.destinations import destination_from_url
from exporter_pipeline.events.ingest import ingest_hour
from exporter_pipeline.events.simulate import simulate
from exporter_pipeline.lake import hourly_key

HOUR = datetime(2026, 10, 1, 9, tzinfo=UTC)
PLAYBACK = {"playStart", "watchProgress", "heartbeat", "rebuffer", "qualityChange"}
ENDING = {"pause", "seek", "completion", "swipe", "error"}


@pytest.fixture(scope="module")
def raw_hour(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("derived")
    simulate(root / "landing", ["acme", "globex"], HOUR, HOUR + timedelta(hours=1), 6000, seed=4)
    ingest_hour(
        HOUR, destination_from_url(str(root / "landing")), destination_from_url(str(root / "lake"))
    )
    return root / "lake" / hourly_key("raw_events", HOUR)


def python_segments(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rules of view_segments.py, one event at a time."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["event_type"] in PLAYBACK | ENDING and row["session_id"] and row["content_id"]:
            groups[(row["tenant"], row["session_id"], row["content_id"])].append(row)
    segments = []
    for (tenant, session, content), events in groups.items():
        events.sort(key=lambda r: (r["event_time"], r["event_id"]))
        current: dict[str, Any] | None = None
        previous_type: str | None = None
        for row in events:
            kind = row["event_type"]
            starts = kind == "playStart" or (
                kind in PLAYBACK and (previous_type is None or previous_type in ENDING)
            )
            if starts:
                current = {
                    "tenant": tenant,
                    "view_session_id": session,
                    "content_id": content,
                    "started_at": row["event_time"],
                    "finished_at": None,
                    "from": row["position_s"],
                    "to": row["position_s"],
                    "client_id": row["device_id"],
                    "viewer_identifier": row["user_id"] or row["device_id"],
                    "is_mobile_view": row["device_type"] in ("mobile", "tablet"),
                    "view_type": "onsite" if row["page"] else "offsite",
                    "country": row["country"],
                    "events": 0,
                }
                segments.append(current)
            if current is not None and current["finished_at"] is None:
                current["events"] += 1
                current["to"] = row["position_s"]
                if kind in ENDING:
                    current["finished_at"] = row["event_time"]
            previous_type = kind
    for segment in segments:
        source = "|".join(
            [
                segment["tenant"],
                segment["view_session_id"],
                segment["content_id"],
                str(int(segment["started_at"].timestamp() * 1_000_000)),
            ]
        )
        segment["view_id"] = view_id_for(source)
    return segments


def test_view_segments_match_a_plain_python_walk(raw_hour: Path) -> None:
    events = pl.read_parquet(raw_hour)
    got = view_segments(events.lazy()).collect()
    assert got.schema == VIEW_SEGMENT_SCHEMA

    expected = python_segments(events.to_dicts())
    columns = [
        "view_id",
        "tenant",
        "view_session_id",
        "content_id",
        "started_at",
        "finished_at",
        "from",
        "to",
        "client_id",
        "viewer_identifier",
        "is_mobile_view",
        "view_type",
        "country",
        "events",
    ]
    expected_frame = pl.DataFrame(expected).select(columns).sort("view_id")
    got_frame = got.select(columns).sort("view_id")
    assert got_frame.height == expected_frame.height > 300
    assert got_frame.cast(expected_frame.schema).equals(expected_frame)
    # The simulated sessions produce both finished and unfinished segments.
    assert 0 < got["finished_at"].null_count() < got.height
    assert got["view_id"].n_unique() == got.height


def test_view_segments_hand_made_session() -> None:
    t0 = datetime(2026, 10, 1, 9, tzinfo=UTC)

    def ev(n: int, kind: str, pos: float) -> dict[str, Any]:
        return {
            "event_id": f"e{n:02d}",
            "tenant": "acme",
            "session_id": "s",
            "content_id": "c",
            "event_type": kind,
            "event_time": t0 + timedelta(seconds=n),
            "position_s": pos,
            "device_id": "d",
            "user_id": None,
            "device_type": "tablet",
            "page": None,
            "country": "HU",
            "city": "Budapest",
            "content_type": "live",
        }

    frame = pl.DataFrame(
        [
            ev(0, "impression", 0),
            ev(1, "playStart", 0),
            ev(2, "watchProgress", 10),
            ev(3, "pause", 10),
            ev(4, "seek", 50),  # seek after pause: no segment
            ev(5, "watchProgress", 50),
            ev(6, "watchProgress", 60),  # resumes without playStart
            ev(7, "playStart", 60),
            ev(8, "watchProgress", 70),  # restart: first left unfinished
        ]
    )
    got = view_segments(frame.lazy()).collect().sort("started_at")
    assert got.select("from", "to", "events").rows() == [
        (0.0, 10.0, 3),
        (50.0, 60.0, 2),
        (60.0, 70.0, 2),
    ]
    assert got["finished_at"].to_list() == [t0 + timedelta(seconds=3), None, None]
    assert got["is_mobile_view"].to_list() == [True] * 3
    assert got["view_type"].to_list() == ["offsite"] * 3
    assert got["viewer_identifier"].to_list() == ["d"] * 3


def test_delivery_metrics_match_duckdb(raw_hour: Path) -> None:
    got = delivery_metrics(pl.scan_parquet(raw_hour)).collect()
    assert got.schema == DELIVERY_METRICS_SCHEMA
    expected = duckdb.sql(f"""
        select time_bucket(interval 1 minute, event_time) as minute, tenant, browser, country,
               city, isp, os, page,
               sum(coalesce(http_bytes, 0)) as http_bytes, sum(coalesce(p2p_bytes, 0)) as p2p_bytes,
               sum(coalesce(played_ms, 0)) as played_ms,
               sum(coalesce(rebuffered_ms, 0)) as rebuffered_ms,
               count(distinct session_id) as sessions
        from read_parquet('{raw_hour}')
        group by all
    """).pl()
    keys = ["minute", "tenant", "browser", "country", "city", "isp", "os", "page"]
    expected = expected.with_columns(pl.col("minute").dt.convert_time_zone("UTC"))
    assert got.height == expected.height
    joined = got.join(expected, on=keys, how="full", suffix="_duck", nulls_equal=True)
    assert joined.height == got.height
    for metric in ("http_bytes", "p2p_bytes", "played_ms", "rebuffered_ms", "sessions"):
        assert (joined[metric].cast(pl.Int64) == joined[f"{metric}_duck"].cast(pl.Int64)).all()
    # Totals agree with the raw hour, so any coarser interval is a plain sum of rows.
    raw = pl.read_parquet(raw_hour)
    assert got["http_bytes"].sum() == raw["http_bytes"].sum()
    assert got["played_ms"].sum() == raw["played_ms"].sum()
