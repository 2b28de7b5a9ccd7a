"""The `Destination` contract, run against a local folder and a real S3-compatible server
(moto in server mode on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter_pipeline.destinations import Destination, destination_from_url
from exporter_pipeline.destinations.local import LocalDestination
from exporter_pipeline.destinations.s3 import S3Destination
from exporter_pipeline.errors import PermanentDestinationError
from exporter_pipeline_tests.conftest import S3Server


@pytest.fixture(params=["local", "s3"])
def destination(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Destination]:
    if request.param == "local":
        yield destination_from_url(str(tmp_path / "root"))
    else:
        server: S3Server = request.getfixturevalue("s3_env")
        yield destination_from_url(f"s3://{server.new_bucket()}/some/prefix")


def test_round_trip_overwrite_list_delete(destination: Destination, tmp_path: Path) -> None:
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
    assert destination.exists("a/c.csv") and not destination.exists("a/missing.csv")

    destination.delete("a/b/file.csv")
    destination.delete("a/b/file.csv")  # deleting twice is fine
    assert [o.key for o in destination.list()] == ["a/c.csv", "z.csv"]
    with pytest.raises(FileNotFoundError):
        destination.get_bytes("a/b/file.csv")


def test_local_put_leaves_no_temporary_and_rejects_escapes(tmp_path: Path) -> None:
    local = LocalDestination(tmp_path / "root")
    local.put_bytes(b"x", "dir/file")
    assert sorted(p.name for p in (tmp_path / "root" / "dir").iterdir()) == ["file"]
    with pytest.raises(ValueError, match="escapes the destination root"):
        local.put_bytes(b"x", "../outside")


def test_s3_missing_bucket_is_a_permanent_error(s3_env: S3Server) -> None:
    missing = S3Destination.from_environment(bucket="no-such-bucket-here")
    with pytest.raises(PermanentDestinationError, match="s3://no-such-bucket-here/k: NoSuchBucket"):
        missing.put_bytes(b"x", "k")


def test_unsupported_scheme_is_named() -> None:
    with pytest.raises(ValueError, match="unsupported URL scheme 'ftp'"):
        destination_from_url("ftp://host/path")
