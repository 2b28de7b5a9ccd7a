"""Executions on a local output: idempotent re-runs, stale files, split parts, failures
that leave no final file and an error file, tenant isolation, and SQL exports that see
only the tenant's rows (the sandbox itself: `hostile/test_query_sandbox.py`)."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from exporter_pipeline.destinations import destination_from_url
from exporter_pipeline.exports.execution import ExportFailed, export_window
from exporter_pipeline.lake import hourly_key
from exporter_pipeline_tests.exports.conftest import DAY, HOURS, Lake, build_lake, definition
from exporter_pipeline_tests.files import file_digests

START, END = DAY, DAY + timedelta(hours=2)


def test_rerun_overwrites_same_keys_same_bytes_and_removes_stale_parts(
    lake: Lake, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    output = destination_from_url(str(out))
    split = definition(format="csv", max_file_bytes=100_000)
    first = export_window(split, START, END, lake.store, output, "run-1")
    assert len(first.files) > 2 and all(
        "-00-00-0" in f.key or "-01-00-0" in f.key for f in first.files
    )
    assert [f.key for f in first.files][:2] == [
        "exp/2026-10-01-00-00-001.csv",
        "exp/2026-10-01-00-00-002.csv",
    ]
    assert all(f.bytes <= 100_000 for f in first.files)
    assert first.rows == sum(f.rows for f in first.files)

    # The same window again without splitting: one file per hour, the parts are gone. The
    # window was published, so its new files take versioned names (a name never changes
    # content): the content's sha256 prefix before the suffix.
    whole = definition(format="csv")
    second = export_window(whole, START, END, lake.store, output, "run-2")
    digests = [hashlib.sha256((out / f.key).read_bytes()).hexdigest() for f in second.files]
    assert [f.key for f in second.files] == [
        f"exp/2026-10-01-00-00.{digests[0][:12]}.csv",
        f"exp/2026-10-01-01-00.{digests[1][:12]}.csv",
    ]
    assert [f.sha256 for f in second.files] == digests
    assert sorted(second.removed) == sorted(f.key for f in first.files)
    assert second.rows == first.rows
    before = file_digests(out)
    third = export_window(whole, START, END, lake.store, output, "run-3")
    after = file_digests(out)
    manifest = "exp/_manifests/2026-10-01-00-00_2026-10-01-02-00.json"
    assert set(after) == set(before) == {manifest, *(f.key for f in second.files)}
    assert [f.key for f in third.files] == [f.key for f in second.files]
    assert {k: v for k, v in after.items() if k != manifest} == {
        k: v for k, v in before.items() if k != manifest
    }
    assert json.loads((out / manifest).read_text())["run_id"] == "run-3"
    assert third.removed == []


def test_rerun_of_one_day_removes_only_that_days_stale_files(lake: Lake, tmp_path: Path) -> None:
    """Stale files are found by listing the window's names only; neighbours stay."""
    out = tmp_path / "out"
    output = destination_from_url(str(out))
    export = definition(format="csv")
    export_window(export, START, END, lake.store, output, "a")
    strays = ["exp/2026-10-01-01-00-007.csv", "exp/2026-10-01-02-00.csv", "exp/2026-10-011.csv"]
    for stray in strays:
        (out / stray).write_text("stray")
    result = export_window(export, START, END, lake.store, output, "b")
    assert result.removed == ["exp/2026-10-01-01-00-007.csv"]
    assert (out / "exp/2026-10-01-02-00.csv").exists() and (out / "exp/2026-10-011.csv").exists()


def test_other_windows_are_left_alone(lake: Lake, tmp_path: Path) -> None:
    output = destination_from_url(str(tmp_path / "out"))
    export = definition(format="jsonl")
    export_window(export, START, START + timedelta(hours=1), lake.store, output, "a")
    export_window(export, START + timedelta(hours=1), END, lake.store, output, "b")
    export_window(export, START, START + timedelta(hours=1), lake.store, output, "c")
    assert sorted(file_digests(tmp_path / "out")) == [
        "exp/2026-10-01-00-00.jsonl",
        "exp/2026-10-01-01-00.jsonl",
        "exp/_manifests/2026-10-01-00-00_2026-10-01-01-00.json",
        "exp/_manifests/2026-10-01-01-00_2026-10-01-02-00.json",
    ]


