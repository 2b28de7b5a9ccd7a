"""`reexport_late_data`: the automation condition, evaluated tick by tick on a real instance.

Raw hours are reported as materialized (runless events, as an ingest records them); the
re-export in progress is a real run of the export asset, held open until the test lets it
end, so `in_progress` is Dagster's own answer.
"""

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest

from exporter_pipeline.defs.late_data import (
    LATE_DATA_SENSOR,
    LATE_DATA_TAG,
    build_late_data_sensors,
    flag_late_data,
    late_data_condition,
)
from exporter_pipeline.exports.spec import parse_definitions

DAY = "2026-10-01"
HOURS = [f"{DAY}-{hour:02d}:00" for hour in range(24)]
hours = dg.HourlyPartitionsDefinition(start_date=f"{DAY}-00:00")
release, entered = threading.Event(), threading.Event()
# A second hold, after the run read its hours (and looked for changes), before its
# materialization is recorded.
release_read, read = threading.Event(), threading.Event()


@dg.asset(key="raw", partitions_def=hours)
def raw() -> None:
    return None


@dg.asset(
    key="export",
    partitions_def=dg.DailyPartitionsDefinition(start_date=DAY),
    deps=[dg.AssetDep("raw", partition_mapping=dg.TimeWindowPartitionMapping())],
    automation_condition=late_data_condition(),
)
def export(context: dg.AssetExecutionContext) -> None:
    began = time.time()
    entered.set()
    assert release.wait(60), "the test never let the export end"
    window = context.partition_time_window
    flag_late_data(context, ["raw"], [(window.start, window.end)], began)
    read.set()
    assert release_read.wait(60), "the test never let the export materialize"


class Ticks:
    """Successive evaluations of the condition, each returning the windows requested."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self.cursor = None

    def __call__(self) -> set[str]:
        result = dg.evaluate_automation_conditions(
            defs=[raw, export], instance=self.instance, cursor=self.cursor
        )
        self.cursor = result.cursor
        return set(result.get_requested_partitions(dg.AssetKey("export")))


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def ingest(instance: dg.DagsterInstance, *partitions: str) -> None:
    for partition in partitions:
        instance.report_runless_asset_event(dg.AssetMaterialization("raw", partition=partition))


def exported(instance: dg.DagsterInstance) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization("export", partition=DAY))


def test_a_first_export_is_not_re_exported_and_a_late_hour_is_once(
    instance: dg.DagsterInstance,
) -> None:
    tick = Ticks(instance)
    ingest(instance, *HOURS)
    assert tick() == set()  # never exported: the window is the schedule's, not late data's
    exported(instance)
    assert tick() == set()
    ingest(instance, HOURS[5])  # a late file, re-ingested
    assert tick() == {DAY}
    assert tick() == set()


def run_export(
    instance: dg.DagsterInstance,
    during: Callable[[], None] = lambda: None,
    after_read: Callable[[], None] = lambda: None,
) -> str:
    """A real run of the window, with `during` called while it reads its hours and
    `after_read` once it has read them, before its materialization; its run tags' value
    of LATE_DATA_TAG."""
    for event in (release, entered, release_read, read):
        event.clear()
    run = threading.Thread(
        target=dg.materialize,
        args=([raw, export],),
        kwargs={"instance": instance, "partition_key": DAY, "selection": [export]},
    )
    run.start()
    try:
        assert entered.wait(30), "the export never began"
        during()
        release.set()
        assert read.wait(30), "the export never read its hours"
        after_read()
    finally:
        release.set()
        release_read.set()
        run.join(60)
    assert not run.is_alive()
    (ended,) = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1)
    return ended.tags.get(LATE_DATA_TAG, "")


@pytest.mark.parametrize("tick_while_running", [True, False])
def test_a_late_hour_while_the_window_is_being_re_exported_re_exports_it_after(
    instance: dg.DagsterInstance, tick_while_running: bool
) -> None:
    tick = Ticks(instance)
    ingest(instance, *HOURS)
    exported(instance)
    assert tick() == set()

    def late_file() -> None:
        ingest(instance, HOURS[6])  # re-ingested while the run in progress may have read it
        if tick_while_running:
            assert tick() == set()  # not while the window is being exported

    assert run_export(instance, late_file) == "true"
    assert tick() == {DAY}  # the run that ended read the hour before it changed
    assert tick() == set()


@pytest.mark.xfail(strict=True, reason="the run's check came before the change")
def test_a_late_hour_after_the_run_read_it_seen_before_its_materialization_re_exports(
    instance: dg.DagsterInstance,
) -> None:
    """The hour is re-ingested after the run read it, and a tick sees the change while
    the run is in progress; the next tick sees the run's materialization alone."""
    tick = Ticks(instance)
    ingest(instance, *HOURS)
    exported(instance)
    assert tick() == set()

    def late_file() -> None:
        ingest(instance, HOURS[8])
        assert tick() == set()  # not while the window is being exported

    run_export(instance, after_read=late_file)
    assert tick() == {DAY}  # the run read the hour before it changed
    assert tick() == set()


def test_a_change_seen_with_the_window_s_materialization_re_exports_it_once(
    instance: dg.DagsterInstance,
) -> None:
    """A tick cannot tell whether the run began before or after the hour changed."""
    tick = Ticks(instance)
    ingest(instance, *HOURS)
    exported(instance)
    assert tick() == set()
    assert run_export(instance) == ""
    ingest(instance, HOURS[7])  # after the run, before the next tick
    assert tick() == {DAY}
    assert tick() == set()


def test_a_first_export_seen_with_its_hours_is_not_re_exported(
    instance: dg.DagsterInstance,
) -> None:
    tick = Ticks(instance)
    assert tick() == set()
    ingest(instance, *HOURS)
    exported(instance)  # the hours and the window's first export, in one tick
    assert tick() == set()
    assert tick() == set()


def test_the_sensor_runs_from_the_start_for_the_exports_that_ask(tmp_path: Path) -> None:
    def entry(name: str, late: bool) -> dict[str, object]:
        return {
            "name": name,
            "tenant": "acme",
            "dataset": "raw",
            "cadence": "daily",
            "start": "2026-10-01",
            "output": {"name": "o"},
            "reexport_late_data": late,
        }

    outputs = {"o": {"type": "local", "path": str(tmp_path)}}
    document = {"outputs": outputs, "exports": [entry("late", True), entry("on_time", False)]}
    (sensor,) = build_late_data_sensors(parse_definitions(document, Path("exports.yaml")))
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert (sensor.name, sensor.default_status) == (
        LATE_DATA_SENSOR,
        dg.DefaultSensorStatus.RUNNING,
    )
    assert sensor.minimum_interval_seconds == 30
    assert sensor.asset_selection == dg.AssetSelection.assets(["exports", "late"])
    document["exports"] = [entry("on_time", False)]
    assert build_late_data_sensors(parse_definitions(document, Path("exports.yaml"))) == []
