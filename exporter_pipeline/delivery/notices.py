"""What a delivery tells the tenant: the webhook body of DESIGN.md, as typed models.

`ReadyNotice` is made from a `Manifest` (every file with a signed URL valid 7 days),
`FailedNotice` from an `ErrorRecord`. The webhook sends `body()`; the email is written
from the same notice, so both say the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

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


def ready_notice(manifest: Manifest, key: str, signed_url: Callable[[str], str]) -> ReadyNotice:
    """The notice of the manifest at `key`, each file with the URL `signed_url` gives it."""
    return ReadyNotice(
        export=manifest.export,
        tenant=manifest.tenant,
        window=manifest.window,
        manifest=key,
        files=[
            NoticeFile(
                key=f.key, url=signed_url(f.key), rows=f.rows, bytes=f.bytes, sha256=f.sha256
            )
            for f in manifest.files
        ],
    )


def failed_notice(record: ErrorRecord, key: str) -> FailedNotice:
    return FailedNotice(
        export=record.export,
        tenant=record.tenant,
        window=record.window,
        error_file=key,
        error=record.error,
        run_id=record.run_id,
    )
