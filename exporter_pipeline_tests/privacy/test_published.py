"""The pure parts of erasure and retention in outputs, on local folders (no server): which
quarantined records are a user's; an export rewritten without a user in every format and
compression of `FILE_FORMATS` (kept rows byte for byte in JSON Lines, the manifest's rows,
bytes and sha256 those of the new files); files with no user column left alone;
retention judging a manifest by its own write time and keeping every file a live
manifest lists (a re-run window)."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import zstandard

from exporter_pipeline.destinations.base import ObjectInfo
from exporter_pipeline.destinations.local import LocalDestination
from exporter_pipeline.errors import ExporterError
from exporter_pipeline.exports.formats import file_suffix, format_compression_pairs
from exporter_pipeline.exports.manifest import ManifestFile, build_manifest, sha256_of
from exporter_pipeline.exports.publish import Publication, Staged
from exporter_pipeline.exports.writers import write_file
from exporter_pipeline.privacy.erasure import _quarantine_matches
from exporter_pipeline.privacy.published import Published, read_output, rewrite_without_user
from exporter_pipeline.privacy.retention import RetentionPolicy, plan_retention

START = datetime(2026, 10, 1, tzinfo=UTC)
ROWS = pl.LazyFrame(
    {
        "event_id": [f"e{i}" for i in range(10)],
        "user_id": ["u", "v", None, "u", "w", "u", "v", "w", "x", "u"],
        "played_ms": list(range(10)),
        "event_time": [START + timedelta(minutes=i) for i in range(10)],
    }
)


def test_quarantined_records_of_the_user() -> None:
    records = {
        '{"user_id": "u"}': True,  # missing tenant
        '{"tenant": "", "user_id": "u"}': True,  # blank tenant
        '{"tenant": " acme ", "user_id": " u "}': True,
        '{"tenant": "acme", "user_id": "u", "event_type": "x"}': True,
        '{"tenant": "globex", "user_id": "u"}': False,
        '{"tenant": "acme", "user_id": "v"}': False,
        '{"tenant": "acme", "user_id": "uu"}': False,
        '{"tenant": "acme", "user_id": "u", "event_time": ': True,  # malformed
        '{"user_id": "u", "event_time": ': True,  # malformed, no tenant key
        '{"tenant": "globex", "user_id": "u", ': False,  # malformed, another tenant's
        '{"tenant": "acme", "user_id": "uu", ': False,
        '["acme", "u"]': False,  # JSON, not an object: no user field
    }
    frame = pl.DataFrame({"record": list(records)})
    matched = frame.select(_quarantine_matches("acme", "u"))["record"].to_list()
    assert dict(zip(records, matched, strict=True)) == records


def published(
    root: Path, fmt: str, compression: str | None, frames: pl.LazyFrame | list[pl.LazyFrame]
) -> Published:
    """A two-hour task window in `tasks`, one file an hour (`frame`, or one frame each)."""
    out = LocalDestination(root)
    files = []
    for hour, frame in enumerate(frames if isinstance(frames, list) else [frames, frames]):
        key = (
            f"tasks/{START + timedelta(hours=hour):%Y-%m-%d-%H-%M}.{file_suffix(fmt, compression)}"
        )
        local = root.parent / "work" / key.replace("/", "_")
        local.parent.mkdir(exist_ok=True)
        rows = write_file(frame, fmt, compression, local)
        out.put_file(local, key)
        files.append(ManifestFile(key, rows, local.stat().st_size, sha256_of(local)))
    manifest = build_manifest(
        export="task",
        tenant="acme",
        dataset="raw",
        start=START,
        end=START + timedelta(hours=2),
        run_id="r",
        file_format=fmt,
        compression=compression,
        columns=[],
        files=files,
    )
    key = "tasks/_manifests/2026-10-01-00-00_2026-10-01-02-00.json"
    out.put_bytes(manifest.to_bytes(), key)
    return read_output(out).manifests[0]


def text_of(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    return data


@pytest.mark.parametrize(("fmt", "compression"), format_compression_pairs())
def test_an_export_is_rewritten_without_the_user(
    tmp_path: Path, fmt: str, compression: str | None
) -> None:
    root = tmp_path / "out"
    item = published(root, fmt, compression, ROWS)
    before = [text_of(root / f.key) for f in item.manifest.files]
    assert rewrite_without_user(LocalDestination(root), item, "u") == 8  # 4 rows, 2 files
    manifest = json.loads((root / item.key).read_text())
    assert manifest["rows"] == 12 and [f["rows"] for f in manifest["files"]] == [6, 6]
    # New content, new (versioned) names; the old files are gone, nothing else is there.
    suffix = file_suffix(fmt, compression)
    assert [f["key"] for f in manifest["files"]] == [
        f"tasks/2026-10-01-0{hour}-00.{f['sha256'][:12]}.{suffix}"
        for hour, f in enumerate(manifest["files"])
    ]
    assert files_in(root) == sorted([item.key, *(f["key"] for f in manifest["files"])])
    for entry, old in zip(manifest["files"], before, strict=True):
        path = root / entry["key"]
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert entry["bytes"] == path.stat().st_size
        if fmt == "parquet":
            kept = pl.read_parquet(path)
            assert kept.equals(ROWS.collect().filter(pl.col("user_id").ne_missing("u")))
        elif fmt == "jsonl":  # every kept line as it was
            lines = old.splitlines(keepends=True)
            assert text_of(path) == b"".join(line for line in lines if b'"user_id":"u"' not in line)
        else:
            kept = pl.read_csv(io.BytesIO(text_of(path)), infer_schema=False)
            assert kept["event_id"].to_list() == ["e1", "e2", "e4", "e6", "e7", "e8"]
    assert sum(f["bytes"] for f in manifest["files"]) == manifest["bytes"]


def files_in(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_a_file_without_the_user_keeps_its_name(tmp_path: Path) -> None:
    root = tmp_path / "out"
    without = ROWS.filter(pl.col("user_id").ne_missing("u"))
    item = published(root, "csv", None, [without, ROWS])
    kept, changed = item.manifest.files
    assert rewrite_without_user(LocalDestination(root), item, "u") == 4
    files = json.loads((root / item.key).read_text())["files"]
    assert files[0] == {"key": kept.key, "rows": 6, "bytes": kept.bytes, "sha256": kept.sha256}
    new = hashlib.sha256((root / files[1]["key"]).read_bytes()).hexdigest()
    assert files[1]["key"] == f"tasks/2026-10-01-01-00.{new[:12]}.csv" != changed.key
    assert files_in(root) == sorted([item.key, kept.key, files[1]["key"]])


class _FailsSecondPut(LocalDestination):
    """An output whose second upload fails: the rewrite is all or nothing."""

    moves = 0

    def move_file(self, local_path: Path, key: str) -> None:
        self.moves += 1
        if self.moves == 2:
            raise ConnectionResetError(104, "Connection reset by peer")
        super().move_file(local_path, key)


def test_a_failed_rewrite_leaves_the_export_as_it_was(tmp_path: Path) -> None:
    root = tmp_path / "out"
    item = published(root, "csv", None, ROWS)
    before = {key: (root / key).read_bytes() for key in files_in(root)}
    with pytest.raises(ConnectionResetError):
        rewrite_without_user(_FailsSecondPut(root), item, "u")
    assert {key: (root / key).read_bytes() for key in files_in(root)} == before


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_an_export_without_a_user_column_is_left_alone(tmp_path: Path, fmt: str) -> None:
    root = tmp_path / "out"
    item = published(root, fmt, None, ROWS.drop("user_id"))
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert rewrite_without_user(LocalDestination(root), item, "u") is None
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_a_manifest_keeps_the_files_it_lists_and_goes_with_them(tmp_path: Path) -> None:
    """A young manifest keeps an old file it lists (a file kept by a re-run); an expired
    manifest goes with its files; another location's tenant's manifest is left."""
    root = tmp_path / "out"
    item = published(root, "csv", None, ROWS)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    old = (now - timedelta(days=8)).timestamp()
    os.utime(root / item.manifest.files[0].key, (old, old))
    managed = {"managed": (LocalDestination(root), ["elsewhere"])}
    lake = LocalDestination(tmp_path / "lake")
    assert plan_retention(lake, managed, now, RetentionPolicy()).export_keys == {}
    for key in (item.key, item.manifest.files[1].key):
        os.utime(root / key, (old, old))
    plan = plan_retention(lake, managed, now, RetentionPolicy())
    assert plan.export_keys == {
        "managed": sorted([item.key, *(f.key for f in item.manifest.files)])
    }
    other = plan_retention(lake, managed, now, RetentionPolicy(), holds=lambda _: False)
    assert other.export_keys == {}


def publish_window(out: LocalDestination, work: Path, frames: list[pl.LazyFrame]) -> list[str]:
    """Publish one two-hour window of `tasks` (one CSV file an hour) as a run does."""
    publication = Publication(out, "tasks", START, START + timedelta(hours=2))
    staged = []
    for hour, frame in enumerate(frames):
        local = work / f"{hour}.csv"
        staged.append(
            Staged(
                local, START + timedelta(hours=hour), None, write_file(frame, "csv", None, local)
            )
        )

    def manifest_of(files: list[ManifestFile]) -> bytes:
        return build_manifest(
            export="task",
            tenant="acme",
            dataset="raw",
            start=START,
            end=START + timedelta(hours=2),
            run_id="r",
            file_format="csv",
            compression=None,
            columns=[],
            files=files,
        ).to_bytes()

    done = publication.publish(staged, "csv", manifest_of, datetime.now(UTC))
    return [f.key for f in done.files]


@pytest.mark.parametrize("paths", [["elsewhere"], ["tasks"]])
def test_a_re_run_window_stays_until_its_new_manifest_expires(
    tmp_path: Path, paths: list[str]
) -> None:
    """Files 8 days old, hour 1 changed, re-run: nothing goes now (the new manifest keeps
    the old hour-0 file); 8 days on, the manifest and both files it lists go, whether the
    window is a task's (found by its manifest) or under a definition's path."""
    root, work = tmp_path / "out", tmp_path / "work"
    work.mkdir()
    out = LocalDestination(root)
    first = publish_window(out, work, [ROWS, ROWS])
    assert first == ["tasks/2026-10-01-00-00.csv", "tasks/2026-10-01-01-00.csv"]
    now = datetime.now(UTC)
    old = (now - timedelta(days=8)).timestamp()
    for path in root.rglob("*"):
        os.utime(path, (old, old))
    second = publish_window(out, work, [ROWS, ROWS.head(3)])
    changed = hashlib.sha256((root / second[1]).read_bytes()).hexdigest()
    assert second == [first[0], f"tasks/2026-10-01-01-00.{changed[:12]}.csv"]
    manifest = "tasks/_manifests/2026-10-01-00-00_2026-10-01-02-00.json"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == (
        sorted([*second, manifest])
    )
    managed = {"managed": (out, paths)}
    lake = LocalDestination(tmp_path / "lake")
    assert plan_retention(lake, managed, now, RetentionPolicy()).export_keys == {}
    later = plan_retention(lake, managed, now + timedelta(days=8), RetentionPolicy())
    assert later.export_keys == {"managed": sorted([*second, manifest])}


class _Unreachable(LocalDestination):
    """An output whose server refuses: a tenant's bucket down."""

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        raise ConnectionRefusedError(111, "Connection refused")


