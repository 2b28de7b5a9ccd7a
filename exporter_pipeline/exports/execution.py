"""One execution of an export over one window: select, write, publish, manifest last.

The window's files are first written to a local working folder. Only when every file
is complete are they published, all or nothing (`exports/publish.py`): uploaded under
names that are not live, the manifest written last as the switch, then the old window's
other files removed. A failure before the switch leaves the output as it was, plus an
error file (seed 004) beside where the manifest would be, with the reason.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from exporter_pipeline.destinations import Destination
from exporter_pipeline.errors import ExporterError
from exporter_pipeline.exports.catalog import DATASETS
from exporter_pipeline.exports.datasets import AggregateDataSet, RowsDataSet
from exporter_pipeline.exports.formats import file_suffix
from exporter_pipeline.exports.manifest import (
    ManifestFile,
    build_manifest,
    iso,
    manifest_bytes,
)
from exporter_pipeline.exports.naming import (
    error_key,
    manifest_key,
)
from exporter_pipeline.exports.publish import Publication, Staged
from exporter_pipeline.exports.spec import ExportDefinition
from exporter_pipeline.exports.workdirs import work_folder
from exporter_pipeline.exports.writers import write_file, write_parts
from exporter_pipeline.lake import hourly_key
from exporter_pipeline.windows import hours_of

Progress = Callable[[int, int, str], None]


class ExportFailed(ExporterError):
    """An execution failed; its error file says why."""


@dataclass
class ExecutionResult:
    export: str
    start: datetime
    end: datetime
    manifest_key: str
    files: list[ManifestFile] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    # Old files the clean-up after the switch could not remove (the next run removes them).
    left: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)


class _LakeFiles:
    """Local copies of lake files, kept for the life of the execution."""

    def __init__(self, lake: Destination, stack: contextlib.ExitStack) -> None:
        self.lake = lake
        self.stack = stack

    def hour(self, dataset: str, hour: datetime) -> Path:
        try:
            return self.stack.enter_context(self.lake.local_copy(hourly_key(dataset, hour)))
        except FileNotFoundError:
            raise ExportFailed(
                f"{dataset} has no data for {hour:%Y-%m-%d %H:00} UTC in the lake: "
                f"materialize {dataset} for that hour first"
            ) from None

    def hours(self, dataset: str, start: datetime, end: datetime) -> list[Path]:
        return [self.hour(dataset, hour) for hour in hours_of(start, end)]


def _write_window(
    export: ExportDefinition,
    start: datetime,
    end: datetime,
    files: _LakeFiles,
    work: Path,
    progress: Progress,
) -> tuple[list[Staged], list[str]]:
    """Every file of the window, complete in `work`, and the columns."""
    written: list[Staged] = []

    def keep(moment: datetime, parts: list[tuple[Path, int]]) -> None:
        numbered = len(parts) > 1
        for number, (local, rows) in enumerate(parts, start=1):
            written.append(Staged(local, moment, number if numbered else None, rows))

    dataset = DATASETS[export.dataset]
    if isinstance(dataset, RowsDataSet):
        hours = hours_of(start, end)
        for number, hour in enumerate(hours, start=1):
            frame = dataset.hour_rows(export, files, hour, start, end)
            base = work / f"{hour:%Y%m%d%H}"

            def local_part(part: int | None, base: Path = base) -> Path:
                return base.with_suffix(f".{part or 0:03d}")

            keep(
                hour,
                write_parts(
                    frame, export.format, export.compression, local_part, export.max_file_bytes
                ),
            )
            progress(number, len(hours), f"{hour:%Y-%m-%d %H:00}")
        return written, dataset.output_columns(export)

    assert isinstance(dataset, AggregateDataSet)
    frame = dataset.window_rows(export, files, start, end, work)
    local = work / "window.out"
    keep(start, [(local, write_file(frame, export.format, export.compression, local))])
    progress(1, 1, f"{start:%Y-%m-%d %H:%M}")
    return written, frame.collect_schema().names()


def error_record(
    export: ExportDefinition,
    run_id: str,
    start: datetime,
    end: datetime,
    reason: str,
    published: bool,
    failed_at: datetime,
    uploaded: int = 0,
) -> dict[str, object]:
    """The error file's content (seed 004), whoever writes it: the run, or the failure
    sensor for a run that died before it could (which counts no file uploaded: what a
    dead run put is still there, seen as such by the window's next run)."""
    return {
        "export": export.name,
        "tenant": export.tenant,
        "run_id": run_id,
        "window": {"start": iso(start), "end": iso(end)},
        "error": reason,
        "failed_at": iso(failed_at),
        "files_published": published,
        "files_uploaded": uploaded,
    }


def export_window(
    export: ExportDefinition,
    start: datetime,
    end: datetime,
    lake: Destination,
    output: Destination,
    run_id: str,
    progress: Progress | None = None,
) -> ExecutionResult:
    """Run one execution of `export` for [start, end) and publish it to `output`."""
    began = time.monotonic()
    began_at = datetime.now(UTC)
    path = export.output.path
    result = ExecutionResult(export.name, start, end, manifest_key(path, start, end))
    publication = Publication(output, path, start, end)
    try:
        with (
            work_folder(export.name) as work,  # also removes folders dead runs left
            contextlib.ExitStack() as stack,
        ):
            files = _LakeFiles(lake, stack)
            written, columns = _write_window(export, start, end, files, work, progress or _quiet)

            def manifest_of(published: list[ManifestFile]) -> bytes:
                return manifest_bytes(
                    build_manifest(
                        export=export.name,
                        tenant=export.tenant,
                        dataset=export.dataset,
                        start=start,
                        end=end,
                        run_id=run_id,
                        file_format=export.format,
                        compression=export.compression,
                        columns=columns,
                        files=published,
                    )
                )

            suffix = file_suffix(export.format, export.compression)
            done = publication.publish(written, suffix, manifest_of, began_at)
        result.files, result.removed, result.left = done.files, done.removed, done.left
    except Exception as error:
        publication.abandon()
        reason = str(error) if isinstance(error, ExporterError) else _unexpected(error)
        _write_error_file(export, run_id, publication, reason)
        raise ExportFailed(
            f"export {export.name} {iso(start)} to {iso(end)} failed: {reason}"
        ) from error
    result.seconds = time.monotonic() - began
    return result


def _write_error_file(
    export: ExportDefinition, run_id: str, publication: Publication, reason: str
) -> None:
    """The failed window's error file (seed 004), beside where its manifest would be."""
    start, end = publication.start, publication.end
    record = error_record(
        export,
        run_id,
        start,
        end,
        reason,
        publication.switched,
        datetime.now(UTC),
        len(publication.uploaded),
    )
    with contextlib.suppress(Exception):  # the original error is the one to report
        publication.output.put_bytes(
            orjson.dumps(record, option=orjson.OPT_INDENT_2),
            error_key(publication.path, start, end),
        )


# An absolute path in a library's error text: the service's folders are not the tenant's.
_PATH = re.compile(r"(?<![\w.])/[^\s'\"]+")


def _unexpected(error: Exception) -> str:
    """An error we did not raise ourselves, as the tenant may read it: its kind and first
    line, with paths on the service's machine left out."""
    text = str(error).strip()
    first = _PATH.sub("<path>", text.splitlines()[0]) if text else ""
    return f"{type(error).__name__}: {first}"


def _quiet(done: int, total: int, label: str) -> None:
    return None
