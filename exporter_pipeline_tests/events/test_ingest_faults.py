"""Faults that stay with their record or their file (issue 19), on local folders: times
out of range, files that cannot be read whole beside good ones, records past the size
limit, a byte order mark, and the work folders a killed ingest leaves. Every case checks
exact counts, reasons and the identity rows_in = written + duplicates + quarantined +
erased + unreadable; the events are read back from the lake file."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import zlib
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exporter_pipeline.destinations import destination_from_url
from exporter_pipeline.events.ingest import IngestReport, ingest_hour, quarantine_matches
from exporter_pipeline.events.landing import jsonl_frames
from exporter_pipeline.events.landing_read import LandingLimits, line_chunks
from exporter_pipeline.exports.workdirs import LOCK_NAME
from exporter_pipeline.lake import hourly_key
from exporter_pipeline_tests.events.test_ingest import (
    HOUR,
    HOUR_DIR,
    event,
    read_events,
    read_quarantine,
    write_jsonl,
)


def ingest(tmp_path: Path, limits: LandingLimits | None = None) -> IngestReport:
    report = ingest_hour(
        HOUR,
        destination_from_url(str(tmp_path / "landing")),
        destination_from_url(str(tmp_path / "lake")),
        limits,
    )
    assert report.rows_in == (
        report.rows_written
        + report.duplicates
        + report.quarantined
        + report.erased
        + report.unreadable
    )
    return report


def landing_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "landing" / HOUR_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize(
    ("event_time", "reason"),
    [
        (99999999999999999, "event_time out of range"),
        (-99999999999999999, "event_time out of range"),
        (2**70, "event_time out of range"),
        (253402300800000, "event_time out of range"),  # 10000-01-01: one past year 9999
        (253402300799999, "event_time outside partition hour"),  # 9999-12-31, typed
        ("99999-01-01T00:00:00Z", "unparseable event_time"),
    ],
)
def test_a_time_out_of_range_is_quarantined_and_the_hour_ingested(
    tmp_path: Path, event_time: object, reason: str
) -> None:
    write_jsonl(
        landing_dir(tmp_path) / "a.jsonl",
        [event("good-1"), event("far", tenant="acme", event_time=event_time), event("good-2")],
    )

    report = ingest(tmp_path)

    assert (report.rows_in, report.rows_written, report.quarantined) == (3, 2, 1)
    assert report.reasons == {reason: 1}
    assert read_events(tmp_path / "lake")["event_id"].to_list() == ["good-1", "good-2"]
    bad = read_quarantine(tmp_path / "lake").to_dicts()
    assert [(r["reason"], r["record_number"]) for r in bad] == [(reason, 2)]
    assert json.loads(bad[0]["record"])["event_id"] == "far"


def write_broken_files(folder: Path) -> None:
    """One file of each kind that cannot be read whole, each with what it holds."""
    lines = "".join(json.dumps(event(f"gz-{n}")) + "\n" for n in range(3))
    # A stream cut off mid-record: flushed after three whole lines and half the fourth,
    # never finished (no final block, no trailer), as a dropped upload leaves it.
    stream = zlib.compressobj(wbits=31)
    cut = stream.compress(lines.encode()) + stream.flush(zlib.Z_SYNC_FLUSH)
    cut += stream.compress(json.dumps(event("gz-cut")).encode()[:100])
    (folder / "b-truncated.jsonl.gz").write_bytes(cut + stream.flush(zlib.Z_SYNC_FLUSH))
    (folder / "c-empty.csv").write_bytes(b"")
    (folder / "d-ragged.csv").write_text(
        "event_id,tenant,event_time,event_type\n"
        "csv-1,acme,2026-10-01T05:10:00Z,impression\n"
        "csv-2,acme,2026-10-01T05:10:00Z,impression,extra\n"
        "csv-3,acme,2026-10-01T05:10:00Z,impression\n"
    )
    table = pa.table(
        {
            "event_id": ["pq-1", "pq-2", "caf\u00e9"],
            "tenant": ["acme"] * 3,
            "event_time": ["2026-10-01T05:10:00Z"] * 3,
            "event_type": ["impression"] * 3,
        }
    )
    path = folder / "e-utf8.parquet"
    pq.write_table(table, path, compression="none", write_statistics=False, use_dictionary=False)
    raw = path.read_bytes()
    assert raw.count("é".encode()) == 1
    path.write_bytes(raw.replace("é".encode(), b"\xff\xfe"))  # invalid UTF-8, same length


def test_files_that_cannot_be_read_whole_are_named_and_the_others_ingested(
    tmp_path: Path,
) -> None:
    folder = landing_dir(tmp_path)
    write_jsonl(folder / "a-good.jsonl", [event("good-1"), event("good-2")])
    write_broken_files(folder)
    write_jsonl(folder / "f-good.jsonl", [event("good-3")])

    report = ingest(tmp_path)

    faults = [f.as_dict() for f in report.unreadable_files]
    assert faults == [
        {
            "name": f"{HOUR_DIR}/b-truncated.jsonl.gz",
            "reason": "truncated: compressed file ended before the end-of-stream marker "
            "was reached",
            "records_read": 3,
            "records_unread": 1,
        },
        {
            "name": f"{HOUR_DIR}/c-empty.csv",
            "reason": "NoDataError: empty CSV",
            "records_read": 0,
            "records_unread": 0,
        },
        {
            "name": f"{HOUR_DIR}/d-ragged.csv",
            "reason": "ComputeError: found more fields than defined in 'Schema'",
            "records_read": 0,
            "records_unread": 3,
        },
        {
            "name": f"{HOUR_DIR}/e-utf8.parquet",
            "reason": "ComputeError: parquet: File out of specification: String data "
            "contained invalid UTF-8",
            "records_read": 0,
            "records_unread": 3,
        },
    ]
    assert len(report.landing_files) == 6
    assert (report.rows_in, report.rows_written, report.unreadable) == (13, 6, 7)
    assert (report.quarantined, report.duplicates) == (0, 0)
    assert read_events(tmp_path / "lake")["event_id"].to_list() == [
        "good-1",
        "good-2",
        "gz-0",
        "gz-1",
        "gz-2",
        "good-3",
    ]


def test_a_record_past_the_size_limit_is_quarantined_without_being_held(
    tmp_path: Path,
) -> None:
    limits = LandingLimits(max_record_bytes=2000)
    huge = json.dumps(event("huge", data={"blob": "x" * 3_000_000}))  # spans many reads
    long = json.dumps(event("long", data={"blob": "y" * 5000}))  # inside one read
    write_jsonl(
        landing_dir(tmp_path) / "a.jsonl",
        [event("good-1"), huge, event("good-2"), long, event("good-3"), huge],
    )

    report = ingest(tmp_path, limits)

    assert (report.rows_in, report.rows_written, report.quarantined) == (6, 3, 3)
    assert report.reasons == {"record too large": 3}
    assert read_events(tmp_path / "lake")["event_id"].to_list() == ["good-1", "good-2", "good-3"]
    bad = read_quarantine(tmp_path / "lake")
    assert bad["record_number"].to_list() == [2, 4, 6]
    assert bad["record"].to_list() == [huge[:1024], long[:1024], huge[:1024]]


def test_blank_line_runs_keep_record_numbers(tmp_path: Path) -> None:
    text = "\n" * 5 + json.dumps(event("a")) + "\n \n\r\n\n" + "not json\n" + "\n" * 3
    (landing_dir(tmp_path) / "a.jsonl.gz").write_bytes(gzip.compress(text.encode()))

    report = ingest(tmp_path)

    assert (report.rows_in, report.rows_written, report.reasons) == (2, 1, {"malformed JSON": 1})
    assert read_quarantine(tmp_path / "lake")["record_number"].to_list() == [10]


def test_blank_runs_are_collapsed_before_the_split(tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    one, two = json.dumps(event("one")), json.dumps(event("two"))
    path.write_text("\n" * 1000 + one + "\n" + " \n" * 1000 + two + "\n\n")

    [chunk] = line_chunks(path, LandingLimits())

    assert len(chunk.lines) == 3  # the first run's blank line and the two records
    assert chunk.line_count == 2003
    rows = pl.concat(jsonl_frames(path, "blank.jsonl"))
    assert list(zip(rows["event_id"], rows["_record"], strict=True)) == [
        ("one", 1001),
        ("two", 2002),
    ]


def test_a_byte_order_mark_is_not_a_record(tmp_path: Path) -> None:
    text = "".join(json.dumps(event(f"e{n}")) + "\n" for n in range(2))
    (landing_dir(tmp_path) / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + text.encode())

    report = ingest(tmp_path)

    assert (report.rows_in, report.rows_written, report.quarantined) == (2, 2, 0)


def test_a_dead_ingest_folder_of_the_hour_is_removed_and_none_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    # What a killed run leaves: its folder, its unlocked lock file, half-written files.
    dead = temp / "exporter-ingest-20261001T05-0123456789abcdef"
    other_hour = temp / "exporter-ingest-20261001T06-0123456789abcdef"
    for folder in (dead, other_hour):
        folder.mkdir()
        (folder / LOCK_NAME).touch()
        (folder / "valid.parquet").write_bytes(b"partial")
    write_jsonl(landing_dir(tmp_path) / "a.jsonl", [event("e")])

    ingest(tmp_path)

    # The hour's dead folder and this run's own are gone; another hour's is its own run's.
    assert sorted(os.listdir(temp)) == [other_hour.name]


def test_a_run_killed_between_quarantine_and_events_is_seen_and_mended(
    tmp_path: Path,
) -> None:
    folder = landing_dir(tmp_path)
    write_jsonl(folder / "a.jsonl", [event("e1"), "bad"])
    landing = destination_from_url(str(tmp_path / "landing"))
    lake = destination_from_url(str(tmp_path / "lake"))
    events_file = tmp_path / "lake" / hourly_key("raw_events", HOUR)
    quarantine_file = tmp_path / "lake" / hourly_key("raw_events_quarantine", HOUR)
    ingest_hour(HOUR, landing, lake)
    assert quarantine_matches(events_file, quarantine_file)
    first_events = events_file.read_bytes()

    # Late data; the run dies as it publishes the events file (after the quarantine).
    write_jsonl(folder / "b.jsonl", [event("e2"), "worse"])
    put_file = lake.put_file

    def dies_at_events(path: Path, key: str) -> None:
        if key == hourly_key("raw_events", HOUR):
            raise KeyboardInterrupt("killed")  # not an Exception: nothing may catch it
        put_file(path, key)

    lake.put_file = dies_at_events  # type: ignore[method-assign]  # the kill, at one point
    with pytest.raises(KeyboardInterrupt):
        ingest_hour(HOUR, landing, lake)
    assert events_file.read_bytes() == first_events
    assert read_quarantine(tmp_path / "lake")["record"].to_list() == ["bad", "worse"]
    assert not quarantine_matches(events_file, quarantine_file)

    lake.put_file = put_file  # type: ignore[method-assign]
    report = ingest_hour(HOUR, landing, lake)

    assert (report.rows_written, report.quarantined) == (2, 2)
    assert quarantine_matches(events_file, quarantine_file)
    assert not quarantine_matches(events_file, None)
    assert read_events(tmp_path / "lake")["event_id"].to_list() == ["e1", "e2"]
