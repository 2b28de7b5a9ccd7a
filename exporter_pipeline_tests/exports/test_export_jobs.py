"""Export definitions as Dagster assets and jobs, run in process on a temporary instance:
a 3-day backfill as one range run, the on-demand launchpad job, late data (a raw hour
re-ingested under an exported window, which the opt-in re-export condition asks to run
again), reconciliation checks and run tags."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
import yaml

from exporter_pipeline.definitions import build_definitions
from exporter_pipeline.events.simulate import simulate
from exporter_pipeline.settings import Settings

DAY = datetime(2026, 10, 1, tzinfo=UTC)
RAW_ASSETS = ("raw_events", "view_segments", "delivery_metrics")


def range_tags(start: str, end: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


class Project:
    """A temporary deployment: landing, lake, output folder, definitions file, instance."""

    def __init__(self, root: Path, exports: list[dict[str, Any]]) -> None:
        self.root = root
        self.out = root / "out"
        (root / "exports.yaml").write_text(
            yaml.safe_dump(
                {
                    "outputs": {"local": {"type": "local", "path": str(self.out)}},
                    "exports": exports,
                }
            )
        )
        self.settings = Settings.from_env(
            {
                "EXPORTER_LANDING_URL": str(root / "landing"),
                "EXPORTER_LAKE_URL": str(root / "lake"),
                "EXPORTER_EXPORTS_FILE": str(root / "exports.yaml"),
                # The module's own definitions store: its first load applies this file.
                "EXPORTER_DATABASE_URL": f"sqlite:///{root / 'exporter.sqlite3'}",
                "EXPORTER_PARTITIONS_START": "2026-09-01",
            }
        )
        self.defs = build_definitions(self.settings)
        self.instance = dg.DagsterInstance.ephemeral()

    def ingest(self, start: datetime, hours: int, events_per_hour: int = 300) -> None:
        simulate(
            self.root / "landing",
            ["acme", "globex"],
            start,
            start + timedelta(hours=hours),
            events_per_hour,
            seed=13,
        )
        job = self.defs.resolve_implicit_global_asset_job_def().get_subset(
            asset_selection={dg.AssetKey(k) for k in RAW_ASSETS}
        )
        last = start + timedelta(hours=hours - 1)
        result = job.execute_in_process(
            instance=self.instance,
            tags=range_tags(f"{start:%Y-%m-%d-%H:%M}", f"{last:%Y-%m-%d-%H:%M}"),
        )
        assert result.success

    def run_export(self, name: str, **kwargs: Any) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_job_def(f"export_{name}")
        return job.execute_in_process(instance=self.instance, **kwargs)

    def files(self) -> list[str]:
        return sorted(
            p.relative_to(self.out).as_posix() for p in self.out.rglob("*") if p.is_file()
        )


def export(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "tenant": "acme",
        "dataset": "raw",
        "format": "csv",
        "cadence": "daily",
        "start": "2026-10-01",
        "output": {"name": "local", "path": name},
        **fields,
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = Project(
        tmp_path_factory.mktemp("jobs"),
        [
            export("daily_raw", filters={"country": ["US", "DE"]}),
            export("late_raw", format="parquet", reexport_late_data=True),
            export("daily_metrics", dataset="metrics", metrics=["http", "sessions"], interval="1h"),
        ],
    )
    project.ingest(DAY, 72)
    return project


@pytest.mark.servers  # whole Dagster jobs over 3 ingested days (the `project` fixture)
def test_three_day_backfill_is_one_run_with_72_files_and_3_manifests(project: Project) -> None:
    asset = project.defs.resolve_assets_def(dg.AssetKey(["exports", "daily_raw"]))
    assert asset.backfill_policy == dg.BackfillPolicy.multi_run(10)
    # What the backfill daemon launches for a 3-day range under that policy: one run.
    result = project.run_export("daily_raw", tags=range_tags("2026-10-01", "2026-10-03"))
    assert result.success
    files = [f for f in project.files() if f.startswith("daily_raw/")]
    data = [f for f in files if "_manifests" not in f]
    manifests = [f for f in files if "_manifests" in f]
    assert len(data) == 72
    assert (
        data[0] == "daily_raw/2026-10-01-00-00.csv" and data[-1] == "daily_raw/2026-10-03-23-00.csv"
    )
    assert manifests == [
        f"daily_raw/_manifests/2026-10-0{d}-00-00_2026-10-0{d + 1}-00-00.json" for d in (1, 2, 3)
    ]
    materialized = {m.partition for m in result.get_asset_materialization_events()}
    assert materialized == {"2026-10-01", "2026-10-02", "2026-10-03"}
    # The range's materialization is recorded per partition: no row count of the range
    # there (each window's own is on its observation, below).
    for event in result.get_asset_materialization_events():
        assert "dagster/row_count" not in event.materialization.metadata
    observed = [
        e.event_specific_data.asset_observation  # type: ignore[union-attr]
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    ]
    rows_by_partition = {o.partition: o.metadata["rows"].value for o in observed}
    assert all(o.metadata["dagster/row_count"] == o.metadata["rows"] for o in observed)
    for day in (1, 2, 3):
        manifest = json.loads((project.out / manifests[day - 1]).read_text())
        assert rows_by_partition[f"2026-10-0{day}"] == manifest["rows"] > 0
    checks = result.get_asset_check_evaluations()
    assert [(c.check_name, c.passed) for c in checks] == [("rows_match_raw", True)]
    assert checks[0].metadata["expected_rows"].value == checks[0].metadata["exported_rows"].value


@pytest.mark.servers  # whole Dagster jobs over 3 ingested days (the `project` fixture)
def test_job_runs_carry_export_and_tenant_tags(project: Project) -> None:
    result = project.run_export("daily_metrics", partition_key="2026-10-02")
    assert result.success
    run = project.instance.get_run_by_id(result.run_id)
    assert run is not None
    assert run.tags["export"] == "daily_metrics" and run.tags["tenant"] == "acme"
    assert "daily_metrics/2026-10-02-00-00.csv" in project.files()
    # The catalog's standard row count, and a link to the window's manifest.
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert (
        metadata["dagster/row_count"]
        == metadata["rows"]
        == dg.IntMetadataValue(
            json.loads((project.out / metadata["manifest"].value).read_text())["rows"]
        )
    )
    assert metadata["manifest_uri"] == dg.MetadataValue.path(
        str(project.out / metadata["manifest"].value)
    )
    asset = project.defs.resolve_assets_def(dg.AssetKey(["exports", "daily_metrics"]))
    assert asset.group_names_by_key[asset.key] == "tenant_acme"
    assert asset.tags_by_key[asset.key]["dataset"] == "metrics"


def test_partitions_follow_cadence_and_end(tmp_path: Path) -> None:
    project = Project(
        tmp_path,
        [
            export("h", cadence="hourly", start="2026-10-01T00:00:00Z", end="2026-10-01T05:00:00Z"),
            export("w", cadence="weekly", start="2026-10-05", end="2026-10-19"),
        ],
    )
    hourly = project.defs.resolve_assets_def(dg.AssetKey(["exports", "h"])).partitions_def
    weekly = project.defs.resolve_assets_def(dg.AssetKey(["exports", "w"])).partitions_def
    assert hourly is not None and weekly is not None
    assert hourly.get_partition_keys() == [f"2026-10-01-0{h}:00" for h in range(6)]
    assert weekly.get_partition_keys() == ["2026-10-05", "2026-10-12", "2026-10-19"]


@pytest.mark.servers  # whole Dagster jobs over 3 ingested days (the `project` fixture)
def test_on_demand_job_exports_an_exact_window(project: Project) -> None:
    job = project.defs.resolve_job_def("export_on_demand")
    config = {
        "ops": {
            "export_task": {
                "config": {
                    "name": "october_task",
                    "tenant": "globex",
                    "start_time": "2026-10-02T10:30:00Z",
                    "end_time": "2026-10-02T12:15:00Z",
                    "dataset": "raw",
                    "columns": ["event_id", "event_time", "tenant"],
                    "format": "jsonl",
                    "compression": "gzip",
                    "output": "local",
                    "path": "adhoc",
                }
            }
        }
    }
    result = job.execute_in_process(run_config=config, instance=project.instance)
    assert result.success
    files = [f for f in project.files() if f.startswith("adhoc/")]
    assert files == [
        "adhoc/2026-10-02-10-00.jsonl.gz",
        "adhoc/2026-10-02-11-00.jsonl.gz",
        "adhoc/2026-10-02-12-00.jsonl.gz",
        "adhoc/_manifests/2026-10-02-10-30_2026-10-02-12-15.json",
    ]
    manifest = json.loads((project.out / files[-1]).read_text())
    assert manifest["window"] == {"start": "2026-10-02T10:30:00Z", "end": "2026-10-02T12:15:00Z"}
    assert manifest["columns"] == ["event_id", "event_time", "tenant"]


@pytest.mark.servers  # whole Dagster jobs over 3 ingested days (the `project` fixture)
def test_on_demand_job_rejects_a_bad_request_clearly(project: Project) -> None:
    job = project.defs.resolve_job_def("export_on_demand")
    config = {
        "ops": {
            "export_task": {
                "config": {
                    "tenant": "acme",
                    "start_time": "2026-10-02T10:00:00Z",
                    "end_time": "2026-12-02T09:00:00Z",
                    "dataset": "metrics",
                    "metrics": ["http"],
                    "interval": "1m",
                    "output": "local",
                }
            }
        }
    }
    result = job.execute_in_process(
        run_config=config, instance=project.instance, raise_on_error=False
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure is not None
    # The request's problems, with their pointers (a DefinitionError, as the API reads it).
    assert failure.cause is not None and failure.cause.cls_name == "TaskRequestError"
    assert failure.cause.message.splitlines()[0] == (
        "exporter_pipeline.exports.task_request.TaskRequestError: "
        "export task 'on_demand' (/end_time): "
        "a bounded export covers at most 30 days; this one covers 60"
    )


@pytest.mark.servers  # whole Dagster jobs over 3 ingested days (the `project` fixture)
def test_late_raw_hour_triggers_the_opt_in_reexport_of_its_window(
    project: Project,
) -> None:
    key = dg.AssetKey(["exports", "late_raw"])
    assert project.run_export("late_raw", partition_key="2026-10-01").success
    first = dg.evaluate_automation_conditions(
        defs=project.defs, instance=project.instance, asset_selection=dg.AssetSelection.assets(key)
    )
    # Exported and nothing changed since: fresh, nothing to re-export.
    assert first.get_requested_partitions(key) == set()
    cursor = first.cursor

    # A late landing file for 05:00 on day 1: the raw hour is re-materialized.
    late = project.root / "landing/dt=2026-10-01/hour=05/late.jsonl"
    late.write_text(
        '{"event_id": "late-1", "tenant": "acme", "event_type": "heartbeat", '
        '"event_time": "2026-10-01T05:30:00Z"}\n'
    )
    job = project.defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey("raw_events")}
    )
    assert job.execute_in_process(
        instance=project.instance, partition_key="2026-10-01-05:00"
    ).success

    evaluation = dg.evaluate_automation_conditions(
        defs=project.defs,
        instance=project.instance,
        cursor=cursor,
        asset_selection=dg.AssetSelection.assets(key),
    )
    assert evaluation.get_requested_partitions(key) == {"2026-10-01"}


def on_demand_config(tenant: str, path: str) -> dict[str, Any]:
    task = {
        "name": "typo_task",
        "tenant": tenant,
        "start_time": "2026-10-02T10:00:00Z",
        "end_time": "2026-10-02T12:00:00Z",
        "output": "local",
        "path": path,
    }
    return {"ops": {"export_task": {"config": task}}}


@pytest.mark.servers  # whole Dagster jobs over 3 ingested days (the `project` fixture)
def test_on_demand_job_refuses_a_tenant_nobody_knows(project: Project) -> None:
    job = project.defs.resolve_job_def("export_on_demand")
    result = job.execute_in_process(
        run_config=on_demand_config("acmee", "typo"),
        instance=project.instance,
        raise_on_error=False,
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure is not None and failure.cause is not None
    assert failure.cause.message.splitlines()[0] == (
        "exporter_pipeline.errors.DefinitionError: export task 'typo_task' (/tenant): "
        "unknown tenant 'acmee': the definitions store has no export, output or API key "
        "of it and the lake holds no event of it from 2026-10-02T10:00:00Z to "
        "2026-10-02T12:00:00Z"
    )
    assert [f for f in project.files() if f.startswith("typo/")] == []


@pytest.mark.servers  # whole Dagster jobs over 3 ingested days (the `project` fixture)
def test_on_demand_job_says_no_data_for_a_known_tenant(project: Project) -> None:
    # acme has exports in the store, but no event before the lake's first day.
    job = project.defs.resolve_job_def("export_on_demand")
    config = on_demand_config("acme", "quiet")
    config["ops"]["export_task"]["config"] |= {
        "start_time": "2026-09-30T22:00:00Z",
        "end_time": "2026-09-30T23:00:00Z",
    }
    (project.root / "lake" / "raw_events" / "dt=2026-09-30" / "hour=22").mkdir(parents=True)
    empty = project.root / "lake" / "raw_events" / "dt=2026-09-30" / "hour=22" / "events.parquet"
    first = project.root / "lake" / "raw_events" / "dt=2026-10-01" / "hour=00" / "events.parquet"
    pl.read_parquet(first).clear().write_parquet(empty)
    result = job.execute_in_process(run_config=config, instance=project.instance)
    assert result.success
    [output] = [
        e.event_specific_data.metadata  # type: ignore[union-attr]  # a STEP_OUTPUT event
        for e in result.all_events
        if e.event_type_value == "STEP_OUTPUT"
    ]
    assert output["note"].value == (
        "no data for tenant 'acme' from 2026-09-30T22:00:00Z to 2026-09-30T23:00:00Z"
    )
    assert output["rows"].value == 0


@pytest.mark.servers  # whole Dagster jobs over 3 ingested days (the `project` fixture)
def test_every_execution_carries_its_progress(project: Project) -> None:
    began = time.monotonic()
    result = project.run_export("daily_raw", tags=range_tags("2026-10-01", "2026-10-02"))
    elapsed = time.monotonic() - began
    assert result.success
    run = project.instance.get_run_by_id(result.run_id)
    assert run is not None and run.tags["progress"] == "100"
    [materialization, *_] = result.get_asset_materialization_events()
    assert materialization.materialization.metadata["progress"].value == 100
    lines = [
        e.user_message
        for e in project.instance.all_logs(result.run_id)
        if e.user_message.startswith("progress ")
    ]
    # 48 files: the first and the last always, between them at most one a second.
    assert lines[0] == "progress 2%: window 1/2 (2026-10-01): 1/24 files, 2026-10-01 00:00"
    assert lines[-2] == "progress 99%: window 2/2 (2026-10-02): 24/24 files, 2026-10-02 23:00"
    assert lines[-1] == "progress 100%: window 2/2 (2026-10-02): published"
    assert 3 <= len(lines) <= 3 + int(elapsed)
    # Progress adds no observation: one per window, as the delivery sensor reads them.
    observed = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    assert len(observed) == 2

    job = project.defs.resolve_job_def("export_on_demand")
    task = job.execute_in_process(
        run_config=on_demand_config("acme", "progress"), instance=project.instance
    )
    assert task.success
    on_demand = project.instance.get_run_by_id(task.run_id)
    assert on_demand is not None and on_demand.tags["progress"] == "100"
    output = task.output_for_node("export_task")
    assert output["files"] == ["progress/2026-10-02-10-00.csv", "progress/2026-10-02-11-00.csv"]
    lines = [
        e.user_message
        for e in project.instance.all_logs(task.run_id)
        if e.user_message.startswith("progress ")
    ]
    assert lines[0] == "progress 50%: 1/2 files, 2026-10-02 10:00"
    assert lines[-2:] == ["progress 99%: 2/2 files, 2026-10-02 11:00", "progress 100%: published"]
    [metadata] = [
        e.event_specific_data.metadata  # type: ignore[union-attr]  # a STEP_OUTPUT event
        for e in task.all_events
        if e.event_type_value == "STEP_OUTPUT"
    ]
    assert metadata["progress"].value == 100
