"""The manifest, the error file and the notices as typed models: pure, no server.

The manifest's JSON is DESIGN.md's contract, byte for byte (keys sorted, indent 2), and
the same model reads back what it wrote; the error file `execution.error_record` writes
reads into `ErrorRecord` and serializes to the same JSON; the webhook bodies keep the
key order and content of the contract.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from pydantic import ValidationError

from exporter_pipeline.delivery.notices import failed_notice, ready_notice
from exporter_pipeline.destinations.s3 import S3Destination
from exporter_pipeline.exports.execution import error_record
from exporter_pipeline.exports.manifest import (
    ErrorRecord,
    Manifest,
    ManifestFile,
    build_manifest,
    manifest_bytes,
)
from exporter_pipeline.exports.spec import parse_definitions

START = datetime(2026, 10, 1, tzinfo=UTC)
END = START + timedelta(hours=1)
MANIFEST = b"""{
  "bytes": 30,
  "columns": [
    "event_time",
    "user_id"
  ],
  "compression": "gzip",
  "dataset": "raw",
  "export": "acme_hourly",
  "files": [
    {
      "bytes": 30,
      "key": "out/2026-10-01-00-00.csv.gz",
      "rows": 2,
      "sha256": "ab12"
    }
  ],
  "format": "csv",
  "rows": 2,
  "run_id": "run-1",
  "tenant": "acme",
  "version": 1,
  "window": {
    "end": "2026-10-01T01:00:00Z",
    "start": "2026-10-01T00:00:00Z"
  }
}"""


def manifest(start: datetime = START, end: datetime = END) -> Manifest:
    return build_manifest(
        export="acme_hourly",
        tenant="acme",
        dataset="raw",
        start=start,
        end=end,
        run_id="run-1",
        file_format="csv",
        compression="gzip",
        columns=["event_time", "user_id"],
        files=[ManifestFile("out/2026-10-01-00-00.csv.gz", 2, 30, "ab12")],
    )


def test_manifest_json_is_the_contract_byte_for_byte_and_reads_back() -> None:
    written = manifest_bytes(manifest())
    assert written == MANIFEST
    read = Manifest.from_bytes(written)
    assert read == manifest() and read.to_bytes() == written
    assert read.window.start == START and read.files[0].rows == 2


def test_manifest_times_are_utc_with_z_whatever_the_offset_given() -> None:
    berlin = timezone(timedelta(hours=2))
    written = manifest(START.astimezone(berlin), END.astimezone(berlin)).to_bytes()
    assert written == MANIFEST


def test_a_file_that_is_not_a_manifest_is_refused() -> None:
    with pytest.raises(ValidationError):
        Manifest.from_bytes(b'{"run_id": "r"}')


def test_error_record_reads_into_the_model_and_writes_the_same_json(tmp_path: Path) -> None:
    document = {
        "outputs": {"o": {"type": "local", "path": str(tmp_path)}},
        "exports": [
            {
                "name": "acme_hourly",
                "tenant": "acme",
                "dataset": "raw",
                "cadence": "hourly",
                "start": "2026-10-01T00:00:00Z",
                "output": {"name": "o"},
            }
        ],
    }
    export = parse_definitions(document, Path("exports.yaml"), now=END).exports[0]
    record = error_record(export, "run-2", START, END, "no data", False, END)
    written = orjson.dumps(record, option=orjson.OPT_INDENT_2)
    model = ErrorRecord.from_bytes(written)
    assert orjson.dumps(model.model_dump(mode="json"), option=orjson.OPT_INDENT_2) == written
    with bucket() as destination:
        body = failed_notice(model, "out/_manifests/x.error.json", destination).body()
    assert body == {
        "type": "export.failed",
        "export": "acme_hourly",
        "tenant": "acme",
        "window": {"start": "2026-10-01T00:00:00Z", "end": "2026-10-01T01:00:00Z"},
        "error_file": "tenant-alpha/out/_manifests/x.error.json",
        "error": "no data",
        "run_id": "run-2",
    }
    assert list(body) == ["type", "export", "tenant", "window", "error_file", "error", "run_id"]


def bucket() -> S3Destination:
    """An S3 output under the prefix `tenant-alpha`: presigning is computed locally, so no
    server is needed to read the URLs it gives."""
    return S3Destination.connect(
        "acme-exports",
        "tenant-alpha",
        attempts=1,
        region="eu-west-1",
        access_key_id="AKIDEXAMPLE",
        secret_access_key="not-a-secret",
    )


def test_ready_notice_is_the_webhook_body_of_the_contract() -> None:
    with bucket() as destination:
        body = ready_notice(manifest(), "out/_manifests/m.json", destination).body()
    # Keys are the objects' keys in the bucket (the output's prefix included); URLs are
    # SigV4 presigned URLs of those objects, valid 7 days.
    urls = [body.pop("manifest_url"), *(f.pop("url") for f in body["files"])]
    for url, key in zip(urls, [body["manifest"], body["files"][0]["key"]], strict=True):
        parsed = urlsplit(url)
        query = parse_qs(parsed.query)
        assert parsed.path == f"/acme-exports/{key}" or parsed.netloc.startswith("acme-exports.")
        assert parsed.path.endswith(key)
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        assert query["X-Amz-Expires"] == ["604800"]
    assert body == {
        "type": "export.ready",
        "export": "acme_hourly",
        "tenant": "acme",
        "window": {"start": "2026-10-01T00:00:00Z", "end": "2026-10-01T01:00:00Z"},
        "manifest": "tenant-alpha/out/_manifests/m.json",
        "run_id": "run-1",
        "files": [
            {
                "key": "tenant-alpha/out/2026-10-01-00-00.csv.gz",
                "rows": 2,
                "bytes": 30,
                "sha256": "ab12",
            }
        ],
    }
    assert list(body) == ["type", "export", "tenant", "window", "manifest", "run_id", "files"]
