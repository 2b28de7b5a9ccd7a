"""Downloads of a local output's files (signed_urls.py): `GET /v1/files/{output}/{key}`
with `expires` and `signature` from a files list. No API key: the signature, over the
output, the key and the expiry, is the credential; a tampered or expired link is 403, a
file that is no longer there 404. The key must name a file inside the output's folder."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from exporter_pipeline.api.context import ServicesDep
from exporter_pipeline.api.errors import ApiError, ErrorDocument, not_found
from exporter_pipeline.api.signed_urls import SECRET_NAME, safe_key, signature_problem
from exporter_pipeline.destinations.base import Destination
from exporter_pipeline.destinations.local import LocalDestination
from exporter_pipeline.errors import ExporterError
from exporter_pipeline.store.api_keys import service_secret

router = APIRouter(tags=["files"])

CHUNK = 1 << 20
# 2101-01-01: beyond it no expiry is a date (and no link lives that long).
LAST_EXPIRY = 4_133_980_800
MEDIA_TYPES = {
    ".csv": "text/csv",
    ".jsonl": "application/x-ndjson",
    ".json": "application/json",
    ".parquet": "application/vnd.apache.parquet",
    ".gz": "application/gzip",
    ".zst": "application/zstd",
}


def _media_type(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    return MEDIA_TYPES.get(suffix, "application/octet-stream")


def _chunks(destination: Destination, key: str) -> Iterator[bytes]:
    try:
        with destination.local_copy(key) as path, open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk
    finally:
        destination.close()


@router.get(
    "/files/{output}/{key:path}",
    summary="Download a file of a local output through a signed link",
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the file"},
        403: {"model": ErrorDocument, "description": "tampered or expired link"},
        404: {"model": ErrorDocument, "description": "no such file"},
    },
    response_class=StreamingResponse,
)
def download(
    output: str,
    key: str,
    services: ServicesDep,
    expires: Annotated[
        int, Query(ge=0, le=LAST_EXPIRY, description="expiry, epoch seconds (before 2101)")
    ],
    # Hex only: the comparison in constant time takes ASCII alone.
    signature: Annotated[
        str, Query(pattern=r"^[0-9a-fA-F]{1,128}$", description="HMAC-SHA256, hex")
    ],
) -> StreamingResponse:
    secret = service_secret(services.store.engine, SECRET_NAME)
    problem = signature_problem(secret, output, key, expires, signature, datetime.now(UTC))
    if problem:
        raise ApiError(403, "invalid_signature", problem, title="Forbidden", parameter="signature")
    if not safe_key(key):
        raise not_found("file", key)
    try:
        destination = services.store.open_output(output, services.output_environ())
    except ExporterError:
        raise not_found("file", key) from None
    # Only local outputs are served here: a cloud output's links are its own.
    if not isinstance(destination, LocalDestination) or not destination.exists(key):
        destination.close()
        raise not_found("file", key)
    size = next((o.size for o in destination.list(key) if o.key == key), None)
    headers = {"Content-Length": str(size)} if size is not None else {}
    name = key.rsplit("/", 1)[-1]
    headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return StreamingResponse(
        _chunks(destination, key), media_type=_media_type(key), headers=headers
    )
