"""All-or-nothing publication of a window on a local output (exports/publish.py): a run
that fails halfway for lack of space (a real full tmpfs when the tests run as root, and
a destination that answers ENOSPC on its second file everywhere) leaves the old window
intact, the re-run publishes the new one exactly; versioned names; a failure after the
switch; a manifest put whose answer was lost; a killed write's temporary."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exporter_pipeline.destinations.local import LocalDestination
from exporter_pipeline.exports.execution import ExportFailed, export_window
from exporter_pipeline.exports.naming import data_key, data_key_time
from exporter_pipeline_tests.exports.conftest import DAY, Lake, definition
from exporter_pipeline_tests.exports.publish_checks import (
    END,
    ERROR,
    MANIFEST,
    START,
    assert_window,
    contents,
    listed,
)
from exporter_pipeline_tests.files import file_digests

# Run A: 4 zstd Parquet parts; run B, the same window uncompressed: more, bigger parts
# under the same plain names (the case).
RUN_A = {"format": "parquet", "max_file_bytes": 100_000}
RUN_B = {"format": "parquet", "compression": "uncompressed", "max_file_bytes": 100_000}
FAILED = "export t 2026-10-01T00:00:00Z to 2026-10-01T02:00:00Z failed: "


def test_a_versioned_name_is_read_back_as_its_time() -> None:
    key = data_key("exp", DAY, "csv.gz", version="3f9a2b1c4d5e")
    assert key == "exp/2026-10-01-00-00.3f9a2b1c4d5e.csv.gz"
    assert data_key("exp", DAY, "parquet", 2, "3f9a2b1c4d5e") == (
        "exp/2026-10-01-00-00-002.3f9a2b1c4d5e.parquet"
    )
    assert data_key_time("exp", key) == DAY
    assert data_key_time("exp", "exp/2026-10-01-00-00-002.3f9a2b1c4d5e.parquet") == DAY
    with pytest.raises(ValueError, match="version '3F9A' is not 12 lowercase hex characters"):
        data_key("exp", DAY, "csv", version="3F9A")


class NoSpaceAt(LocalDestination):
    """A local folder that is full from its `at`-th file on (put or move)."""

    def __init__(self, root: Path, at: int) -> None:
        super().__init__(root)
        self.at = at
        self.files = 0

    def move_file(self, local_path: Path, key: str) -> None:
        self.files += 1
        if self.files >= self.at:
            raise OSError(errno.ENOSPC, "No space left on device")
        super().move_file(local_path, key)


def old_then_failed(
    lake: Lake, out: Path, failing: LocalDestination
) -> tuple[bytes, dict[str, bytes]]:
    """Publish run A to `out`, then fail run B through `failing`; A's manifest and files."""
    output = LocalDestination(out)
    export_window(definition(**RUN_A), START, END, lake.store, output, "run-a")
    old = output.get_bytes(MANIFEST)
    old_files = contents(output, old)
    assert len(old_files) == 4
    with pytest.raises(ExportFailed) as failed:
        export_window(definition(**RUN_B), START, END, lake.store, failing, "run-b")
    assert str(failed.value).startswith(FAILED)
    assert str(failed.value).endswith("No space left on device")
    # The old window is intact: its manifest, its files, their sha256; beside them only
    # the error file, which says nothing was published.
    assert_window(output, old, old_files, also=(ERROR,))
    error = json.loads(output.get_bytes(ERROR))
    assert error["files_published"] is False and error["run_id"] == "run-b"
    return old, old_files


def rerun_is_exactly_new(lake: Lake, out: Path, old: dict[str, bytes]) -> None:
    output = LocalDestination(out)
    result = export_window(definition(**RUN_B), START, END, lake.store, output, "run-b2")
    new = output.get_bytes(MANIFEST)
    files = contents(output, new)
    assert_window(output, new, files)
    assert sorted(result.removed) == sorted(old)
    # Every new file is at a versioned name: the window had been published.
    for key, data in files.items():
        entry = listed(new)[key]
        digest = hashlib.sha256(data).hexdigest()
        assert key.endswith(f".{digest[:12]}.parquet") and entry["sha256"] == digest
        assert data_key_time("exp", key) is not None
    assert json.loads(new)["run_id"] == "run-b2"


