"""A folder several manifests share (exports/publish.py), on a local output: a window's
publish never removes a file another manifest of the folder lists (a task of other times
at a definition's path), a killed run's leftovers still go, and two runs of one window
interleaved by hand (no threads) end with the later manifest's files and nothing
stranded."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exporter_pipeline.destinations.local import LocalDestination
from exporter_pipeline.errors import RetryableDestinationError
from exporter_pipeline.exports.execution import export_window
from exporter_pipeline.exports.manifest import ManifestFile, build_manifest, manifest_bytes
from exporter_pipeline.exports.naming import data_key, manifest_window
from exporter_pipeline.exports.publish import Publication, Staged
from exporter_pipeline_tests.exports.conftest import Lake, definition
from exporter_pipeline_tests.exports.publish_checks import END, MANIFEST, START, contents

TASK_END = START + timedelta(hours=1)
TASK_MANIFEST = "exp/_manifests/2026-10-01-00-00_2026-10-01-01-00.json"


def test_a_manifest_key_names_its_window() -> None:
    assert manifest_window("exp", MANIFEST) == (START, END)
    assert manifest_window("exp", MANIFEST.replace(".json", ".error.json")) is None
    assert manifest_window("exp", "other/_manifests/2026-10-01-00-00_2026-10-01-02-00.json") is None
    assert manifest_window("exp", "exp/_manifests/2026-13-01-00-00_2026-10-01-02-00.json") is None


def test_a_window_of_other_times_keeps_the_files_another_manifest_lists(
    lake: Lake, tmp_path: Path
) -> None:
    output = LocalDestination(tmp_path / "out")
    export_window(definition(), START, END, lake.store, output, "run-def")
    kept = output.get_bytes(MANIFEST)
    kept_files = contents(output, kept)
    assert len(kept_files) == 2  # one file per hour
    # A killed run's leftover of the first hour, no manifest lists it.
    leftover = "exp/2026-10-01-00-00.0123456789ab.csv"
    output.put_bytes(b"leftover\n", leftover)
    old = time.time() - 60
    os.utime(output.root / leftover, (old, old))

    done = export_window(definition(name="task"), START, TASK_END, lake.store, output, "run-task")

    assert done.removed == [leftover]
    task_files = contents(output, output.get_bytes(TASK_MANIFEST))
    # The plain name is the definition's: the task's file has a versioned one.
    ((key, data),) = task_files.items()
    assert [f.key for f in done.files] == [key]
    assert key == data_key("exp", START, "csv", version=hashlib.sha256(data).hexdigest()[:12])
    # The definition's window is whole: every file it lists is there with its bytes.
    assert output.get_bytes(MANIFEST) == kept
    assert contents(output, kept) == kept_files
    assert [o.key for o in output.list("exp/")] == sorted(
        {*kept_files, *task_files, MANIFEST, TASK_MANIFEST}
    )


def _staged(folder: Path, text: str) -> list[Staged]:
    folder.mkdir(parents=True, exist_ok=True)
    local = folder / "part.csv"
    local.write_text(text)
    return [Staged(local, START, None, text.count("\n") - 1)]


def _manifest_of(run: str) -> Callable[[list[ManifestFile]], bytes]:
    def manifest_of(files: list[ManifestFile]) -> bytes:
        return manifest_bytes(
            build_manifest(
                export="t",
                tenant="acme",
                dataset="raw",
                start=START,
                end=END,
                run_id=run,
                file_format="csv",
                compression=None,
                columns=["a"],
                files=files,
            )
        )

    return manifest_of


def test_a_run_whose_uploads_the_other_run_removed_fails_before_its_switch(
    tmp_path: Path,
) -> None:
    output = LocalDestination(tmp_path / "out")
    first = Publication(output, "exp", START, END)
    first.publish(_staged(tmp_path / "w0", "a\n0\n"), "csv", _manifest_of("run-0"), _now())
    # Run A uploads, and is slow: its files are older than run B.
    a = Publication(output, "exp", START, END)
    a_began = _now()
    live, a_files = a.upload(_staged(tmp_path / "wa", "a\n1\n"), "csv", a_began)
    old = time.time() - 60
    for f in a_files:
        os.utime(output.root / f.key, (old, old))
    # Run B, whole: A's unlisted uploads are older than B, taken for a dead run's.
    b = Publication(output, "exp", START, END)
    b_done = b.publish(_staged(tmp_path / "wb", "a\n2\n"), "csv", _manifest_of("run-b"), _now())
    assert sorted(b_done.removed) == sorted(["exp/2026-10-01-00-00.csv", *(f.key for f in a_files)])
    with pytest.raises(RetryableDestinationError, match="another run of the window removed"):
        a.complete(live, a_files, _manifest_of("run-a"), a_began)
    a.abandon()
    manifest = output.get_bytes(MANIFEST)
    assert b'"run_id": "run-b"' in manifest
    b_files = contents(output, manifest)
    assert list(b_files.values()) == [b"a\n2\n"]
    assert [o.key for o in output.list("exp/")] == sorted([MANIFEST, *b_files])


def test_uploads_younger_than_a_run_are_spared_and_the_later_switch_wins(
    tmp_path: Path,
) -> None:
    output = LocalDestination(tmp_path / "out")
    first = Publication(output, "exp", START, END)
    first.publish(_staged(tmp_path / "w0", "a\n0\n"), "csv", _manifest_of("run-0"), _now())
    b = Publication(output, "exp", START, END)
    b_began = _now() - timedelta(seconds=5)  # B began before A uploaded
    b_live, b_files = b.upload(_staged(tmp_path / "wb", "a\n2\n"), "csv", b_began)
    a = Publication(output, "exp", START, END)
    a_began = _now()
    a_live, a_files = a.upload(_staged(tmp_path / "wa", "a\n1\n"), "csv", a_began)
    b_done = b.complete(b_live, b_files, _manifest_of("run-b"), b_began)
    assert b_done.removed == ["exp/2026-10-01-00-00.csv"]  # run 0's; A's uploads spared
    a_done = a.complete(a_live, a_files, _manifest_of("run-a"), a_began)
    assert a_done.removed == [f.key for f in b_files]  # the manifest it replaced
    manifest = output.get_bytes(MANIFEST)
    assert b'"run_id": "run-a"' in manifest
    a_contents = contents(output, manifest)
    assert list(a_contents.values()) == [b"a\n1\n"]
    assert [o.key for o in output.list("exp/")] == sorted([MANIFEST, *a_contents])


def _now() -> datetime:
    return datetime.now(UTC)
