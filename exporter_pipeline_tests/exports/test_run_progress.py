"""A run's progress 0-100 (`exports.run_progress`): per file, across windows, at most once
a second but always the first file and the last (100). Pure, on a fake clock."""

from __future__ import annotations

from exporter_pipeline.exports.run_progress import RunProgress


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
    # Files at 100.0 (first), 100.3, 100.6, 100.9, 101.2 (>= 1 s), ..., 103.3 (last: 100).
    assert reports == [
        (8, "window 1/3 (d1): 1/4 files, file 1"),
        (41, "window 2/3 (d2): 1/4 files, file 1"),
        (75, "window 3/3 (d3): 1/4 files, file 1"),
        (100, "window 3/3 (d3): 4/4 files, file 4"),
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
    assert reports == [(33, "1/3 files, h1"), (66, "2/3 files, h2"), (100, "3/3 files, h3")]
