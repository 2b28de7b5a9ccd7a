"""What a delivery tells the tenant: the webhook body of DESIGN.md, as typed models.

`ReadyNotice` is made from a `Manifest` (every file, and the manifest itself, with a
signed URL valid 7 days), `FailedNotice` from an `ErrorRecord`. Keys are the objects'
keys in the bucket, the output's prefix included: what the tenant finds there. The
webhook sends `body()`; the email is written from the same notice, so both say the same
thing.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from exporter_pipeline.destinations.base import Destination
from exporter_pipeline.exports.manifest import ErrorRecord, Manifest, Window


class NoticeFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    url: str
    rows: int
    bytes: int
    sha256: str


class ReadyNotice(BaseModel):
    """`export.ready`: the window's files are published."""

    model_config = ConfigDict(frozen=True)

    type: Literal["export.ready"] = "export.ready"
    export: str
    tenant: str
    window: Window
    manifest: str
    # Extensions of DESIGN.md's body: the run that wrote the files (as `export.failed`
    # has it) and a signed URL of the manifest itself.
    manifest_url: str
    run_id: str
    files: list[NoticeFile]

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class FailedNotice(BaseModel):
    """`export.failed`: the window's execution failed; nothing of it was published."""

    model_config = ConfigDict(frozen=True)

    type: Literal["export.failed"] = "export.failed"
    export: str
    tenant: str
    window: Window
    error_file: str
    error: str
    run_id: str

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


Notice = ReadyNotice | FailedNotice


def ready_notice(manifest: Manifest, key: str, destination: Destination) -> ReadyNotice:
    """The notice of the manifest at `key` of `destination`, each file with its signed URL."""
    files = [
        NoticeFile(
            key=destination.object_key(f.key),
            url=destination.signed_url(f.key),
            rows=f.rows,
            bytes=f.bytes,
            sha256=f.sha256,
        )
        for f in manifest.files
    ]
    return ReadyNotice(
        export=manifest.export,
        tenant=manifest.tenant,
        window=manifest.window,
        manifest=destination.object_key(key),
        manifest_url=destination.signed_url(key),
        run_id=manifest.run_id,
        files=files,
    )


def failed_notice(record: ErrorRecord, key: str, destination: Destination) -> FailedNotice:
    return FailedNotice(
        export=record.export,
        tenant=record.tenant,
        window=record.window,
        error_file=destination.object_key(key),
        error=record.error,
        run_id=record.run_id,
    )
