"""Lines longer than a decode chunk (16 MiB) under a record limit above it
(`EXPORTER_MAX_RECORD_BYTES`, events/landing_read.py): the long line is one record, its
neighbours keep their record numbers, and a line over the limit is quarantined as one
record with the right number. Files are generated here, on the local disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporter_pipeline.events import landing, landing_read
from exporter_pipeline.events.landing_read import LandingLimits, line_chunks
from exporter_pipeline_tests.events.test_ingest import event

MIB = 1024 * 1024
LONG = 20 * MIB


@pytest.fixture(scope="module")
def long_line_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Line 1 an event, line 2 a 20 MiB JSON string (not an object), lines 3 and 4 bad
    and good short lines."""
    path = tmp_path_factory.mktemp("long") / "f.jsonl"
    good = json.dumps(event("good")).encode()
    long = b'"' + b"x" * (LONG - 2) + b'"'
    path.write_bytes(good + b"\n" + long + b"\n{not json}\n" + good + b"\n")
    return path


def numbered(path: Path, limits: LandingLimits) -> list[tuple[int, int]]:
    """(line number, length) of every line the reader yields."""
    found = []
    for chunk in line_chunks(path, limits):
        numbers = chunk.numbers(list(range(len(chunk.lines))))
        found += [(n, len(line)) for n, line in zip(numbers, chunk.lines, strict=True)]
    return found


def test_a_line_longer_than_a_chunk_is_one_line(long_line_file: Path) -> None:
    assert landing_read.DECODE_CHUNK_BYTES == 16 * MIB
    good = len(json.dumps(event("good")))
    found = numbered(long_line_file, LandingLimits(max_record_bytes=32 * MIB))
    assert found == [(1, good), (2, LONG), (3, len("{not json}")), (4, good)]


def test_records_after_a_long_line_keep_their_numbers(long_line_file: Path) -> None:
    rows = [
        row
        for frame in landing.jsonl_frames(
            long_line_file, "f.jsonl", LandingLimits(max_record_bytes=32 * MIB)
        )
        for row in frame.select("_record", "_decode_reason").iter_rows()
    ]
    assert rows == [(1, None), (2, "record is not a JSON object"), (3, "malformed JSON"), (4, None)]


def test_a_line_over_a_limit_above_a_chunk_is_one_too_large_record(
    long_line_file: Path,
) -> None:
    rows = [
        row
        for frame in landing.jsonl_frames(
            long_line_file, "f.jsonl", LandingLimits(max_record_bytes=17 * MIB)
        )
        for row in frame.select("_record", "_decode_reason").iter_rows()
    ]
    assert rows == [(1, None), (2, "record too large"), (3, "malformed JSON"), (4, None)]
