"""Memory of an ingest does not follow the input's shape (issue 19, point 3): a 200 MB
single line, a gzip bomb of one 1 GiB line, one of 1 GiB of newlines. Each hour is
ingested by a child process that reports its own peak RSS (VmHWM of /proc/self/status);
the inputs are written here as streams, never held whole. Slow subprocesses: the
`servers` tier."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter_pipeline_tests.events.test_ingest import HOUR, HOUR_DIR, event, write_jsonl

GIB = 1024**3
MIB = 1024**2
PEAK_LIMIT = GIB
SECONDS_LIMIT = 60.0

CHILD = """
import json, sys
from datetime import datetime
from exporter_pipeline.destinations import destination_from_url
from exporter_pipeline.events.ingest import ingest_hour
report = ingest_hour(
    datetime.fromisoformat(sys.argv[1]),
    destination_from_url(sys.argv[2]),
    destination_from_url(sys.argv[3]),
)
status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
print(json.dumps({
    "rows_in": report.rows_in,
    "rows_written": report.rows_written,
    "quarantined": report.quarantined,
    "unreadable": report.unreadable,
    "reasons": report.reasons,
    "unreadable_files": [f.as_dict() for f in report.unreadable_files],
    "peak_bytes": int(status) * 1024,
}))
"""

HEAD = b'{"event_id":"big","tenant":"acme","event_time":"2026-10-01T05:10:00Z","data":"'


def one_line(size: int) -> Iterator[bytes]:
    """A JSON object of about `size` bytes on one line, a MiB at a time."""
    yield HEAD
    for _ in range(size // MIB):
        yield b"a" * MIB
    yield b'"}\n'


def newlines(size: int) -> Iterator[bytes]:
    for _ in range(size // MIB):
        yield b"\n" * MIB


def write_stream(path: Path, pieces: Iterator[bytes], gzipped: bool) -> None:
    stream = zlib.compressobj(9, wbits=31) if gzipped else None
    with open(path, "wb") as out:
        for piece in pieces:
            out.write(stream.compress(piece) if stream else piece)
        if stream:
            out.write(stream.flush())


def ingest_in_child(tmp_path: Path, env: dict[str, str]) -> dict[str, object]:
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, HOUR.isoformat(), f"{tmp_path}/landing", f"{tmp_path}/lake"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=SECONDS_LIMIT * 2,
    )
    seconds = time.monotonic() - began
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout)
    assert isinstance(result["peak_bytes"], int) and result["peak_bytes"] < PEAK_LIMIT, result
    assert seconds < SECONDS_LIMIT, (seconds, result)
    return result


BOMB_RATIO = (
    "decompression bomb: expands more than 100 times its {size} compressed bytes "
    "(EXPORTER_MAX_DECOMPRESSION_RATIO)"
)
BOMB_SIZE = "decompression bomb: expands past 268435456 bytes (EXPORTER_MAX_DECOMPRESSED_BYTES)"


@pytest.mark.servers  # a slow subprocess: gigabyte streams
@pytest.mark.parametrize(
    ("name", "pieces", "env", "reason", "quarantined"),
    [
        ("line.jsonl", one_line(200 * MIB), {}, None, 1),
        ("line.jsonl.gz", one_line(GIB), {}, BOMB_RATIO, 1),
        (
            "line-capped.jsonl.gz",
            one_line(GIB),
            {"EXPORTER_MAX_DECOMPRESSION_RATIO": "1000000"},
            BOMB_SIZE,
            1,
        ),
        ("newlines.jsonl.gz", newlines(GIB), {}, BOMB_RATIO, 0),
        (
            "newlines-read.jsonl.gz",
            newlines(GIB),
            {
                "EXPORTER_MAX_DECOMPRESSION_RATIO": "1000000",
                "EXPORTER_MAX_DECOMPRESSED_BYTES": str(2 * GIB),
            },
            None,
            0,
        ),
    ],
)
def test_memory_stays_bounded_whatever_the_shape(
    tmp_path: Path,
    name: str,
    pieces: Iterator[bytes],
    env: dict[str, str],
    reason: str | None,
    quarantined: int,
) -> None:
    folder = tmp_path / "landing" / HOUR_DIR
    write_jsonl(folder / "a-good.jsonl", [event("good")])
    path = folder / name
    write_stream(path, pieces, gzipped=name.endswith(".gz"))
    env = {"EXPORTER_MAX_DECOMPRESSED_BYTES": str(256 * MIB), **env}

    result = ingest_in_child(tmp_path, env)

    assert result["rows_written"] == 1
    assert result["quarantined"] == quarantined
    assert result["reasons"] == ({"record too large": 1} if quarantined else {})
    assert result["rows_in"] == 1 + quarantined  # unreadable: a stream's rest is unknown
    assert result["unreadable"] == 0
    expected = [] if reason is None else [reason.format(size=path.stat().st_size)]
    assert [f["reason"] for f in result["unreadable_files"]] == expected  # type: ignore[attr-defined]
