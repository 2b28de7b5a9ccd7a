"""Retention over every place the product writes (issue 20, point 4), through the Dagster
job, with the managed output a local folder and a bucket on the moto S3 server: lake
hours (raw, quarantine, derived, aggregates) go by the hour they hold; in the managed
output every file written before the cut goes (definition exports, on-demand tasks, user
data exports, their manifests and a failed task's error file) and every file written
after it stays; an unmanaged output is never touched. The cut is a real moment between
two batches of runs (S3 keeps its own modification times), and `now` is that moment
plus the export retention."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exporter_pipeline.lake import hourly_key
from exporter_pipeline_tests.exports.conftest import HOURS
from exporter_pipeline_tests.privacy.places import OUTPUT_KINDS, Places, busiest_user

LAKE_DATASETS = ("raw_events", "raw_events_quarantine", "view_segments", "delivery_metrics")


def retention(places: Places, now: datetime, dry_run: bool) -> dict[str, object]:
    config = {"dry_run": dry_run, "now": now.isoformat()}
    result = places.run("retention", {"ops": {"apply_retention_op": {"config": config}}})
    assert result.success
    planned: dict[str, object] = result.output_for_node("apply_retention_op")
    return planned


@pytest.mark.servers  # whole Dagster jobs; the S3 case asks for moto at run time
@pytest.mark.parametrize("kind", OUTPUT_KINDS)
def test_retention_removes_every_file_past_its_age_and_nothing_younger(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Raw data 30 days, aggregates 60: the lake's October hours are past both, an hour
    # of yesterday within both.
    monkeypatch.setenv("EXPORTER_RETENTION_RAW_DAYS", "30")
    monkeypatch.setenv("EXPORTER_RETENTION_AGGREGATE_DAYS", "60")
    places = Places(tmp_path, kind, request, monkeypatch)
    recent = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    places.add_hour(recent)
    places.quarantine(['{"event_id": "q-1", "user_id": "u"}'])
    places.quarantine(['{"event_id": "q-2", "user_id": "u"}'], hour=recent)
    user, other = busiest_user(places, "acme"), busiest_user(places, "acme", rank=1)

    # Written before the cut: one definition window, two tasks, a failed task, a user's data.
    assert places.run("export_acme_raw", partition_key="2026-10-01-00:00").success
    places.task("views_task")
    places.task("raw_task")
    failed = places.run(
        "export_on_demand",
        {
            "ops": {
                "export_task": {
                    "config": {
                        "name": "failed_task",
                        "tenant": "acme",
                        "start_time": "2026-10-05T00:00:00Z",
                        "end_time": "2026-10-05T01:00:00Z",
                        "output": "managed",
                        "path": "tasks/failed",
                    }
                }
            }
        },
        raise_on_error=False,
    )
    assert not failed.success
    places.user_export(user, "gdpr/u")
    config = {"tenant": "acme", "user_id": user, "output": "elsewhere", "path": "gdpr/u"}
    elsewhere_export = places.run(
        "user_data_export", {"ops": {"export_user_data": {"config": config}}}
    )
    assert elsewhere_export.success
    old = places.out.keys()
    assert "tasks/failed/_manifests/2026-10-05-00-00_2026-10-05-01-00.error.json" in old
    elsewhere = sorted(p for p in (tmp_path / "elsewhere").rglob("*") if p.is_file())
    assert len(elsewhere) == 4
    time.sleep(1.1)  # S3 keeps modification times to the second
    cut = datetime.now(UTC)
    time.sleep(1.1)
    # Written after it: the next definition window, another task, another user's data.
    assert places.run("export_acme_raw", partition_key="2026-10-01-01:00").success
    places.task("parquet_task")
    places.user_export(other, "gdpr/v")
    everything = places.out.keys()
    young = [k for k in everything if k not in old]
    assert young and all(k.startswith(("raw/", "tasks/parquet/", "gdpr/v/")) for k in young)
    lake_before = places.lake_keys()
    lake_old = sorted(
        hourly_key(d, h) for d in LAKE_DATASETS for h in HOURS if hourly_key(d, h) in lake_before
    )
    assert hourly_key("raw_events_quarantine", HOURS[0]) in lake_old
    assert hourly_key("raw_events_quarantine", recent) in lake_before

    now = cut + timedelta(days=7)
    planned = retention(places, now, dry_run=True)
    assert places.out.keys() == everything and places.lake_keys() == lake_before
    assert sorted(planned["lake"]) == lake_old  # type: ignore[call-overload]  # a list
    assert planned["exports"] == {"managed": old}

    retention(places, now, dry_run=False)
    assert places.out.keys() == young
    assert places.lake_keys() == lake_before - set(lake_old)
    assert sorted(p for p in (tmp_path / "elsewhere").rglob("*") if p.is_file()) == elsewhere
