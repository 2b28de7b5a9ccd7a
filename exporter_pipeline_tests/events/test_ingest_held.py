"""Hostile landing input that held before issue 19 and must keep holding, on local
folders: odd values quarantined with their exact reasons beside an out-of-range time,
5,000 tiny files, and a real SIGKILL of an ingest child mid-hour (nothing visible, the
dead work folder removed by the next run, whose output is byte-identical to a clean
run's)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from exporter_pipeline.destinations import destination_from_url
from exporter_pipeline.events.ingest import IngestReport, ingest_hour
from exporter_pipeline.lake import hourly_key
from exporter_pipeline_tests.events.test_ingest import (
    HOUR,
    HOUR_DIR,
    event,
    read_events,
    read_quarantine,
    write_jsonl,
)

HELD: list[tuple[object, str]] = [
    ("\x00\x01\x02garbage\xff", "malformed JSON"),
    (event("wrong-hour", event_time="2026-10-01T07:00:00Z"), "event_time outside partition hour"),
    (event("far-future", event_time="9999-12-31T23:59:59Z"), "event_time outside partition hour"),
    ('{"event_id": "nan", "position_s": NaN}', "malformed JSON"),
    (event("infinity", position_s="Infinity"), "invalid position_s"),
    (event("two-70", event_time=2**70), "event_time out of range"),
    (event("nul\x00bytes", tenant="ac\x00me", country="D\x00"), "invalid country"),
    (event("plus-25", event_time="2026-10-01T05:10:00+25:00"), "unparseable event_time"),
    (event("no-offset", event_time="2026-10-01T05:10:00"), "unparseable event_time"),
    (
        {
            "event_id": "x",
            "tenant": "acme",
            "event_time": 99999999999999999,
            "event_type": "impression",
        },
        "event_time out of range",
    ),
]


def ingest(landing: Path, lake: Path) -> IngestReport:
    return ingest_hour(HOUR, destination_from_url(str(landing)), destination_from_url(str(lake)))


def test_hostile_values_are_quarantined_with_exact_reasons(tmp_path: Path) -> None:
    records = [event("good-1"), *(record for record, _ in HELD), event("good-2")]
    write_jsonl(tmp_path / "landing" / HOUR_DIR / "a.jsonl", records)

    report = ingest_hour(
        HOUR,
        destination_from_url(str(tmp_path / "landing")),
        destination_from_url(str(tmp_path / "lake")),
    )

    assert (report.rows_in, report.rows_written, report.quarantined) == (12, 2, 10)
    assert report.unreadable_files == []
    bad = read_quarantine(tmp_path / "lake")
    assert list(zip(bad["record_number"], bad["reason"], strict=True)) == [
        (number, reason) for number, (_, reason) in enumerate(HELD, start=2)
    ]
    assert read_events(tmp_path / "lake")["event_id"].to_list() == ["good-1", "good-2"]


@pytest.mark.servers  # slow: about 10 ms a file on a 2-core machine (as before issue 19)
def test_five_thousand_tiny_files_are_all_ingested(tmp_path: Path) -> None:
    folder = tmp_path / "landing" / HOUR_DIR
    folder.mkdir(parents=True)
    for number in range(5000):
        (folder / f"f{number:05}.jsonl").write_text(json.dumps(event(f"e{number:05}")) + "\n")

    report = ingest_hour(
        HOUR,
        destination_from_url(str(tmp_path / "landing")),
        destination_from_url(str(tmp_path / "lake")),
    )

    assert (len(report.landing_files), report.rows_in, report.rows_written) == (5000, 5000, 5000)
    assert read_events(tmp_path / "lake")["event_id"].to_list() == [f"e{n:05}" for n in range(5000)]


CHILD = """
import sys
from datetime import datetime
from exporter_pipeline.destinations import destination_from_url
from exporter_pipeline.events.ingest import IngestReport, ingest_hour
ingest_hour(datetime.fromisoformat(sys.argv[1]), destination_from_url(sys.argv[2]),
            destination_from_url(sys.argv[3]))
"""


@pytest.mark.servers  # a slow subprocess, killed mid-ingest
def test_sigkill_mid_ingest_leaves_nothing_and_the_rerun_is_byte_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "landing"
    write_jsonl(landing / HOUR_DIR / "a.jsonl", [event(f"e{n}") for n in range(150_000)])
    temp = tmp_path / "tmp"
    temp.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, HOUR.isoformat(), str(landing), str(tmp_path / "lake")],
        env={**os.environ, "TMPDIR": str(temp)},
    )
    deadline = time.monotonic() + 60
    while not list(temp.glob("exporter-ingest-*")) and time.monotonic() < deadline:
        assert child.poll() is None, "the ingest ended before it could be killed"
        time.sleep(0.01)
    time.sleep(0.3)  # inside the hour's work
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL

    assert not (tmp_path / "lake" / hourly_key("raw_events", HOUR)).exists()
    [dead] = temp.glob("exporter-ingest-*")
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    ingest_hour(
        HOUR, destination_from_url(str(landing)), destination_from_url(str(tmp_path / "lake"))
    )
    assert os.listdir(temp) == []
    ingest_hour(
        HOUR, destination_from_url(str(landing)), destination_from_url(str(tmp_path / "clean"))
    )
    key = hourly_key("raw_events", HOUR)
    assert (tmp_path / "lake" / key).read_bytes() == (tmp_path / "clean" / key).read_bytes()
    assert not dead.exists()
