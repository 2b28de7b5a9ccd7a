"""Landing ingest on local folders: every format, every quarantine reason, duplicates,
atomic re-ingest. Results are read back from the lake files and compared with values
computed independently (hand-written expectations, Python's json/datetime, DuckDB)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from exporter_pipeline.destinations import destination_from_url
from exporter_pipeline.events.ingest import ingest_hour
from exporter_pipeline.events.schema import EVENT_COLUMNS, EVENT_SCHEMA, QUARANTINE_SCHEMA
from exporter_pipeline.events.simulate import simulate
from exporter_pipeline.lake import hourly_key
from exporter_pipeline_tests.files import file_digests

HOUR = datetime(2026, 10, 1, 5, tzinfo=UTC)
HOUR_DIR = "dt=2026-10-01/hour=05"
EPOCH_MS = int(datetime(2026, 10, 1, 5, 59, 59, tzinfo=UTC).timestamp()) * 1000 + 123


def event(event_id: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": event_id,
        "tenant": "acme",
        "license_key": "lic-1",
        "event_time": "2026-10-01T05:10:00Z",
        "event_type": "watchProgress",
        "user_id": "u1",
        "session_id": "s1",
        "device_id": "d1",
        "content_id": "c1",
        "content_type": "recorded",
        "device_type": "desktop",
        "browser": "Chrome",
        "os": "Windows",
        "country": "DE",
        "city": "Berlin",
        "isp": "Telekom",
        "page": "https://acme.example/watch",
        "http_bytes": 1000,
        "p2p_bytes": 200,
        "played_ms": 10000,
        "rebuffered_ms": 0,
        "position_s": 12.5,
        "bitrate_kbps": 3000,
        "data": {"k": 1},
    }
    base.update(overrides)
    return base


def write_jsonl(path: Path, lines: list[Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)


def ingest(landing: Path, lake: Path, hour: datetime = HOUR):  # type: ignore[no-untyped-def]
    return ingest_hour(hour, destination_from_url(str(landing)), destination_from_url(str(lake)))


def read_events(lake: Path, hour: datetime = HOUR) -> pl.DataFrame:
    return pl.read_parquet(lake / hourly_key("raw_events", hour))


def read_quarantine(lake: Path, hour: datetime = HOUR) -> pl.DataFrame:
    return pl.read_parquet(lake / hourly_key("raw_events_quarantine", hour))


# One record per rule, each breaking exactly that rule; the value is the exact reason.
QUARANTINE_CASES: list[tuple[Any, str]] = [
    ('{"event_id": "bad-json", "tenant": ', "malformed JSON"),
    ("[1, 2, 3]", "record is not a JSON object"),
    (event("q-data", data=[1, 2]), "data is not a JSON object"),
    (event(None), "missing event_id"),
    (event("q-tenant", tenant=None), "missing tenant"),
    (event("q-tenant-blank", tenant="  "), "missing tenant"),
    (event("q-time-missing", event_time=None), "missing event_time"),
    (event("q-time", event_time="yesterday at noon"), "unparseable event_time"),
    (event("q-time-naive", event_time="2026-10-01T05:10:00"), "unparseable event_time"),
    (event("q-early", event_time="2026-10-01T04:59:59.999Z"), "event_time outside partition hour"),
    (event("q-late", event_time="2026-10-01T06:00:00Z"), "event_time outside partition hour"),
    (
        event("q-offset", event_time="2026-10-01T05:10:00-02:00"),
        "event_time outside partition hour",
    ),
    (event("q-type-missing", event_type=None), "missing event_type"),
    (event("q-type", event_type="teleport"), "unknown event_type"),
    (event("q-http-text", http_bytes="lots"), "invalid http_bytes"),
    (event("q-bitrate-float", bitrate_kbps=1.5), "invalid bitrate_kbps"),
    (event("q-pos-text", position_s="middle"), "invalid position_s"),
    (event("q-pos-nan", position_s="NaN"), "invalid position_s"),
    (event("q-http", http_bytes=-1), "negative http_bytes"),
    (event("q-p2p", p2p_bytes=-5), "negative p2p_bytes"),
    (event("q-played", played_ms=-10), "negative played_ms"),
    (event("q-rebuf", rebuffered_ms=-1), "negative rebuffered_ms"),
    (event("q-pos", position_s=-0.5), "negative position_s"),
    (event("q-bitrate", bitrate_kbps=-300), "negative bitrate_kbps"),
    (event("q-content", content_type="vod"), "unknown content_type"),
    (event("q-country", country="Germany"), "invalid country"),
    (event("q-country-lower", country="de"), "invalid country"),
]


def test_every_quarantine_reason_is_named_and_nothing_is_lost(landing: Path, lake: Path) -> None:
    epoch_ms = int(datetime(2026, 10, 1, 5, 10, tzinfo=UTC).timestamp() * 1000)
    good = [event("ok-1"), event("ok-2", event_time=epoch_ms)]
    records = [good[0], *[case for case, _ in QUARANTINE_CASES], good[1]]
    write_jsonl(landing / HOUR_DIR / "mixed.jsonl", records)

    report = ingest(landing, lake)

    quarantine = read_quarantine(lake)
    assert quarantine.schema == QUARANTINE_SCHEMA
    got = list(zip(quarantine["record_number"], quarantine["reason"], strict=True))
    expected = [(number, reason) for number, (_, reason) in enumerate(QUARANTINE_CASES, start=2)]
    assert got == expected
    assert set(quarantine["source_file"]) == {f"{HOUR_DIR}/mixed.jsonl"}
    # The raw record is kept as it arrived, so it can be fixed and replayed.
    assert quarantine["record"][0] == QUARANTINE_CASES[0][0]
    assert json.loads(quarantine["record"][4])["tenant"] is None

    events = read_events(lake)
    assert events["event_id"].to_list() == ["ok-1", "ok-2"]
    assert report.rows_in == len(records)
    assert report.rows_written == 2
    assert report.quarantined == len(QUARANTINE_CASES)
    assert report.duplicates == 0
    assert report.rows_in == report.rows_written + report.duplicates + report.quarantined
    expected_reasons: dict[str, int] = {}
    for _, reason in QUARANTINE_CASES:
        expected_reasons[reason] = expected_reasons.get(reason, 0) + 1
    assert report.reasons == dict(sorted(expected_reasons.items()))


def test_valid_record_is_typed_exactly(landing: Path, lake: Path) -> None:
    write_jsonl(
        landing / HOUR_DIR / "a.jsonl",
        [
            event("e1", event_time="2026-10-01T07:15:30.250+02:00", data={"b": [1, 2]}),
            event("e2", event_time=EPOCH_MS, http_bytes="42", data=None, page=""),
        ],
    )
    ingest(landing, lake)
    events = read_events(lake)
    assert events.schema == EVENT_SCHEMA
    first, second = events.to_dicts()
    assert first["event_time"] == datetime(2026, 10, 1, 5, 15, 30, 250000, tzinfo=UTC)
    assert json.loads(first["data"]) == {"b": [1, 2]}
    assert first["position_s"] == 12.5 and first["bitrate_kbps"] == 3000
    assert second["event_time"] == datetime(2026, 10, 1, 5, 59, 59, 123000, tzinfo=UTC)
    assert second["http_bytes"] == 42
    assert second["data"] is None
    assert second["page"] is None  # empty text is absent, not ""


def test_duplicates_dropped_first_wins_across_files(landing: Path, lake: Path) -> None:
    write_jsonl(landing / HOUR_DIR / "a.jsonl", [event("x", played_ms=1), event("y")])
    write_jsonl(landing / HOUR_DIR / "b.jsonl", [event("x", played_ms=2), event("z"), event("y")])
    report = ingest(landing, lake)
    events = read_events(lake)
    assert events["event_id"].to_list() == ["x", "y", "z"]
    assert events.filter(pl.col("event_id") == "x")["played_ms"].item() == 1
    assert (report.rows_in, report.rows_written, report.duplicates) == (5, 3, 2)
    assert not (lake / hourly_key("raw_events_quarantine", HOUR)).exists()


def landing_records_in(fmt: str, landing: Path) -> pl.DataFrame:
    """The landing files of one format read by DuckDB: the independent side of the check."""
    pattern = str(landing / HOUR_DIR / f"*.{fmt}")
    reader = {
        "jsonl": "read_json_auto",
        "jsonl.gz": "read_json_auto",
        "csv": "read_csv_auto",
        "parquet": "read_parquet",
    }[fmt]
    options = ", all_varchar=true" if fmt == "csv" else ""
    query = f"""
        select event_id, tenant, cast(http_bytes as bigint) as http_bytes,
               cast(played_ms as bigint) as played_ms, cast(event_time as varchar) as event_time
        from {reader}('{pattern}'{options})
    """
    return duckdb.sql(query).pl()


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "csv", "parquet"])
def test_each_landing_format_matches_an_independent_read(
    fmt: str, landing: Path, lake: Path
) -> None:
    simulate(landing, ["acme", "globex"], HOUR, HOUR + timedelta(hours=1), 3000, seed=3, fmt=fmt)

    report = ingest(landing, lake)

    expected = landing_records_in(fmt, landing)
    events = read_events(lake)
    assert events.schema == EVENT_SCHEMA
    assert report.rows_in == expected.height == 3000
    assert report.quarantined == 0 and report.duplicates == 0
    assert sorted(events["event_id"]) == sorted(expected["event_id"])
    for tenant in ("acme", "globex"):
        mine = events.filter(pl.col("tenant") == tenant)
        theirs = expected.filter(pl.col("tenant") == tenant)
        assert mine.height == theirs.height == 1500
        assert mine["http_bytes"].sum() == theirs["http_bytes"].sum()
        assert mine["played_ms"].sum() == theirs["played_ms"].sum()
    # event_time: each landing text parsed by Python's own ISO/epoch reading.
    parsed = {
        row["event_id"]: _python_time(row["event_time"]) for row in expected.iter_rows(named=True)
    }
    got = dict(zip(events["event_id"], events["event_time"], strict=True))
    assert got == parsed


def _python_time(text: str) -> datetime:
    text = text.strip('"')  # DuckDB reads a mixed int/text JSON field as JSON text
    if text.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    return datetime.fromisoformat(text).astimezone(UTC)


def test_ndjson_suffix_and_ignored_files(landing: Path, lake: Path) -> None:
    write_jsonl(landing / HOUR_DIR / "a.ndjson", [event("n1")])
    write_jsonl(landing / HOUR_DIR / "b.ndjson.gz", [event("n2")])
    (landing / HOUR_DIR / "README.txt").write_text("not events")
    (landing / HOUR_DIR / ".partial.jsonl").write_text("{}")
    report = ingest(landing, lake)
    assert read_events(lake)["event_id"].to_list() == ["n1", "n2"]
    assert report.ignored_files == [f"{HOUR_DIR}/.partial.jsonl", f"{HOUR_DIR}/README.txt"]


def test_empty_hour_writes_an_empty_typed_file(landing: Path, lake: Path) -> None:
    report = ingest(landing, lake)
    assert report.rows_in == 0
    events = read_events(lake)
    assert events.height == 0 and events.schema == EVENT_SCHEMA


def test_reingest_is_idempotent_and_late_data_replaces_the_hour(landing: Path, lake: Path) -> None:
    simulate(
        landing,
        ["acme"],
        HOUR,
        HOUR + timedelta(hours=1),
        2000,
        seed=5,
        malformed_rate=0.02,
        duplicate_rate=0.02,
    )
    first = ingest(landing, lake)
    before = file_digests(lake)
    second = ingest(landing, lake)
    assert file_digests(lake) == before, (
        "same landing files must give the same bytes and no new files"
    )
    assert first == second

    # Late data arrives: the hour is replaced whole, still one events file.
    write_jsonl(landing / HOUR_DIR / "late.jsonl", [event("late-1"), event("late-2")])
    third = ingest(landing, lake)
    assert third.rows_written == first.rows_written + 2
    assert set(file_digests(lake)) == set(before)
    assert read_events(lake).height == first.rows_written + 2

    # The bad records are fixed upstream: the quarantine file of the hour goes away.
    for path in (landing / HOUR_DIR).iterdir():
        path.unlink()
    write_jsonl(landing / HOUR_DIR / "clean.jsonl", [event("c1")])
    ingest(landing, lake)
    assert set(file_digests(lake)) == {hourly_key("raw_events", HOUR)}


def test_every_event_column_is_in_the_schema_once() -> None:
    assert len(set(EVENT_COLUMNS)) == len(EVENT_COLUMNS) == 24
