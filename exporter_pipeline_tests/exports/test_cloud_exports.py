"""Exports to S3 (moto server), GCS (gcp-storage-emulator) and Azure Blob (Azurite) on
127.0.0.1: every format read back and compared with DuckDB, as for the local output; a
server stopped in the middle of an export gives a clear error, and once it is back the
re-run publishes files identical to a local reference."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from exporter_pipeline.destinations import Destination, destination_from_url
from exporter_pipeline.errors import RetryableDestinationError
from exporter_pipeline.exports.execution import ExportFailed, export_window
from exporter_pipeline.exports.formats import format_compression_pairs
from exporter_pipeline_tests.cloud import CloudServer
from exporter_pipeline_tests.exports.conftest import DAY, Lake, definition
from exporter_pipeline_tests.exports.test_read_back import (
    DATASET_CASES,
    canon,
    expected_rows,
    normalise_expected,
    read_back,
)

START, END = DAY, DAY + timedelta(hours=2)
CLOUDS = ["s3", "gcs", "azure"]


def download_all(destination: Destination, keys: list[str], folder: Path) -> list[Path]:
    local = []
    for key in keys:
        path = folder / key.replace("/", "__")
        destination.download(key, path)
        local.append(path)
    return local


@pytest.mark.parametrize("kind", CLOUDS)
@pytest.mark.parametrize(("fmt", "compression"), format_compression_pairs())
def test_every_format_to_each_cloud_reads_back(
    kind: str,
    fmt: str,
    compression: str | None,
    lake: Lake,
    cloud_servers: dict[str, CloudServer],
    tmp_path: Path,
) -> None:
    server = cloud_servers[kind]
    destination = server.destination(server.new_bucket(), prefix="tenant-root")
    export = definition(format=fmt, compression=compression, **DATASET_CASES["raw"])

    result = export_window(export, START, END, lake.store, destination, "cloud-run")

    keys = [o.key for o in destination.list("exp/")]
    assert keys == sorted([f.key for f in result.files] + [result.manifest_key])
    local = download_all(destination, [f.key for f in result.files], tmp_path)
    for entry, path in zip(result.files, local, strict=True):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.sha256
    got = read_back(local, fmt, compression)
    expected = [normalise_expected(r) for r in expected_rows("raw", lake)]
    like = expected[0]
    typed = [
        {k: canon(row.get(k), like[k] if like[k] is not None else "") for k in like} for row in got
    ]
    assert sorted(typed, key=lambda r: r["event_id"]) == sorted(
        expected, key=lambda r: r["event_id"]
    )


@pytest.mark.parametrize("kind", CLOUDS)
def test_server_stopped_mid_export_then_back(
    kind: str, lake: Lake, private_cloud: Any, tmp_path: Path
) -> None:
    export = definition(format="csv", compression="gzip")
    reference = destination_from_url(str(tmp_path / "reference"))
    export_window(export, START, END, lake.store, reference, "ref")
    expected = {
        o.key: reference.get_bytes(o.key) for o in reference.list() if "_manifests" not in o.key
    }

    server: CloudServer = private_cloud(kind)
    bucket = server.new_bucket()
    destination = server.destination(bucket)

    def stop_after_first_hour(done: int, total: int, label: str) -> None:
        if done == 1:
            server.stop()  # the server goes away while the export is running

    with pytest.raises(ExportFailed) as failed:
        export_window(export, START, END, lake.store, destination, "run-1", stop_after_first_hour)
    message = str(failed.value)
    # The SDK's own retries (3 attempts, or 3 s for GCS) were spent before the error, on
    # the first call after the files were written: the listing of the window's names.
    gave_up = "gave up after retrying for 3 s" if kind == "gcs" else "gave up after 3 attempts"
    failure = {
        "s3": "S3 list failed for s3://{}/exp/2026-10-01-0: EndpointConnectionError",
        "gcs": "GCS list failed for gs://{}/exp/2026-10-01-0: ConnectionError",
        "azure": "Azure list failed for az://{}/exp/2026-10-01-0: ServiceRequestError",
    }[kind].format(bucket)
    assert message == (
        f"export t 2026-10-01T00:00:00Z to 2026-10-01T02:00:00Z failed: {failure} ({gave_up})"
    )
    assert isinstance(failed.value.__cause__, RetryableDestinationError)

    server.start()  # back at the same address (in-memory: the bucket is made again)
    server.create_bucket(bucket)
    result = export_window(export, START, END, lake.store, destination, "run-2")
    published = {f.key: destination.get_bytes(f.key) for f in result.files}
    assert published == expected
    assert destination.exists(result.manifest_key)
