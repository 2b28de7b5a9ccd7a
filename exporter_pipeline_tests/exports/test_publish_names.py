"""Which names a window's next run may use after a failed first run: the plain contract
names when the failed run put no file at a final name (nobody can have seen one), new
versioned names when it did (it removed them, but a consumer listing the folder may have
downloaded one)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from exporter_pipeline.destinations.local import LocalDestination
from exporter_pipeline.exports.execution import ExportFailed, export_window
from exporter_pipeline.exports.naming import data_key
from exporter_pipeline_tests.exports.conftest import Lake, definition
from exporter_pipeline_tests.exports.publish_checks import (
    END,
    ERROR,
    MANIFEST,
    START,
    assert_window,
    contents,
)
from exporter_pipeline_tests.exports.test_publish import RUN_A, NoSpaceAt

PLAIN = [data_key("exp", START, "parquet", part) for part in (1, 2)]


def rerun(lake: Lake, out: Path) -> dict[str, bytes]:
    output = LocalDestination(out)
    export_window(definition(**RUN_A), START, END, lake.store, output, "run-2")
    manifest = output.get_bytes(MANIFEST)
    files = contents(output, manifest)
    assert_window(output, manifest, files)
    assert not output.exists(ERROR)
    return files


def test_a_run_that_failed_before_putting_a_file_leaves_the_plain_names(
    lake: Lake, tmp_path: Path
) -> None:
    empty_lake = LocalDestination(tmp_path / "empty-lake")
    with pytest.raises(ExportFailed, match="has no data for 2026-10-01 00:00 UTC"):
        export_window(
            definition(**RUN_A), START, END, empty_lake, LocalDestination(tmp_path / "out"), "r1"
        )
    error = json.loads((tmp_path / "out" / ERROR).read_bytes())
    assert (error["files_published"], error["files_uploaded"]) == (False, 0)
    files = rerun(lake, tmp_path / "out")
    assert set(PLAIN) <= set(files)
    assert all(".parquet" in key and key.count(".") == 1 for key in files)


def test_a_run_that_failed_after_putting_files_leaves_them_unused(
    lake: Lake, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with pytest.raises(ExportFailed, match="No space left on device"):
        export_window(definition(**RUN_A), START, END, lake.store, NoSpaceAt(out, 2), "r1")
    error = json.loads((out / ERROR).read_bytes())
    assert (error["files_published"], error["files_uploaded"]) == (False, 2)
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == [ERROR.rpartition("/")[2]]
    files = rerun(lake, out)
    for key, data in files.items():  # the plain names were seen once: never used again
        assert key.endswith(f".{hashlib.sha256(data).hexdigest()[:12]}.parquet")
    assert not set(PLAIN) & set(files)
