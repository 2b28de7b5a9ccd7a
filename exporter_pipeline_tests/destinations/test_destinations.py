"""The `Destination` contract, one test class run against all four destinations: a local
folder, S3 (moto server), Google Cloud Storage (gcp-storage-emulator) and Azure Blob
(Azurite), each a real server on 127.0.0.1."""

from __future__ import annotations

import io
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from exporter_pipeline.destinations import Destination, destination_from_url
from exporter_pipeline.destinations.local import LocalDestination
from exporter_pipeline.errors import PermanentDestinationError
from exporter_pipeline_tests.cloud import CloudServer

KINDS = ["local", "s3", "gcs", "azure"]
BIG = 20 * 1024 * 1024  # above every multipart / resumable / block threshold


class FailingStream(io.RawIOBase):
    """A local file that breaks after `fail_after` bytes, like a disk error mid-upload."""

    def __init__(self, fail_after: int, size: int = BIG) -> None:
        self.sent = 0
        self.fail_after = fail_after
        self.size = size

    def readable(self) -> bool:
        return True

    # Seekable like a real file: resumable uploads (GCS) rewind to resend a chunk.
    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.sent

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        origin = {io.SEEK_SET: 0, io.SEEK_CUR: self.sent, io.SEEK_END: self.size}[whence]
        self.sent = origin + offset
        return self.sent

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        if self.sent >= self.fail_after:
            raise OSError("simulated read error in the middle of the upload")
        count = min(len(buffer), 64 * 1024)
        buffer[:count] = b"x" * count
        self.sent += count
        return count


