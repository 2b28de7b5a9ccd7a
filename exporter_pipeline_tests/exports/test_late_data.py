"""`reexport_late_data`: the automation condition, evaluated tick by tick on a real instance.

Raw hours are reported as materialized (runless events, as an ingest records them); the
re-export in progress is a real run of the export asset, held open while it reads and
again once it has read (before its materialization is recorded) until the test lets it
go on, so `in_progress` is Dagster's own answer. Each interleaving of a late hour with a
run of its window ends with the window requested once if the run may have read the hour
before it changed, and not at all if it began after.
"""

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest

from exporter_pipeline.defs import late_data
from exporter_pipeline.defs.late_data import (
    INPUTS_AS_OF,
    LATE_DATA_SENSOR,
    build_late_data_sensors,
    inputs_as_of,
    late_data_condition,
    read_before_change,
)
from exporter_pipeline.exports.spec import parse_definitions

DAY = "2026-10-01"
HOURS = [f"{DAY}-{hour:02d}:00" for hour in range(24)]
hours = dg.HourlyPartitionsDefinition(start_date=f"{DAY}-00:00")
release, entered = threading.Event(), threading.Event()
# A second hold, after the run read its hours, before its materialization is recorded.
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
def export(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    as_of = inputs_as_of(context.instance)  # as export_asset does, before it reads
    entered.set()
    assert release.wait(60), "the test never let the export read"
    read.set()
    assert release_read.wait(60), "the test never let the export materialize"
    return dg.MaterializeResult(metadata={INPUTS_AS_OF: as_of})


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
) -> None:
    """A real run of the window, with `during` called while it reads its hours and
    `after_read` once it has read them, before its materialization is recorded."""
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
    (ended,) = instance.get_runs(limit=1)
    assert ended.status == dg.DagsterRunStatus.SUCCESS


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

    run_export(instance, late_file)
    assert tick() == {DAY}  # the run that ended read the hour before it changed
    assert tick() == set()
    run_export(instance)  # the re-export, from the new hour
    assert tick() == set()
    assert tick() == set()


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
    run_export(instance)
    assert tick() == set()


def test_a_late_hour_recorded_before_the_run_began_is_handled_by_it(
    instance: dg.DagsterInstance,
) -> None:
    """The change is seen by a tick while the run is in progress, but the run began
    after it: its materialization handles it, nothing more is asked for."""
    tick = Ticks(instance)
    ingest(instance, *HOURS)
    exported(instance)
    assert tick() == set()
    ingest(instance, HOURS[9])  # no tick before the run begins

    def seen_while_running() -> None:
        assert tick() == set()

    run_export(instance, during=seen_while_running)
    assert tick() == set()
    assert tick() == set()


def test_a_change_seen_with_the_window_s_materialization_re_exports_it_once(
    instance: dg.DagsterInstance,
) -> None:
    """A tick cannot tell whether the run began before or after the hour changed."""
    tick = Ticks(instance)
    ingest(instance, *HOURS)
    exported(instance)
    assert tick() == set()
    run_export(instance)
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


def test_the_sensor_runs_from_the_start_for_the_exports_that_ask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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
    # Our own condition (ReadBeforeChange) is evaluated only in the code server.
    assert sensor.sensor_type.name == "AUTOMATION"
    assert sensor.asset_selection == dg.AssetSelection.assets(["exports", "late"])

    # Dagster's limit of assets per code-server sensor: more exports, more sensors.
    monkeypatch.setattr(late_data, "LATE_DATA_SENSOR_MAX_EXPORTS", 1)
    document["exports"] = [entry("late", True), entry("later", True), entry("on_time", False)]
    sensors = build_late_data_sensors(parse_definitions(document, Path("exports.yaml")))
    assert [(s.name, s.asset_selection) for s in sensors] == [
        (LATE_DATA_SENSOR, dg.AssetSelection.assets(["exports", "late"])),
        (f"{LATE_DATA_SENSOR}_2", dg.AssetSelection.assets(["exports", "later"])),
    ]
    document["exports"] = [entry("on_time", False)]
    assert build_late_data_sensors(parse_definitions(document, Path("exports.yaml"))) == []


def test_read_before_change_compares_each_hour_with_where_the_export_began() -> None:
    raw_key, derived = dg.AssetKey("raw"), dg.AssetKey("derived")
    hours_of = {"a": {raw_key: ["h1", "h2"], derived: ["h1"]}, "b": {raw_key: ["h3"]}}
    newest = {raw_key: {"h1": 10, "h2": 20, "h3": 5}, derived: {"h1": 31}}
    assert read_before_change({"a": 20, "b": 5}, hours_of, newest) == {"a"}  # derived h1
    assert read_before_change({"a": 31, "b": 4}, hours_of, newest) == {"b"}
    assert read_before_change({"b": 5}, hours_of, newest) == set()  # "a" never exported
