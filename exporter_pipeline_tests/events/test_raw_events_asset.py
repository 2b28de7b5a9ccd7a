"""`raw_events` and the derived assets run through Dagster, with the lake (and landing)
on a real S3-compatible server (moto in server mode on 127.0.0.1): metadata, asset
checks, partition-range runs, and exact objects in the bucket."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from exporter_pipeline.definitions import build_definitions
from exporter_pipeline.defs.resources import LakeResource
from exporter_pipeline.destinations import destination_from_url
from exporter_pipeline.events.schema import EVENT_SCHEMA
from exporter_pipeline.events.simulate import simulate
from exporter_pipeline.exports.execution import export_window
from exporter_pipeline.exports.spec import parse_definitions
from exporter_pipeline.lake import hourly_key
from exporter_pipeline.settings import Settings
from exporter_pipeline_tests.conftest import S3Server

HOUR = datetime(2026, 10, 1, 5, tzinfo=UTC)
NO_EXPORTS = Path("/nonexistent/exports.yaml")


def run(settings: Settings, start: datetime, end: datetime) -> dg.ExecuteInProcessResult:
    """One run over the hours [start, end], as a UI backfill of a range launches it."""
    defs = build_definitions(settings)
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        tags={
            "dagster/asset_partition_range_start": start.strftime("%Y-%m-%d-%H:%M"),
            "dagster/asset_partition_range_end": end.strftime("%Y-%m-%d-%H:%M"),
        },
    )


def settings_for(landing: str, lake: str) -> Settings:
    return Settings.from_env(
        {
            "EXPORTER_LANDING_URL": landing,
            "EXPORTER_LAKE_URL": lake,
            "EXPORTER_PARTITIONS_START": "2026-09-01",
            "EXPORTER_EXPORTS_FILE": str(NO_EXPORTS),
        }
    )


def materialization(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, object]:
    events = [
        m for m in result.get_asset_materialization_events() if m.asset_key == dg.AssetKey(asset)
    ]
    assert events, f"no materialization of {asset}"
    return {k: v.value for k, v in events[0].materialization.metadata.items()}


def test_lake_on_s3_range_run_with_checks(s3_env: S3Server, landing: Path) -> None:
    simulate(
        landing,
        ["acme", "globex"],
        HOUR,
        HOUR + timedelta(hours=2),
        1000,
        seed=9,
        malformed_rate=0.02,
        duplicate_rate=0.02,
    )
    bucket = s3_env.new_bucket()
    settings = settings_for(str(landing), f"s3://{bucket}/lake")

    result = run(settings, HOUR, HOUR + timedelta(hours=1))

    assert result.success
    # One run, two partitions: a materialization of each asset for each hour.
    partitions = {
        (m.asset_key.to_user_string(), m.partition)
        for m in result.get_asset_materialization_events()
    }
    assert partitions == {
        (a, f"2026-10-01-0{h}:00")
        for a in ("raw_events", "view_segments", "delivery_metrics")
        for h in (5, 6)
    }
    meta = materialization(result, "raw_events")
    assert meta["hours"] == 2
    assert meta["rows_in"] == 2000
    assert meta["rows_in"] == meta["rows_written"] + meta["duplicates"] + meta["quarantined"]
    assert meta["quarantined"] > 0 and meta["duplicates"] > 0
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {
        "unique_event_id": True,
        "event_time_inside_hour": True,
        "tenant_not_null": True,
        "landing_files_readable": True,
    }

    keys = sorted(o["Key"] for o in s3_env.client().list_objects_v2(Bucket=bucket)["Contents"])
    expected = sorted(
        f"lake/{hourly_key(ds, h)}"
        for h in (HOUR, HOUR + timedelta(hours=1))
        for ds in ("raw_events", "raw_events_quarantine", "view_segments", "delivery_metrics")
    )
    assert keys == expected
    body = s3_env.client().get_object(Bucket=bucket, Key=f"lake/{hourly_key('raw_events', HOUR)}")
    events = pl.read_parquet(io.BytesIO(body["Body"].read()))
    assert events["event_id"].n_unique() == events.height
    assert sorted(events["tenant"].unique()) == ["acme", "globex"]


def test_landing_on_s3_and_rematerialisation_replaces(s3_env: S3Server, landing: Path) -> None:
    simulate(landing, ["acme"], HOUR, HOUR + timedelta(hours=1), 500, seed=2)
    bucket = s3_env.new_bucket()
    client = s3_env.client()
    for path in landing.rglob("*.jsonl"):
        client.upload_file(str(path), bucket, f"in/{path.relative_to(landing).as_posix()}")
    settings = settings_for(f"s3://{bucket}/in", f"s3://{bucket}/lake")

    first = run(settings, HOUR, HOUR)
    assert materialization(first, "raw_events")["rows_written"] == 500
    lake = destination_from_url(f"s3://{bucket}/lake")
    before = {o.key: o.size for o in lake.list()}

    # Late data lands in the bucket; re-materialising replaces the hour in place.
    late = (
        b'{"event_id": "late", "tenant": "acme", "event_time": "2026-10-01T05:59:00Z", '
        b'"event_type": "heartbeat", "session_id": "s-late"}\n'
    )
    client.put_object(Bucket=bucket, Key="in/dt=2026-10-01/hour=05/late.jsonl", Body=late)
    second = run(settings, HOUR, HOUR)
    assert materialization(second, "raw_events")["rows_written"] == 501
    assert set(before) == {o.key for o in lake.list()}
    events = pl.read_parquet(lake.get_bytes(hourly_key("raw_events", HOUR)))
    assert "late" in events["event_id"].to_list() and events.height == 501


def test_definitions_load_with_default_settings() -> None:
    defs = build_definitions(Settings.from_env({"EXPORTER_EXPORTS_FILE": str(NO_EXPORTS)}))
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == {
        "raw_events",
        "view_segments",
        "delivery_metrics",
    }
    lake = defs.resources["lake"]
    assert isinstance(lake, LakeResource)
    assert (lake.landing_url, lake.lake_url) == ("./data/landing", "./data/lake")


@pytest.mark.servers  # a whole Dagster job, on local folders
def test_an_unreadable_landing_file_warns_by_name_and_the_hour_succeeds(tmp_path: Path) -> None:
    simulate(tmp_path / "landing", ["acme"], HOUR, HOUR + timedelta(hours=1), 300, seed=4)
    hour_dir = tmp_path / "landing" / "dt=2026-10-01" / "hour=05"
    (hour_dir / "zz-empty.csv").write_bytes(b"")
    settings = settings_for(str(tmp_path / "landing"), str(tmp_path / "lake"))

    result = run(settings, HOUR, HOUR)

    assert result.success
    meta = materialization(result, "raw_events")
    assert meta["unreadable_files"] == [
        {
            "name": "dt=2026-10-01/hour=05/zz-empty.csv",
            "reason": "NoDataError: empty CSV",
            "records_read": 0,
            "records_unread": 0,
        }
    ]
    assert meta["rows_in"] == 300 and meta["unreadable"] == 0
    assert meta["rows_in"] == meta["rows_written"] + meta["duplicates"] + meta["quarantined"]
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    readable = checks["landing_files_readable"]
    assert not readable.passed
    assert readable.severity == dg.AssetCheckSeverity.WARN
    assert readable.description == "not read whole: dt=2026-10-01/hour=05/zz-empty.csv"
    events = pl.read_parquet(tmp_path / "lake" / hourly_key("raw_events", HOUR))
    assert events.height == meta["rows_written"] > 0


@pytest.mark.servers  # a whole Dagster job in process
def test_hour_without_landing_files_is_an_empty_hour(tmp_path: Path) -> None:
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    simulate(landing, ["acme"], HOUR, HOUR + timedelta(hours=1), 50, seed=4)
    # 06:00 has no landing folder at all: it is written empty and named in the metadata.
    result = run(settings_for(str(landing), str(lake)), HOUR, HOUR + timedelta(hours=1))
    assert result.success
    metadata = materialization(result, "raw_events")
    assert (metadata["hours"], metadata["empty_hours"]) == (2, 1)
    assert metadata["empty_hour_keys"] == ["2026-10-01-06:00"]
    assert (metadata["rows_written"], metadata["landing_files"]) == (50, 1)
    empty = pl.read_parquet(lake / hourly_key("raw_events", HOUR + timedelta(hours=1)))
    assert empty.height == 0 and empty.schema == EVENT_SCHEMA
    # A window over both hours exports: the full hour's rows, an empty file for the other.
    output = destination_from_url(str(tmp_path / "out"))
    export = parse_definitions(
        {
            "outputs": {"out": {"type": "local", "path": "/unused"}},
            "exports": [
                {
                    "name": "t",
                    "tenant": "acme",
                    "dataset": "raw",
                    "cadence": "hourly",
                    "start": "2026-10-01T05:00:00Z",
                    "output": {"name": "out", "path": "exp"},
                }
            ],
        },
        Path("t.yaml"),
    ).exports[0]
    done = export_window(
        export, HOUR, HOUR + timedelta(hours=2), destination_from_url(str(lake)), output, "r"
    )
    assert [(f.key, f.rows) for f in done.files] == [
        ("exp/2026-10-01-05-00.csv", 50),
        ("exp/2026-10-01-06-00.csv", 0),
    ]
