"""What the product published into one output, found by its manifests, and one user's
rows taken out of it (erasure) without breaking the manifest.

Every export the product writes (a definition's window, an on-demand task, a user data
export) ends with a manifest in a `_manifests/` folder (an error file there when it
failed), so listing an output once finds all of them, whatever `path` a request chose.
Definition exports are regenerated from the lake by erasure; what nothing regenerates
(on-demand tasks) is published again here, as an execution publishes a window
(`exports/publish.py`): each file holding the user is written without their rows, in its
own format and compression, under a new versioned name; the manifest with the new rows,
bytes and sha256 last, as the switch; then the old files are removed.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, cast

import orjson
import polars as pl
import zstandard
from pydantic import ValidationError

from exporter_pipeline.destinations import Destination
from exporter_pipeline.destinations.base import ObjectInfo
from exporter_pipeline.errors import ExporterError
from exporter_pipeline.exports.formats import file_suffix
from exporter_pipeline.exports.manifest import ErrorRecord, Manifest, ManifestFile
from exporter_pipeline.exports.naming import (
    ERROR_SUFFIX,
    MANIFEST_FOLDER,
    data_key_part,
    data_key_time,
)
from exporter_pipeline.exports.publish import Publication, Staged
from exporter_pipeline.exports.writers import write_file

# The data set a user data export's manifest names (privacy/user_export.py).
USER_DATA: Final = "user_data"
USER_FIELD: Final = "user_id"
# The columns that name a row's user, in the order looked for: `user_id` (event rows, a
# user data export), else `viewer_identifier` (views and viewers, seed 003: the user id,
# or the client id of a viewer without one).
USER_FIELDS: Final = (USER_FIELD, "viewer_identifier")
# JSON Lines files are filtered this many lines at a time: bounded memory.
_LINES_PER_BATCH: Final = 65_536


@dataclass(frozen=True)
class Published:
    """One manifest of an output and what it lists."""

    key: str
    manifest: Manifest

    @property
    def folder(self) -> str:
        """The export's `path` (the manifest's folder's parent, "" at the output's root)."""
        return self.key.rsplit(f"{MANIFEST_FOLDER}/", 1)[0].rstrip("/")


@dataclass(frozen=True)
class PublishedIn:
    """The outputs a tenant may use: managed ones opened, the others by name only."""

    managed: dict[str, Destination]
    unmanaged: list[str] = field(default_factory=list)


@dataclass
class OutputContents:
    """An output's objects, its manifests, its error files (key and tenant), and the
    manifest or error files that could not be read (they are named, never skipped)."""

    objects: list[ObjectInfo]
    manifests: list[Published] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def is_manifest_folder_key(key: str) -> bool:
    return key.startswith(f"{MANIFEST_FOLDER}/") or f"/{MANIFEST_FOLDER}/" in key


def read_output(destination: Destination) -> OutputContents:
    """List the output once and read every manifest and error file in it."""
    contents = OutputContents(objects=destination.list(""))
    for info in contents.objects:
        key = info.key
        if not is_manifest_folder_key(key) or not key.endswith(".json"):
            continue
        try:
            data = destination.get_bytes(key)
            if key.endswith(ERROR_SUFFIX):
                contents.errors.append((key, ErrorRecord.from_bytes(data).tenant))
            else:
                contents.manifests.append(Published(key, Manifest.from_bytes(data)))
        except (ValidationError, FileNotFoundError):
            contents.unreadable.append(key)
    return contents


def user_export_subject(destination: Destination, published: Published) -> str | None:
    """The user a user data export is about (its profile's `user_id`), None if unknown."""
    for listed in published.manifest.files:
        if listed.key.rsplit("/", 1)[-1] == "profile.jsonl":
            try:
                line = destination.get_bytes(listed.key).split(b"\n", 1)[0]
                subject = orjson.loads(line).get(USER_FIELD)
            except (FileNotFoundError, orjson.JSONDecodeError, AttributeError):
                return None
            return str(subject) if subject is not None else None
    return None


def remove_published(destination: Destination, published: Published) -> None:
    """The manifest first, so it never lists a file that is already gone; then its files."""
    destination.delete(published.key)
    for listed in published.manifest.files:
        destination.delete(listed.key)


def rewrite_without_user(
    destination: Destination, published: Published, user_id: str
) -> int | None:
    """Publish the export again without `user_id`'s rows, as a run publishes a window.

    Each file holding the user is written anew under a versioned name, the others stay as
    listed; the manifest, written last, is the switch; then the old files go (a name never
    changes content). A failure before the switch leaves the export as it was.

    Returns the rows removed, or None when its files have no field naming the user
    (`USER_FIELDS`; a column selection without it, a query, an aggregate): the user's rows
    cannot be told apart there, and nothing is changed.
    """
    manifest, folder = published.manifest, published.folder
    window = manifest.window
    publication = Publication(destination, folder, window.start, window.end)
    if publication.manifest_key != published.key:
        raise ExporterError(f"manifest {published.key} is not named by its window")
    began = datetime.now(UTC)
    items: list[Staged | ManifestFile] = []
    removed = 0
    with tempfile.TemporaryDirectory(prefix="erasure-published-") as tmp:
        for number, listed in enumerate(manifest.files):
            out = Path(tmp) / f"{number}-{listed.key.rsplit('/', 1)[-1]}"
            with destination.local_copy(listed.key) as local:
                counted = _without_user(local, manifest.format, manifest.compression, user_id, out)
            if counted is None:
                return None
            kept, gone = counted
            removed += gone
            items.append(_restaged(folder, listed, out, kept) if gone else listed)
        if not removed:
            return 0

        def manifest_of(files: list[ManifestFile]) -> bytes:
            update = {
                "files": files,
                "rows": sum(f.rows for f in files),
                "bytes": sum(f.bytes for f in files),
            }
            return manifest.model_copy(update=update).to_bytes()

        suffix = file_suffix(manifest.format, manifest.compression)
        try:
            publication.publish(items, suffix, manifest_of, began)
        except Exception:
            publication.abandon()
            raise
    return removed


def _restaged(folder: str, listed: ManifestFile, local: Path, rows: int) -> Staged:
    """A rewritten file, to be published under the name of the time and part it had."""
    moment = data_key_time(folder, listed.key)
    if moment is None:
        raise ExporterError(f"{listed.key} is not named as an export's data file")
    return Staged(local, moment, data_key_part(folder, listed.key), rows)


def _without_user(
    local: Path, fmt: str, compression: str | None, user_id: str, out: Path
) -> tuple[int, int] | None:
    """Write `local` to `out` without the user's rows: (rows kept, rows removed), or None
    when the file has no user field. Only a file holding the user is written."""
    if fmt == "jsonl":
        return _jsonl_without_user(local, compression, user_id, out)
    # CSV is read as text, so every kept value is written back as it was.
    frame = pl.scan_parquet(local) if fmt == "parquet" else pl.scan_csv(local, infer_schema=False)
    column = _user_field(frame.collect_schema().names())
    if column is None:
        return None
    is_user = pl.col(column).cast(pl.String).eq(user_id).fill_null(False)
    counts = frame.select(is_user.sum().alias("user"), pl.len().alias("all")).collect()
    gone, total = int(counts["user"].item()), int(counts["all"].item())
    if gone:
        write_file(frame.filter(~is_user), fmt, compression, out)
    return total - gone, gone


def _user_field(columns: list[str]) -> str | None:
    return next((c for c in USER_FIELDS if c in columns), None)


@contextmanager
def _open_text(path: Path, compression: str | None, mode: str) -> Iterator[IO[bytes]]:
    """A JSON Lines file as bytes, read line by line or written, through its compression."""
    with contextlib.ExitStack() as stack:
        if compression == "gzip":
            stream: Any = stack.enter_context(gzip.open(path, mode))
        elif compression == "zstd" and mode == "rb":
            raw = stack.enter_context(path.open("rb"))
            # The zstandard reader does not read lines itself: buffered, it does.
            reader = stack.enter_context(zstandard.ZstdDecompressor().stream_reader(raw))
            stream = io.BufferedReader(reader)
        elif compression == "zstd":
            sink = stack.enter_context(path.open("wb"))
            stream = stack.enter_context(zstandard.ZstdCompressor().stream_writer(sink))
        else:
            stream = stack.enter_context(path.open(mode))
        yield cast(IO[bytes], stream)


def _batches(source: IO[bytes]) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for line in source:
        batch.append(line)
        if len(batch) == _LINES_PER_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _jsonl_without_user(
    local: Path, compression: str | None, user_id: str, out: Path
) -> tuple[int, int] | None:
    """JSON Lines filtered line by line: every kept line is written back byte for byte."""
    with _open_text(local, compression, "rb") as source:
        first = source.readline()
    if not first.strip():
        return 0, 0
    column = _user_field(list(orjson.loads(first)))
    if column is None:
        return None
    kept = gone = 0
    with _open_text(local, compression, "rb") as source, _open_text(out, compression, "wb") as sink:
        for batch in _batches(source):
            users = pl.Series(batch, dtype=pl.Binary).cast(pl.String)
            is_user = users.str.json_path_match(f"$.{column}").eq(user_id).fill_null(False)
            for line, drop in zip(batch, is_user, strict=True):
                if drop:
                    gone += 1
                else:
                    kept += 1
                    sink.write(line)
    if not gone:
        out.unlink()
    return kept, gone
