"""Progress of long commands: a rich bar per phase on a terminal, plain lines otherwise.

A person at a terminal sees a bar move; CI logs and pipes get one line when a phase
starts and one when it ends, never a screen of redraws.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import TextIO

Advance = Callable[[int], None]


class Progress:
    """Phases of a command, each with a known number of steps."""

    def __init__(self, stream: TextIO | None = None, interactive: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty() if interactive is None else interactive

    def print(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    @contextlib.contextmanager
    def phase(self, label: str, total: int) -> Iterator[Advance]:
        """Yields `advance(steps=1)`; the phase ends (and says so) when the block does."""
        if self.interactive:
            with self._bar(label, total) as tick:
                yield tick
            return
        started, done = time.monotonic(), 0

        def count(steps: int = 1) -> None:
            nonlocal done
            done += steps

        self.print(f"{label} …")
        yield count
        self.print(f"{label}: {min(done, total)}/{total} in {time.monotonic() - started:.1f} s")

    @contextlib.contextmanager
    def _bar(self, label: str, total: int) -> Iterator[Advance]:
        # rich only on a terminal: imported here so plain runs never pay for it.
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import (
            Progress as RichProgress,
        )

        columns = (
            TextColumn("{task.description:<24}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        # Dagster captures a run's output by redirecting the process's stdout and stderr
        # (file descriptors 1 and 2) to its log files while the run lasts; the bar draws
        # on its own copy of the terminal's descriptor so that it keeps moving meanwhile.
        terminal = os.fdopen(os.dup(self.stream.fileno()), "w", encoding="utf-8")
        console = Console(file=terminal, force_terminal=True)
        with terminal, RichProgress(*columns, console=console) as bar:
            task = bar.add_task(label, total=total)

            def tick(steps: int = 1) -> None:
                bar.advance(task, steps)

            yield tick
            bar.update(task, completed=total)
