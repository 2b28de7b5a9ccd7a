"""Ingest one hour of landing files into the lake: validate, type, dedupe, quarantine.

Every record that arrives is accounted for: it is written to the hour's events file,
dropped as a repeat of an earlier `event_id`, or quarantined with the first reason it
failed, or, for a user erased earlier, dropped before anything else and kept nowhere.
Records of a landing file that could not be read whole are counted where the file
tells how many it holds (`unreadable`); the file itself is named in `unreadable_files`.
`rows_in == rows_written + duplicates + quarantined + erased + unreadable` always holds.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Final, TypeVar

import polars as pl
import pyarrow.parquet as pq

from exporter_pipeline.checksums import sha256_of
from exporter_pipeline.destinations import Destination
from exporter_pipeline.events.hour_files import HourFiles, SourceChunk, UnreadableFile
from exporter_pipeline.events.landing_read import LandingLimits
from exporter_pipeline.events.schema import EVENT_COLUMNS, EVENT_SCHEMA, QUARANTINE_SCHEMA
from exporter_pipeline.events.validation import classified
from exporter_pipeline.exports.workdirs import work_folder
from exporter_pipeline.lake import ROW_GROUP_ROWS, hourly_key, scan_by_row_group
from exporter_pipeline.privacy.tombstones import erased_pairs, lake_salt, load_tombstones
from exporter_pipeline.windows import hour_prefix

_EVENT_ARROW: Final = pl.DataFrame(schema=EVENT_SCHEMA).to_arrow().schema
_QUARANTINE_ARROW: Final = pl.DataFrame(schema=QUARANTINE_SCHEMA).to_arrow().schema
# Parquet key-value metadata of an hour's events file: the sha256 of the quarantine file
# written with it ("" when none was), so the pair can be checked (`quarantine_matches`).
QUARANTINE_SHA256_KEY: Final = "exporter.quarantine_sha256"
# Chunks decoded and classified at once: one per core of the 2-core machines we run on.
INGEST_THREADS: Final = 2
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class IngestReport:
    hour: datetime
    landing_files: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    rows_in: int = 0
    rows_written: int = 0
    duplicates: int = 0
    quarantined: int = 0
    # Records of users erased earlier (right to erasure): dropped, kept nowhere.
    erased: int = 0
    # Records known to be in landing files that could not be read whole, and not read.
    unreadable: int = 0
    unreadable_files: list[UnreadableFile] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    rows_by_tenant: dict[str, int] = field(default_factory=dict)
    bytes_written: int = 0
    # sha256 of the events file: the hour's data version (late data changes it).
    sha256: str = ""


class _ErasedUsers:
    """Drops the records of erased users from staged chunks; remembers every verdict."""

    def __init__(self, lake: Destination) -> None:
        self.tombstones = load_tombstones(lake)
        self.salt = lake_salt(lake) if self.tombstones else b""
        self.known: set[tuple[str, str]] = set()
        self.erased = pl.DataFrame(schema={"tenant": pl.String, "user_id": pl.String})
        self.lock = threading.Lock()

    def drop(self, chunk: pl.DataFrame) -> pl.DataFrame:
        if not self.tombstones:
            return chunk
        with self.lock:  # chunks are classified on several threads
            return self._drop(chunk)

    def _drop(self, chunk: pl.DataFrame) -> pl.DataFrame:
        key = [pl.col("tenant").str.strip_chars(), pl.col("user_id").str.strip_chars()]
        pairs = chunk.select(key).drop_nulls().unique()
        new = pairs.join(
            pl.DataFrame(list(self.known), schema=self.erased.schema, orient="row"),
            on=["tenant", "user_id"],
            how="anti",
        )
        if new.height:
            self.known.update(new.iter_rows())
            self.erased = pl.concat(
                [self.erased, erased_pairs(new.lazy(), self.tombstones, self.salt)]
            )
        return chunk.join(
            self.erased, how="anti", nulls_equal=False, left_on=key, right_on=["tenant", "user_id"]
        )


@dataclass(frozen=True)
class _ClassifiedChunk:
    source: str
    rows_in: int
    erased: int
    valid: pl.DataFrame
    quarantined: pl.DataFrame


def _classify_chunk(
    item: SourceChunk, hour: datetime, erased_users: _ErasedUsers
) -> _ClassifiedChunk:
    source, decode = item
    staged = decode()
    kept = erased_users.drop(staged)
    rows = classified(kept.lazy(), hour).collect(engine="in-memory")
    return _ClassifiedChunk(
        source=source,
        rows_in=staged.height,
        erased=staged.height - kept.height,
        valid=rows.filter(pl.col("_reason").is_null()).select(EVENT_COLUMNS).cast(EVENT_SCHEMA),
        quarantined=rows.filter(pl.col("_reason").is_not_null())
        .select(
            pl.col("_reason").alias("reason"),
            pl.col("_source").alias("source_file"),
            pl.col("_record").alias("record_number"),
            pl.col("_raw").alias("record"),
        )
        .cast(QUARANTINE_SCHEMA),
    )


def _in_order(work: Callable[[T], R], items: Iterator[T], workers: int) -> Iterator[R]:
    """`map(work, items)` on `workers` threads, in order, with at most `workers + 1` pending."""
    with ThreadPoolExecutor(workers, thread_name_prefix="ingest") as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _repeated_rows(valid_file: Path, id_hashes: list[pl.Series]) -> pl.Series:
    """Row numbers in `valid_file` of repeated event_ids, the first occurrence excepted.

    Only rows whose event_id hash occurs more than once are read back, so memory stays
    bounded however large the hour; a hash collision is told apart by the ids themselves.
    """
    hashes = pl.concat(id_hashes) if id_hashes else pl.Series(dtype=pl.UInt64)
    # Sorted, equal hashes are neighbours: about 30 bytes a row at the peak, where
    # `is_duplicated`'s hash table took about 80 (400 MB for 5 M events).
    order = hashes.arg_sort()
    ordered = hashes.gather(order)
    repeated = ((ordered == ordered.shift(1)) | (ordered == ordered.shift(-1))).fill_null(False)
    candidates = order.filter(repeated).sort()
    if not len(candidates):
        return pl.Series("_row", [], dtype=pl.UInt32)
    rows = (
        scan_by_row_group(valid_file)
        .with_row_index("_row")
        .filter(pl.col("_row").is_in(candidates.implode()))
        .select("_row", "event_id")
        .collect()
        .sort("_row")
    )
    return rows.filter(~pl.col("event_id").is_first_distinct())["_row"]


def ingest_hour(
    hour: datetime, landing: Destination, lake: Destination, limits: LandingLimits | None = None
) -> IngestReport:
    """Read every landing file of `hour` and (re)write that hour in the lake atomically.

    Landing files are read in order, a bounded chunk at a time; chunks are decoded and
    classified on `INGEST_THREADS` threads (polars and the file reads release the GIL).
    Valid rows are appended to a working file and rejects to the quarantine file, in
    record order; the hour's events file is that working file without repeated event_ids.
    A file that cannot be read whole is reported in `unreadable_files`, never fatal.
    The working files live in a run-scoped folder that the next run of the hour removes
    if this one is killed (`exports/workdirs.py`).
    """
    report = IngestReport(hour=hour)
    limits = limits or LandingLimits.from_settings()
    with work_folder(f"{hour:%Y%m%dT%H}", kind="exporter-ingest") as work:
        files = HourFiles(landing, hour_prefix(hour), work, limits)
        classify = partial(_classify_chunk, hour=hour, erased_users=_ErasedUsers(lake))
        valid_count, id_hashes, read_by_source = _stage(files.chunks(), classify, work, report)
        report.landing_files, report.ignored_files = files.landing_files, files.ignored_files
        report.unreadable = files.settle(read_by_source)
        report.unreadable_files = files.unreadable
        report.rows_in += report.unreadable
        events_file = work / "events.parquet"
        report.reasons = dict(sorted(report.reasons.items()))
        report.quarantined = sum(report.reasons.values())
        quarantine = sha256_of(work / "quarantine.parquet") if report.quarantined else ""
        _write_without_repeats(
            work / "valid.parquet", id_hashes, events_file, {QUARANTINE_SHA256_KEY: quarantine}
        )
        by_tenant = pl.scan_parquet(events_file).group_by("tenant").len().sort("tenant").collect()
        report.rows_by_tenant = dict(zip(by_tenant["tenant"], by_tenant["len"], strict=True))
        report.rows_written = sum(report.rows_by_tenant.values())
        report.duplicates = valid_count - report.rows_written
        assert report.rows_in == (
            report.rows_written
            + report.duplicates
            + report.quarantined
            + report.erased
            + report.unreadable
        )
        _publish(lake, hour, work, report)
    return report


def _publish(lake: Destination, hour: datetime, work: Path, report: IngestReport) -> None:
    """Quarantine first, events last: both keys are replaced whole, never appended to.

    The events file is the hour's commit: its checksum is the data version, and a run
    killed before it is never materialized; the run that follows rewrites the pair.
    """
    if report.quarantined:
        lake.put_file(work / "quarantine.parquet", hourly_key("raw_events_quarantine", hour))
    else:
        lake.delete(hourly_key("raw_events_quarantine", hour))
    events_file = work / "events.parquet"
    lake.put_file(events_file, hourly_key("raw_events", hour))
    report.bytes_written = events_file.stat().st_size
    report.sha256 = sha256_of(events_file)


def _stage(
    chunks: Iterator[SourceChunk],
    classify: Callable[[SourceChunk], _ClassifiedChunk],
    work: Path,
    report: IngestReport,
) -> tuple[int, list[pl.Series], dict[str, int]]:
    """Classify every chunk into `work`/valid.parquet and quarantine.parquet, in record
    order. Returns the valid rows' count, their event_id hashes (8 bytes a row: what
    finds repeats in bounded memory) and the records read from each landing file."""
    valid_count = 0
    id_hashes: list[pl.Series] = []
    read_by_source: dict[str, int] = {}
    # Working rows are read back once, right away: fast LZ4 beats small files here.
    # (Parquet, not Arrow IPC: a scan of IPC maps the whole file into memory.)
    with (
        pq.ParquetWriter(work / "valid.parquet", _EVENT_ARROW, compression="lz4") as valid,
        pq.ParquetWriter(work / "quarantine.parquet", _QUARANTINE_ARROW, compression="zstd") as bad,
    ):
        for chunk in _in_order(classify, chunks, INGEST_THREADS):
            report.rows_in += chunk.rows_in
            read_by_source[chunk.source] = read_by_source.get(chunk.source, 0) + chunk.rows_in
            report.erased += chunk.erased
            valid_count += chunk.valid.height
            valid.write_table(chunk.valid.to_arrow())
            id_hashes.append(chunk.valid["event_id"].hash())
            if chunk.quarantined.height:
                bad.write_table(chunk.quarantined.to_arrow(), row_group_size=ROW_GROUP_ROWS)
                for reason, count in chunk.quarantined["reason"].value_counts().iter_rows():
                    report.reasons[reason] = report.reasons.get(reason, 0) + count
    return valid_count, id_hashes, read_by_source


def _write_without_repeats(
    valid_file: Path, id_hashes: list[pl.Series], target: Path, metadata: dict[str, str]
) -> None:
    """The valid rows, each event_id's first occurrence only, streamed to `target`."""
    repeats = _repeated_rows(valid_file, id_hashes)
    events = scan_by_row_group(valid_file)
    if len(repeats):
        events = (
            events.with_row_index("_row")
            .filter(~pl.col("_row").is_in(repeats.implode()))
            .drop("_row")
        )
    events.sink_parquet(
        target, row_group_size=ROW_GROUP_ROWS, compression="zstd", metadata=metadata
    )


def quarantine_matches(events_file: Path, quarantine_file: Path | None) -> bool:
    """Whether an hour's quarantine file (None: there is none) is the one its events file
    was written with. The two are published one after the other; a run killed between
    them leaves a pair that does not match until the next run of the hour rewrites both."""
    written = pq.read_metadata(events_file).metadata or {}
    expected = written.get(QUARANTINE_SHA256_KEY.encode(), b"").decode()
    return expected == (sha256_of(quarantine_file) if quarantine_file else "")
