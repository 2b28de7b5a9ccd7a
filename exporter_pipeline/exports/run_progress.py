"""A run's progress, 0-100, over its windows and their files (pure).

Every execution reports it per file written, at most once a second (a backfill of small
hours writes hundreds of files in seconds, and each report is a run tag and a log line),
but always for its first file and for its last, at 99 at most: 100 is reported only once
the last window is published (its manifest written), so a run that fails in its upload
or publish never showed 100. The Dagster shell (`defs/`) puts
the figure on the run as the tag `progress` and in a log line; the HTTP API reads the tag.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from exporter_pipeline.exports.execution import Progress

# The run tag holding the figure, as text ("0" … "100").
PROGRESS_TAG: Final = "progress"
PROGRESS_EVERY_S: Final = 1.0
# (percent, what was just written)
Report = Callable[[int, str], None]


class RunProgress:
    """The progress of one run of `windows` windows, passed on to `report`."""

    def __init__(
        self,
        windows: int,
        report: Report,
        every: float = PROGRESS_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.windows = windows
        self.report = report
        self.every = every
        self.clock = clock
        self._last: float | None = None

    def of_window(self, number: int, key: str | None = None) -> Progress:
        """The progress callback of window `number` (from 1) for `export_window`; `key`
        names the window in the text when the run has several."""

        def update(done: int, total: int, label: str) -> None:
            # 100 only once published: the files written are not yet the window.
            percent = min(99, ((number - 1) * total + done) * 100 // (self.windows * total))
            last = number == self.windows and done == total
            now = self.clock()
            if self._last is not None and not last and now - self._last < self.every:
                return
            self._last = now
            self.report(percent, f"{self._where(number, key)}{done}/{total} files, {label}")

        return update

    def published(self, number: int, key: str | None = None) -> None:
        """Window `number` is published (its manifest written): 100 after the last one."""
        if number == self.windows:
            self.report(100, f"{self._where(number, key)}published")

    def _where(self, number: int, key: str | None) -> str:
        return f"window {number}/{self.windows} ({key}): " if key else ""
