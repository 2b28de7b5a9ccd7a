"""The landing files of one hour as staged chunks, a fault in one file kept to that file.

A file that cannot be read to its end (truncated, empty, ragged, badly encoded, a
decompression bomb, unreadable) does not stop the hour: the chunks read before the
fault are ingested, the file is recorded with its name, the reason and how many of its
records were lost where that is known, and the hour's other files are read as usual.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from exporter_pipeline.destinations import Destination
from exporter_pipeline.destinations.local import LocalDestination
from exporter_pipeline.events.landing import landing_format, staged_chunks
from exporter_pipeline.events.landing_read import FileFault, LandingLimits

# One chunk of staged rows: the landing key it comes from and what decodes it.
SourceChunk = tuple[str, Callable[[], pl.DataFrame]]


@dataclass
class UnreadableFile:
    """A landing file read only in part: its records before the fault were ingested."""

    name: str
    reason: str
    records_read: int = 0
    # Records known to be in the file and not read (Parquet's footer, CSV's rows, a
    # JSON Lines record cut off); the rest of a truncated or refused stream is unknown.
    records_unread: int = 0
    # Records the file holds in all, where it tells (tabular formats), else None.
    records_total: int | None = None

    def as_dict(self) -> dict[str, str | int]:
        return {
            "name": self.name,
            "reason": self.reason,
            "records_read": self.records_read,
            "records_unread": self.records_unread,
        }


def fault_reason(error: Exception) -> str:
    """A one-line reason: our own faults as they are, a library's with its type."""
    if isinstance(error, FileFault):
        return error.reason
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else 'no message'}"


def records_in(path: Path, fmt: str) -> int | None:
    """Records a tabular file holds, counted without typing them; None when it cannot tell."""
    with contextlib.suppress(Exception):  # a file too broken to count: unknown
        if fmt == "parquet":
            return int(pq.ParquetFile(path).metadata.num_rows)
        if fmt == "csv":
            if path.stat().st_size == 0:
                return 0
            scan = pl.scan_csv(
                path, infer_schema=False, truncate_ragged_lines=True, encoding="utf8-lossy"
            )
            return int(scan.select(pl.len()).collect().item())
    return None


@contextlib.contextmanager
def local_file(landing: Destination, key: str, work: Path) -> Iterator[Path]:
    """The landing object as a local file: itself when local, else a copy inside `work`
    (the run's own folder, which the next run of the hour removes if this one is killed)."""
    if isinstance(landing, LocalDestination):
        with landing.local_copy(key) as path:
            yield path
        return
    folder = work / "landing"
    folder.mkdir(exist_ok=True)
    path = folder / key.rsplit("/", 1)[-1]
    landing.download(key, path)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


class HourFiles:
    """Every landing file under `prefix`, as chunks; remembers the ignored and the faulty."""

    def __init__(
        self, landing: Destination, prefix: str, work: Path, limits: LandingLimits
    ) -> None:
        self.landing, self.prefix, self.work, self.limits = landing, prefix, work, limits
        self.landing_files: list[str] = []
        self.ignored_files: list[str] = []
        self.unreadable: list[UnreadableFile] = []

    def chunks(self) -> Iterator[SourceChunk]:
        for info in self.landing.list(self.prefix):
            fmt = landing_format(info.key)
            if fmt is None:
                self.ignored_files.append(info.key)
                continue
            self.landing_files.append(info.key)
            with local_file(self.landing, info.key, self.work) as path:
                try:
                    for decode in staged_chunks(path, info.key, fmt, self.limits):
                        yield info.key, decode
                except Exception as error:  # any fault of this one file stays with it
                    unread = error.unread if isinstance(error, FileFault) else 0
                    total = None if fmt == "jsonl" else records_in(path, fmt)
                    self.unreadable.append(
                        UnreadableFile(info.key, fault_reason(error), 0, unread, total)
                    )

    def settle(self, read_by_source: dict[str, int]) -> int:
        """Fill in the records read of each faulty file; the records known unread in all."""
        for fault in self.unreadable:
            fault.records_read = read_by_source.get(fault.name, 0)
            if fault.records_total is not None:
                fault.records_unread = max(fault.records_total - fault.records_read, 0)
        return sum(fault.records_unread for fault in self.unreadable)