def test_failed_execution_leaves_no_data_file_and_an_error_file(tmp_path: Path) -> None:
    broken = build_lake(tmp_path / "broken", events_per_hour=400)
    # The second hour of the window is missing from the lake: the run must fail as a whole.
    (broken.root / hourly_key("raw_events", HOURS[1])).unlink()
    output = destination_from_url(str(tmp_path / "out"))
    with pytest.raises(ExportFailed) as failed:
        export_window(definition(format="parquet"), START, END, broken.store, output, "run-x")
    reason = (
        "raw_events has no data for 2026-10-01 01:00 UTC in the lake: materialize "
        "raw_events for that hour first"
    )
    assert str(failed.value) == (
        f"export t 2026-10-01T00:00:00Z to 2026-10-01T02:00:00Z failed: {reason}"
    )
    files = file_digests(tmp_path / "out")
    assert list(files) == ["exp/_manifests/2026-10-01-00-00_2026-10-01-02-00.error.json"]
    error = json.loads((tmp_path / "out" / next(iter(files))).read_text())
    assert error["error"] == reason
    assert error["run_id"] == "run-x" and error["files_published"] is False
    assert error["window"] == {"start": "2026-10-01T00:00:00Z", "end": "2026-10-01T02:00:00Z"}


def test_success_after_failure_removes_the_error_file(lake: Lake, tmp_path: Path) -> None:
    output = destination_from_url(str(tmp_path / "out"))
    error_key = "exp/_manifests/2026-10-01-00-00_2026-10-01-02-00.error.json"
    output.put_bytes(b"{}", error_key)
    export_window(definition(), START, END, lake.store, output, "ok")
    assert not output.exists(error_key)


@pytest.mark.parametrize("dataset", ["raw", "events", "quality", "ads", "views", "viewers"])
def test_export_holds_only_its_tenants_rows(dataset: str, lake: Lake, tmp_path: Path) -> None:
    output = destination_from_url(str(tmp_path / "out"))
    result = export_window(
        definition(dataset=dataset, tenant="globex", format="parquet"),
        START,
        END,
        lake.store,
        output,
        "iso",
    )
    exported = pl.concat([pl.read_parquet(tmp_path / "out" / f.key) for f in result.files])
    source = "view_segments" if dataset in ("views", "viewers") else "raw_events"
    everything = pl.concat([pl.read_parquet(f) for f in lake.files(source)])
    id_column = {"views": "view_id", "viewers": "viewer_identifier"}.get(dataset, "event_id")
    acme_ids = set(everything.filter(pl.col("tenant") == "acme")[id_column])
    assert acme_ids and not acme_ids & set(exported[id_column])
    assert exported.height > 0


def test_sql_export_cannot_read_a_file_or_another_tenant(lake: Lake, tmp_path: Path) -> None:
    output = destination_from_url(str(tmp_path / "out"))
    count_all = "select tenant, count(*) as n from events group by tenant"
    result = export_window(
        definition(dataset="query", format="jsonl", query=count_all),
        START,
        END,
        lake.store,
        output,
        "q",
    )
    rows = [
        json.loads(line)
        for line in (tmp_path / "out" / result.files[0].key).read_text().splitlines()
    ]
    acme_rows = (
        pl.concat([pl.read_parquet(f) for f in lake.files("raw_events")])
        .filter(pl.col("tenant") == "acme")
        .height
    )
    assert rows == [{"tenant": "acme", "n": acme_rows}]

    # A filter on another tenant finds nothing: its rows are not in the tables at all.
    other = "select count(*) as n from events where tenant = 'globex'"
    result = export_window(
        definition(dataset="query", format="jsonl", query=other),
        START,
        END,
        lake.store,
        output,
        "q2",
    )
    assert (tmp_path / "out" / result.files[0].key).read_text().strip() == '{"n":0}'
