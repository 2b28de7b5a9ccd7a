"""A local folder as a destination: atomic by write-to-temporary-then-rename."""

from __future__ import annotations

import builtins
import contextlib
import errno
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from exporter_pipeline.destinations.base import DEFAULT_URL_TTL, Destination, ObjectInfo

# Temporaries carry this prefix so a listing never shows a half-written file.
TEMP_PREFIX = ".tmp-"
# `put_stream`'s temporary of `<name>`: `.tmp-<32 hex>-<name>`.
_TEMPORARY = re.compile(re.escape(TEMP_PREFIX) + r"[0-9a-f]{32}-(.+)")


class LocalDestination(Destination):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if path != self.root and self.root not in path.parents:
            raise ValueError(f"key {key!r} escapes the destination root")
        return path

    def uri(self, key: str = "") -> str:
        return str(self.root / key) if key else str(self.root)

    def put_stream(self, stream: BinaryIO, size: int, key: str) -> None:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.parent / f"{TEMP_PREFIX}{uuid.uuid4().hex}-{final.name}"
        try:
            with open(temp, "wb") as handle:
                shutil.copyfileobj(stream, handle, length=1 << 20)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, final)
        finally:
            temp.unlink(missing_ok=True)

    def move_file(self, local_path: Path, key: str) -> None:
        """Rename into place when on the same filesystem (no copy), else copy atomically."""
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        with open(local_path, "rb+") as handle:
            os.fsync(handle.fileno())
        try:
            os.replace(local_path, final)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            super().move_file(local_path, key)

    def signed_url(self, key: str, expires: timedelta = DEFAULT_URL_TTL) -> str:
        """A `file://` URL: a local folder has no signatures; it is reachable on this host."""
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(f"no object at {self.uri(key)}")
        return path.as_uri()

    def download(self, key: str, local_path: Path) -> None:
        shutil.copyfile(self._path(key), local_path)

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        # A local object is already a file: no copy needed.
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(f"no object at {self.uri(key)}")
        yield path

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        # Walk only the deepest folder the prefix names, then filter on the full prefix.
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = self._path(folder) if folder else self.root
        if not base.is_dir():
            return []
        found = []
        for dirpath, dirs, files in os.walk(base):
            # Descend only into folders whose keys can start with the prefix.
            folder_key = Path(dirpath).relative_to(self.root).as_posix()
            dirs[:] = [
                d
                for d in dirs
                if _may_hold(f"{folder_key}/{d}/" if folder_key != "." else f"{d}/", prefix)
            ]
            # Keys are compared as text before any path is built: a prefix naming a few
            # objects of a large folder costs a string test per other name, not a stat.
            key_prefix = f"{folder_key}/" if folder_key != "." else ""
            for name in files:
                key = f"{key_prefix}{name}"
                if name.startswith(TEMP_PREFIX) or not key.startswith(prefix):
                    continue
                stat = os.stat(os.path.join(dirpath, name))
                found.append(
                    ObjectInfo(key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))
                )
        return sorted(found, key=lambda o: o.key)

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        # Drop folders the delete left empty, up to the root, so listings stay tidy.
        parent = path.parent
        while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def remove_temporaries(self, prefix: str, before: datetime) -> builtins.list[str]:
        """Remove the temporaries of keys starting with `prefix` last written before
        `before`: a process killed inside `put_stream` leaves its `.tmp-<uuid>-<name>`
        (never listed); a write still going on touches its own after `before`."""
        folder, _, start = prefix.rpartition("/")
        base = self._path(folder) if folder else self.root
        if not base.is_dir():
            return []
        removed = []
        for entry in os.scandir(base):
            match = _TEMPORARY.fullmatch(entry.name)
            if not match or not match.group(1).startswith(start) or not entry.is_file():
                continue
            if datetime.fromtimestamp(entry.stat().st_mtime, UTC) < before:
                Path(entry.path).unlink(missing_ok=True)
                removed.append(f"{folder}/{entry.name}" if folder else entry.name)
        return sorted(removed)


def _may_hold(folder_key: str, prefix: str) -> bool:
    """Whether keys under `folder_key` (ending in /) can start with `prefix`."""
    return folder_key.startswith(prefix) or prefix.startswith(folder_key)
