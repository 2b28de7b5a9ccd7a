"""A run's progress 0-100 (`exports.run_progress`): per file, across windows, at most once
a second but always the first file and the last (99), 100 once published. Pure, on a fake
clock; and a real export to a local folder whose manifest put fails never reports 100."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from exporter_pipeline.destinations.local import LocalDestination
from exporter_pipeline.exports.execution import ExportFailed, export_window
from exporter_pipeline.exports.run_progress import RunProgress
from exporter_pipeline_tests.exports.conftest import Lake, definition
from exporter_pipeline_tests.exports.publish_checks import END, START


def test_progress_across_windows_is_throttled_to_one_a_second() -> None:
    now = [100.0]
    reports: list[tuple[int, str]] = []
    meter = RunProgress(
        3, lambda percent, text: reports.append((percent, text)), 1.0, lambda: now[0]
    )
    # 3 windows of 4 files, one file every 0.3 s.
    for number, key in enumerate(["d1", "d2", "d3"], start=1):
        update = meter.of_window(number, key)
        for done in range(1, 5):
            update(done, 4, f"file {done}")
            now[0] += 0.3
        meter.published(number, key)
    # Files at 100.0 (first), 100.3, 100.6, 100.9, 101.2 (>= 1 s), ..., 103.3 (last: 99),
    # then 100 once the last window is published.
    assert reports == [
        (8, "window 1/3 (d1): 1/4 files, file 1"),
        (41, "window 2/3 (d2): 1/4 files, file 1"),
        (75, "window 3/3 (d3): 1/4 files, file 1"),
        (99, "window 3/3 (d3): 4/4 files, file 4"),
        (100, "window 3/3 (d3): published"),
    ]


def test_every_file_reported_when_files_are_slow() -> None:
    now = [0.0]
    reports: list[tuple[int, str]] = []
    meter = RunProgress(
        1, lambda percent, text: reports.append((percent, text)), 1.0, lambda: now[0]
    )
    update = meter.of_window(1)
    for done in range(1, 4):
        update(done, 3, f"h{done}")
        now[0] += 2.0
    assert reports == [(33, "1/3 files, h1"), (66, "2/3 files, h2"), (99, "3/3 files, h3")]
    meter.published(1)
    assert reports[-1] == (100, "published")


class NoManifest(LocalDestination):
    """A local folder whose manifest put fails: the window's publish never completes."""

    def put_bytes(self, data: bytes, key: str) -> None:
        if "/_manifests/" in key and not key.endswith(".error.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        super().put_bytes(data, key)


def test_a_run_that_fails_to_publish_never_shows_100(lake: Lake, tmp_path: Path) -> None:
    reports: list[tuple[int, str]] = []
    meter = RunProgress(1, lambda percent, text: reports.append((percent, text)), 0.0)
    with pytest.raises(ExportFailed, match="No space left on device"):
        export_window(
            definition(), START, END, lake.store, NoManifest(tmp_path), "r", meter.of_window(1)
        )
    assert reports == [
        (50, "1/2 files, 2026-10-01 00:00"),
        (99, "2/2 files, 2026-10-01 01:00"),
    ]
