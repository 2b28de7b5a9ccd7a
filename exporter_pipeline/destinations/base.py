"""The `Destination` interface: one key space of files under a root (folder or bucket prefix).

Keys are always '/'-separated and relative to the destination's root. Every write is
atomic: a reader sees the old object or the whole new one, never a partial file. Passing
faults are retried by each cloud SDK, configured when its client is built; what reaches a
caller is classified as retryable (the SDK gave up) or permanent.

A destination owns its client: close it (or use it as a context manager) when done.
"""

from __future__ import annotations

import abc
import builtins
import contextlib
import io
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from exporter_pipeline.errors import (
    DestinationError,
    PermanentDestinationError,
    RetryableDestinationError,
)

# Seed 002: download links expire after 7 days (also S3's longest presigned lifetime).
DEFAULT_URL_TTL = timedelta(days=7)
CHECK_PREFIX = "_exporter_check/"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime


class Destination(abc.ABC):
    """A folder or bucket prefix that holds files by key."""

    # What the SDK tried before an error reached us, said in messages: "gave up after ...".
    retries_note = ""
    # The bucket or container prefix every key is under ("" for a local folder's root).
    prefix = ""

    def _given_up(self, error: DestinationError) -> DestinationError:
        """A retryable error once the SDK's own retries are spent, saying how many there were."""
        if isinstance(error, RetryableDestinationError) and self.retries_note:
            return RetryableDestinationError(f"{error} ({self.retries_note})")
        return error

    def close(self) -> None:  # noqa: B027  # optional hook: a local folder holds nothing open
        """Release the client's connections; a closed destination is not used again."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def object_key(self, key: str) -> str:
        """The key as the bucket names the object (the destination's prefix included): what
        a tenant sees in its bucket, and what notices and the API call a file."""
        return f"{self.prefix}/{key}" if self.prefix else key

    @abc.abstractmethod
    def uri(self, key: str = "") -> str:
        """The full address of a key, for metadata and logs (never carries secrets)."""

    @abc.abstractmethod
    def put_stream(self, stream: BinaryIO, size: int, key: str) -> None:
        """Write `size` bytes from `stream` to `key` atomically: if reading the stream or the
        upload fails part way, nothing (or the old object) is at `key`, never a part."""

    def put_file(self, local_path: Path, key: str) -> None:
        """Copy a local file to `key` atomically, replacing what was there."""
        with open(local_path, "rb") as stream:
            self.put_stream(stream, local_path.stat().st_size, key)

    def move_file(self, local_path: Path, key: str) -> None:
        """Like put_file, for a local file that is no longer needed afterwards."""
        self.put_file(local_path, key)
        local_path.unlink(missing_ok=True)

    @abc.abstractmethod
    def signed_url(self, key: str, expires: timedelta = DEFAULT_URL_TTL) -> str:
        """A URL that lets anyone holding it GET the object until it expires."""

    @abc.abstractmethod
    def download(self, key: str, local_path: Path) -> None:
        """Copy the object at `key` to a local file."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object whose key starts with `prefix`, sorted by key."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove `key`; removing a key that is not there is not an error."""

    def exists(self, key: str) -> bool:
        return any(o.key == key for o in self.list(key))

    def remove_temporaries(self, prefix: str, before: datetime) -> builtins.list[str]:
        """Remove what writes killed mid-way left for keys starting with `prefix`, if it is
        older than `before`; returns the names removed. A bucket holds none: its uploads
        become objects only when complete (unfinished ones are the bucket's to expire)."""
        return []

    def check(self) -> str:
        """Write, read back and delete a small object, as peers do when an output is created.

        Returns the key used; raises a DestinationError naming what failed.
        """
        key = f"{CHECK_PREFIX}{uuid.uuid4().hex}.txt"
        payload = b"exporter_pipeline output check\n"
        self.put_bytes(payload, key)
        try:
            if self.get_bytes(key) != payload:
                raise PermanentDestinationError(f"{self.uri(key)}: read back other bytes")
        finally:
            self.delete(key)
        return key

    def put_bytes(self, data: bytes, key: str) -> None:
        # From memory, not a temporary file: a process killed here leaves nothing behind.
        self.put_stream(io.BytesIO(data), len(data), key)

    def get_bytes(self, key: str) -> bytes:
        with self.local_copy(key) as path:
            return path.read_bytes()

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        """A local file holding the object, valid inside the `with` block."""
        with tempfile.TemporaryDirectory(prefix="exporter-get-") as tmp:
            path = Path(tmp) / Path(key).name
            self.download(key, path)
            yield path