def test_no_space_on_the_second_file_leaves_the_old_window(lake: Lake, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _, old_files = old_then_failed(lake, out, NoSpaceAt(out, 2))
    rerun_is_exactly_new(lake, out, old_files)


class Counting(LocalDestination):
    """A local folder that counts the files moved into it (tried, whether or not done)."""

    moves = 0

    def move_file(self, local_path: Path, key: str) -> None:
        self.moves += 1
        super().move_file(local_path, key)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """A folder on a tmpfs of `size` bytes, mounted for the test (needs root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the ENOSPC destination covers the case")
    mounted: list[Path] = []

    def mount(size: int) -> Path:
        point = tmp_path / "tmpfs"
        point.mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)], check=True
        )
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], check=True)


def test_a_full_tmpfs_leaves_the_old_window(
    lake: Lake, tmp_path: Path, small_tmpfs: Callable[[int], Path]
) -> None:
    # Measured on a scratch folder: A's files, and B's largest part.
    scratch = LocalDestination(tmp_path / "scratch")
    a = export_window(definition(**RUN_A), START, END, lake.store, scratch, "m")
    b = export_window(definition(**RUN_B), START, END, lake.store, scratch, "m")
    page = 4096
    held = sum(-(-f.bytes // page) * page for f in a.files) + 8 * page  # + manifests, folders
    out = small_tmpfs(held + 3 * max(f.bytes for f in b.files) // 2)  # B's second part won't fit
    counting = Counting(out / "o")
    _, old_files = old_then_failed(lake, out / "o", counting)
    assert counting.moves == 2  # the first part of B was in place, the second did not fit
    subprocess.run(["mount", "-o", "remount,size=16m", str(out)], check=True)
    rerun_is_exactly_new(lake, out / "o", old_files)


class DeleteFails(LocalDestination):
    """A local folder that refuses to remove `refused` keys."""

    def __init__(self, root: Path, refused: set[str]) -> None:
        super().__init__(root)
        self.refused = refused

    def delete(self, key: str) -> None:
        if key in self.refused:
            raise PermissionError(errno.EACCES, "Permission denied")
        super().delete(key)


def test_a_failure_after_the_switch_keeps_the_new_window_and_the_run(
    lake: Lake, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    output = LocalDestination(out)
    first = export_window(definition(**RUN_A), START, END, lake.store, output, "run-a")
    stuck = first.files[0].key
    failing = DeleteFails(out, {stuck})
    result = export_window(definition(**RUN_B), START, END, lake.store, failing, "run-b")
    # The manifest was switched: the run succeeds, saying which old file it left.
    assert result.left == [stuck]
    assert sorted(result.removed) == sorted(f.key for f in first.files[1:])
    new = output.get_bytes(MANIFEST)
    assert json.loads(new)["run_id"] == "run-b"
    assert_window(output, new, contents(output, new), also=(stuck,))
    # The next run of the window removes it (and re-uploads nothing: same content).
    again = export_window(definition(**RUN_B), START, END, lake.store, output, "run-c")
    assert again.removed == [stuck] and again.left == []
    assert [f.key for f in again.files] == [f.key for f in result.files]
    assert_window(output, output.get_bytes(MANIFEST), contents(output, new))


class AnswerLost(LocalDestination):
    """A local folder whose manifest put lands, but the answer is lost (an error)."""

    def put_bytes(self, data: bytes, key: str) -> None:
        super().put_bytes(data, key)
        if key == MANIFEST:
            raise TimeoutError("the connection closed before the answer")


def test_a_manifest_that_landed_despite_an_error_counts_as_switched(
    lake: Lake, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    export_window(definition(**RUN_A), START, END, lake.store, LocalDestination(out), "run-a")
    result = export_window(definition(**RUN_B), START, END, lake.store, AnswerLost(out), "run-b")
    output = LocalDestination(out)
    new = output.get_bytes(MANIFEST)
    assert json.loads(new)["run_id"] == "run-b" and len(result.files) == len(listed(new))
    assert_window(output, new, contents(output, new))


def test_a_killed_writes_temporary_is_removed_by_the_next_run(lake: Lake, tmp_path: Path) -> None:
    out = tmp_path / "out"
    output = LocalDestination(out)
    export_window(definition(format="csv"), START, END, lake.store, output, "run-a")
    # What a process killed inside put_stream leaves: never listed, but on disk. One
    # temporary per kind of name of the window, one of another window, one too recent.
    recent = "exp/.tmp-" + "e" * 32 + "-2026-10-01-00-00.csv"
    left = {
        "exp/.tmp-" + "a" * 32 + "-2026-10-01-01-00.csv": 1,
        "exp/_manifests/.tmp-" + "b" * 32 + "-2026-10-01-00-00_2026-10-01-02-00.json": 1,
        "exp/_manifests/.tmp-" + "c" * 32 + "-2026-10-01-00-00_2026-10-01-02-00.error.json": 1,
        "exp/.tmp-" + "d" * 32 + "-2026-10-02-00-00.csv": 0,  # another window's
        recent: 0,  # written after the run began: a write still going on
    }
    old = time.time() - 60
    for key in left:
        (out / key).write_bytes(b"partial")
        os.utime(out / key, (old, old))
    assert [o.key for o in output.list("exp/")][-1] == MANIFEST  # listings never show them
    future = time.time() + 60
    os.utime(
        out / next(k for k, v in left.items() if "-e" in k[:10] or "eeee" in k), (future, future)
    )
    export_window(definition(format="csv"), START, END, lake.store, output, "run-b")
    assert sorted(k for k in file_digests(out) if "/.tmp-" in k) == sorted(
        k for k, removed in left.items() if not removed
    )
    assert output.remove_temporaries("exp/2026-10-02", datetime.now(UTC)) == [
        "exp/.tmp-" + "d" * 32 + "-2026-10-02-00-00.csv"
    ]


def test_a_window_sharing_a_folder_and_times_leaves_the_others_files(
    lake: Lake, tmp_path: Path
) -> None:
    """An on-demand task of 00:30-02:00 in a definition's folder names its files by the
    same hours as the definition's windows: publishing either never removes a file the
    other's manifest lists (they are not a killed run's leftovers)."""
    output = LocalDestination(tmp_path / "out")
    hourly = [(START, START + timedelta(hours=1)), (START + timedelta(hours=1), END)]
    for start, end in hourly:
        export_window(definition(format="csv"), start, end, lake.store, output, "def")
    task = definition(name="task", format="csv", columns=["event_id", "user_id"])
    export_window(task, START + timedelta(minutes=30), END, lake.store, output, "task")
    export_window(definition(format="csv"), *hourly[0], lake.store, output, "def-again")
    manifests = [
        "exp/_manifests/2026-10-01-00-00_2026-10-01-01-00.json",
        "exp/_manifests/2026-10-01-00-30_2026-10-01-02-00.json",
        "exp/_manifests/2026-10-01-01-00_2026-10-01-02-00.json",
    ]
    files = {key: contents(output, output.get_bytes(key)) for key in manifests}
    assert [len(found) for found in files.values()] == [1, 2, 1]
    everything = sorted({*manifests, *(key for found in files.values() for key in found)})
    assert [o.key for o in output.list("exp/")] == everything
