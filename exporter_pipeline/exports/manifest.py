"""The manifest of an export window (DESIGN.md, Output names), written last.

One pydantic model, `Manifest`, is both the writer and the reader: the execution builds
it and writes `manifest_bytes` (keys sorted, indent 2), and delivery, email and the
failure-notice sensor read the same file back with `Manifest.from_bytes`. `ErrorRecord`
reads the error file a failed window leaves instead (`execution.error_record` writes it).
Times are UTC with a `Z`, as `iso` writes them.
"""

from __future__ import annotations

import builtins
from datetime import UTC, datetime
from typing import Annotated

import orjson
from pydantic import BaseModel, ConfigDict, PlainSerializer
from pydantic.dataclasses import dataclass

from exporter_pipeline.checksums import sha256_of

__all__ = [
    "ErrorRecord",
    "Manifest",
    "ManifestFile",
    "Window",
    "build_manifest",
    "iso",
    "manifest_bytes",
    "sha256_of",
]

MANIFEST_VERSION = 1


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# A moment written as `iso` writes it and read back as an aware datetime.
UtcTime = Annotated[datetime, PlainSerializer(iso, return_type=str)]


# A pydantic dataclass rather than a model: executions build entries positionally.
@dataclass(frozen=True)
class ManifestFile:
    key: str
    rows: int
    bytes: int
    sha256: str


class Window(BaseModel):
    """The export window [start, end)."""

    model_config = ConfigDict(frozen=True)

    start: UtcTime
    end: UtcTime


class Manifest(BaseModel):
    """What one execution published for one window: its files, rows, bytes, checksums."""

    model_config = ConfigDict(frozen=True)

    version: int = MANIFEST_VERSION
    export: str
    tenant: str
    dataset: str
    window: Window
    run_id: str
    format: str
    compression: str | None
    columns: list[str]
    files: list[ManifestFile]
    rows: int
    bytes: int

    @classmethod
    def from_bytes(cls, data: builtins.bytes) -> Manifest:
        return cls.model_validate_json(data)

    def listed(self) -> dict[str, ManifestFile]:
        """The files the manifest lists, by key."""
        return {f.key: f for f in self.files}

    # `builtins.bytes`: in this class, `bytes` is the field.
    def to_bytes(self) -> builtins.bytes:
        return orjson.dumps(
            self.model_dump(mode="json"), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
        )


class ErrorRecord(BaseModel):
    """The error file of a window whose execution failed (seed 004)."""

    model_config = ConfigDict(frozen=True)

    export: str
    tenant: str
    run_id: str
    window: Window
    error: str
    failed_at: UtcTime
    files_published: bool
    # Data files the failed run had put at final names (then removed): their names were
    # seen, so the window's next run publishes under versioned names. Absent (0) when
    # nothing was put, or when the failure sensor wrote the record for a run that died
    # (what a dead run put is still there, and is seen as such).
    files_uploaded: int = 0

    @classmethod
    def from_bytes(cls, data: bytes) -> ErrorRecord:
        return cls.model_validate_json(data)


def build_manifest(
    *,
    export: str,
    tenant: str,
    dataset: str,
    start: datetime,
    end: datetime,
    run_id: str,
    file_format: str,
    compression: str | None,
    columns: list[str],
    files: list[ManifestFile],
) -> Manifest:
    return Manifest(
        export=export,
        tenant=tenant,
        dataset=dataset,
        window=Window(start=start, end=end),
        run_id=run_id,
        format=file_format,
        compression=compression,
        columns=columns,
        files=files,
        rows=sum(f.rows for f in files),
        bytes=sum(f.bytes for f in files),
    )


def manifest_bytes(manifest: Manifest) -> bytes:
    return manifest.to_bytes()