def failing_reader() -> BinaryIO:
    """A buffered reader over a FailingStream that breaks half way through BIG bytes."""
    return cast(BinaryIO, io.BufferedReader(cast(io.RawIOBase, FailingStream(BIG // 2))))


# The cloud kinds start their servers at run time (getfixturevalue): marked by hand.
@pytest.fixture(
    params=[k if k == "local" else pytest.param(k, marks=pytest.mark.servers) for k in KINDS]
)
def destination(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Destination]:
    if request.param == "local":
        yield destination_from_url(str(tmp_path / "root"))
        return
    servers: dict[str, CloudServer] = request.getfixturevalue("cloud_servers")
    server = servers[request.param]
    with server.destination(server.new_bucket(), prefix="some/prefix") as opened:
        yield opened


class TestDestinationContract:
    def test_round_trip_overwrite_list_delete(
        self, destination: Destination, tmp_path: Path
    ) -> None:
        source = tmp_path / "payload.bin"
        source.write_bytes(b"first")
        destination.put_file(source, "a/b/file.csv")
        destination.put_bytes(b"other", "a/c.csv")
        destination.put_bytes(b"zzz", "z.csv")
        assert destination.get_bytes("a/b/file.csv") == b"first"
        destination.put_bytes(b"second!", "a/b/file.csv")
        assert destination.get_bytes("a/b/file.csv") == b"second!"

        assert [(o.key, o.size) for o in destination.list()] == [
            ("a/b/file.csv", 7),
            ("a/c.csv", 5),
            ("z.csv", 3),
        ]
        assert [o.key for o in destination.list("a/")] == ["a/b/file.csv", "a/c.csv"]
        assert [o.key for o in destination.list("a/b")] == ["a/b/file.csv"]
        # A prefix may end inside a name, at any depth (an export lists one day's files).
        destination.put_bytes(b"dd", "a/bz/deep.csv")
        assert [o.key for o in destination.list("a/b")] == ["a/b/file.csv", "a/bz/deep.csv"]
        assert [o.key for o in destination.list("a/bz")] == ["a/bz/deep.csv"]
        assert [o.key for o in destination.list("a/c")] == ["a/c.csv"]
        assert [o.key for o in destination.list("a/x")] == []
        destination.delete("a/bz/deep.csv")
        assert destination.exists("a/c.csv") and not destination.exists("a/missing.csv")

        destination.delete("a/b/file.csv")
        destination.delete("a/b/file.csv")  # deleting twice is fine
        assert [o.key for o in destination.list()] == ["a/c.csv", "z.csv"]
        with pytest.raises(FileNotFoundError):
            destination.get_bytes("a/b/file.csv")

    def test_large_file_round_trip(self, destination: Destination, tmp_path: Path) -> None:
        payload = os.urandom(BIG)
        (tmp_path / "big").write_bytes(payload)
        destination.put_file(tmp_path / "big", "big.bin")
        assert destination.get_bytes("big.bin") == payload

    def test_failed_upload_leaves_nothing_at_the_final_key(self, destination: Destination) -> None:
        with pytest.raises(OSError, match="simulated read error"):
            destination.put_stream(failing_reader(), BIG, "new.bin")
        assert not destination.exists("new.bin")
        # Over an existing object, the old one stays whole.
        destination.put_bytes(b"old", "kept.bin")
        with pytest.raises(OSError, match="simulated read error"):
            destination.put_stream(failing_reader(), BIG, "kept.bin")
        assert destination.get_bytes("kept.bin") == b"old"
        assert [o.key for o in destination.list()] == ["kept.bin"]

    def test_signed_url_is_fetched_with_plain_http(self, destination: Destination) -> None:
        destination.put_bytes(b"hello, viewer", "share/file.csv")
        url = destination.signed_url("share/file.csv")
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read() == b"hello, viewer"

    def test_check_writes_reads_and_deletes(self, destination: Destination) -> None:
        key = destination.check()
        assert key.startswith("_exporter_check/")
        assert destination.list() == []


def test_azurite_refuses_tampered_and_expired_sas(cloud_servers: dict[str, CloudServer]) -> None:
    server = cloud_servers["azure"]
    destination = server.destination(server.new_bucket())
    destination.put_bytes(b"private", "f.csv")
    good = destination.signed_url("f.csv")
    with urllib.request.urlopen(good, timeout=10) as response:
        assert response.read() == b"private"
    base, _, query = good.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&"))
    params["sig"] = ("A" if params["sig"][0] != "A" else "B") + params["sig"][1:]
    tampered = base + "?" + "&".join(f"{k}={v}" for k, v in params.items())
    expired = destination.signed_url("f.csv", expires=timedelta(seconds=-60))
    for refused in (tampered, expired):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(refused, timeout=10)
        assert error.value.code == 403


def test_s3_signed_urls_are_signature_version_4(cloud_servers: dict[str, CloudServer]) -> None:
    server = cloud_servers["s3"]
    with server.destination(server.new_bucket(), prefix="tenant-alpha") as destination:
        destination.put_bytes(b"rows", "raw/file.csv")
        url = destination.signed_url("raw/file.csv")
    parsed = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parsed.query)
    assert parsed.path.endswith("/tenant-alpha/raw/file.csv")
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["604800"]  # seed 002: links live 7 days
    assert {"X-Amz-Credential", "X-Amz-Date", "X-Amz-Signature"} <= set(query)
    assert not {"AWSAccessKeyId", "Signature", "Expires"} & set(query)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"rows"


@pytest.mark.parametrize("kind", ["s3", "gcs", "azure"])
def test_missing_bucket_is_a_permanent_error(
    kind: str, cloud_servers: dict[str, CloudServer]
) -> None:
    destination = cloud_servers[kind].destination("no-such-bucket-here")
    with pytest.raises(PermanentDestinationError) as error:
        destination.put_bytes(b"x", "k.csv")
    assert "no-such-bucket-here/k.csv" in str(error.value)


def test_azure_wrong_key_is_a_permanent_error(cloud_servers: dict[str, CloudServer]) -> None:
    server = cloud_servers["azure"]
    wrong = "d3Jvbmcga2V5IGZvciB0ZXN0cw=="  # base64 of "wrong key for tests"
    destination = server.destination(server.new_bucket(), TEST_AZ_KEY=wrong)
    with pytest.raises(PermanentDestinationError) as error:
        destination.put_bytes(b"x", "k.csv")
    assert str(error.value).startswith("Azure upload failed for az://")
    assert str(error.value).endswith("(403 AuthorizationFailure)")
    assert wrong not in str(error.value)


def test_azure_large_upload_is_committed_as_blocks(
    cloud_servers: dict[str, CloudServer], tmp_path: Path
) -> None:
    from exporter_pipeline.destinations.azure import BLOCK_SIZE, AzureBlobDestination

    server = cloud_servers["azure"]
    payload = os.urandom(BIG)
    (tmp_path / "big").write_bytes(payload)
    with server.destination(server.new_bucket(), prefix="p") as destination:
        assert isinstance(destination, AzureBlobDestination)
        destination.put_file(tmp_path / "big", "big.bin")
        destination.put_bytes(b"small", "small.bin")
        committed, uncommitted = destination.container.get_blob_client("p/big.bin").get_block_list(
            "all"
        )
        assert [b.size for b in committed] == [BLOCK_SIZE] * (BIG // BLOCK_SIZE)
        assert uncommitted == []
        # Below the single-put limit one request writes the blob: no block list.
        small, _ = destination.container.get_blob_client("p/small.bin").get_block_list("all")
        assert small == []
        assert destination.get_bytes("big.bin") == payload


def test_local_put_leaves_no_temporary_and_rejects_escapes(tmp_path: Path) -> None:
    local = LocalDestination(tmp_path / "root")
    local.put_bytes(b"x", "dir/file")
    assert sorted(p.name for p in (tmp_path / "root" / "dir").iterdir()) == ["file"]
    with pytest.raises(ValueError, match="escapes the destination root"):
        local.put_bytes(b"x", "../outside")


def test_unsupported_scheme_is_named() -> None:
    with pytest.raises(ValueError, match="unsupported URL scheme 'ftp'"):
        destination_from_url("ftp://host/path")
