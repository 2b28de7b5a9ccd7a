"""The manifest of an export window (DESIGN.md, Output names), written last."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from exporter_pipeline.checksums import sha256_of

__all__ = ["ManifestFile", "build_manifest", "iso", "manifest_bytes", "sha256_of"]

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class ManifestFile:
    key: str
    rows: int
    bytes: int
    sha256: str


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


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
) -> dict[str, Any]:
    return {
        "version": MANIFEST_VERSION,
        "export": export,
        "tenant": tenant,
        "dataset": dataset,
        "window": {"start": iso(start), "end": iso(end)},
        "run_id": run_id,
        "format": file_format,
        "compression": compression,
        "columns": columns,
        "files": [asdict(f) for f in files],
        "rows": sum(f.rows for f in files),
        "bytes": sum(f.bytes for f in files),
    }


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