def test_an_output_that_cannot_be_read_leaves_the_others_planned(tmp_path: Path) -> None:
    root = tmp_path / "out"
    item = published(root, "csv", None, ROWS)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    old = (now - timedelta(days=8)).timestamp()
    os.utime(root / item.key, (old, old))  # an expired manifest takes the files it lists
    managed = {
        "a_down": (_Unreachable(tmp_path / "down"), ["x"]),
        "b_up": (LocalDestination(root), ["elsewhere"]),
    }
    plan = plan_retention(LocalDestination(tmp_path / "lake"), managed, now, RetentionPolicy())
    listed = [f.key for f in item.manifest.files]
    assert plan.export_keys == {"b_up": sorted([*listed, item.key])}
    assert plan.unreachable == {"a_down": "[Errno 111] Connection refused"}


def test_a_file_not_named_as_a_runs_is_named_and_nothing_changes(tmp_path: Path) -> None:
    """A manifest no run wrote (its file has no time in its name) cannot be published
    again by the rule: the error names the file, and the output is left as it was."""
    root = tmp_path / "out"
    item = published(root, "csv", None, ROWS)
    odd = dataclasses.replace(item.manifest.files[1], key="tasks/odd.csv")
    (root / item.manifest.files[1].key).rename(root / "tasks/odd.csv")
    manifest = item.manifest.model_copy(update={"files": [item.manifest.files[0], odd]})
    (root / item.key).write_bytes(manifest.to_bytes())
    before = {key: (root / key).read_bytes() for key in files_in(root)}
    with pytest.raises(
        ExporterError, match=r"^tasks/odd\.csv is not named as an export's data file$"
    ):
        rewrite_without_user(LocalDestination(root), Published(item.key, manifest), "u")
    assert {key: (root / key).read_bytes() for key in files_in(root)} == before
