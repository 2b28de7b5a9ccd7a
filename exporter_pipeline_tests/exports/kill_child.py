"""A child process for the kill -9 tests of publication (test_publish_kills.py).

`python -m exporter_pipeline_tests.exports.kill_child LAKE OUT EXPORT K WHEN` runs run B
of `EXPORT` to the local folder OUT through `KillAt`, which SIGKILLs its own process
before, during or after (WHEN) the K-th call that changes the output. (One interpreter
per kill: forking one that imported polars deadlocks its thread pool.) It imports only
what a run needs, not the test fixtures, to start in about a second.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from exporter_pipeline.destinations import destination_from_url
from exporter_pipeline.destinations.local import LocalDestination
from exporter_pipeline.exports.execution import export_window
from exporter_pipeline.exports.spec import ExportDefinition, parse_definitions

START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 10, 1, 2, tzinfo=UTC)

# Smaller parts than run A's: more calls to kill at.
RUN_B = {"format": "parquet", "compression": "uncompressed", "max_file_bytes": 50_000}


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class _Dying:
    """A stream that gives a few bytes, then kills the process (a write cut mid-way)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.reads = 0

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        if self.reads > 1:
            _die()
        return self.stream.read(16)


class KillAt(LocalDestination):
    """A local folder that records each call changing it (`calls`, by kind) and kills
    the process before, during (a put's stream) or after the `at`-th."""

    def __init__(self, root: Path, at: int = 0, when: str = "") -> None:
        super().__init__(root)
        self.at, self.when = at, when
        self.calls: list[str] = []

    def _step(self, kind: str, call: Callable[[], None]) -> None:
        self.calls.append(kind)
        here = len(self.calls) == self.at
        if here and self.when == "before":
            _die()
        call()
        if here and self.when == "after":
            _die()

    def move_file(self, local_path: Path, key: str) -> None:
        self._step("move", lambda: super(KillAt, self).move_file(local_path, key))

    def put_bytes(self, data: bytes, key: str) -> None:
        self._step("put", lambda: super(KillAt, self).put_bytes(data, key))

    def put_stream(self, stream: BinaryIO, size: int, key: str) -> None:
        if len(self.calls) == self.at and self.when == "during":
            stream = _Dying(stream)  # type: ignore[assignment]  # reads like a stream
        super().put_stream(stream, size, key)

    def delete(self, key: str) -> None:
        self._step("delete", lambda: super(KillAt, self).delete(key))


def run_b(name: str) -> ExportDefinition:
    """Run B's definition (as exports/conftest.py's `definition` writes it)."""
    body = {
        "name": name,
        "tenant": "acme",
        "dataset": "raw",
        "cadence": "hourly",
        "start": "2026-10-01T00:00:00Z",
        "output": {"name": "out", "path": "exp"},
        **RUN_B,
    }
    document = {"outputs": {"out": {"type": "local", "path": "/unused"}}, "exports": [body]}
    now = datetime(2026, 10, 2, tzinfo=UTC)
    return parse_definitions(document, Path("test.yaml"), now=now).exports[0]


def main() -> None:
    lake, out, name, at, when = sys.argv[1:6]
    destination = KillAt(Path(out), int(at), when)
    export_window(run_b(name), START, END, destination_from_url(lake), destination, "killed")


if __name__ == "__main__":
    main()
