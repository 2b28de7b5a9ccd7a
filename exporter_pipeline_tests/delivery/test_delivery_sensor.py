"""The delivery sensor (defs/delivery_sensor.py, delivery/cursor.py): what it finds from
the event log and what it lists. Real export runs on an ephemeral Dagster instance write
to a real local output folder; the failure-notice sensor is evaluated as the daemon does.
A rewritten old window is delivered again (also one erasure exported again), nothing
twice (two hints of one file, a run key already used by any delivery run), the failure
sensor's error files are delivered, an unreadable output keeps its hints, and a tick
lists the same few objects whatever the history in the folder."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from exporter_pipeline.definitions import build_definitions
from exporter_pipeline.defs import delivery_sensor
from exporter_pipeline.delivery.cursor import (
    MAX_AGE,
    DeliveryCursor,
    Hint,
    fresh_objects,
    listing_prefix,
    plan_listings,
)
from exporter_pipeline.destinations import ObjectInfo
from exporter_pipeline.destinations.local import LocalDestination
from exporter_pipeline.errors import RetryableDestinationError
from exporter_pipeline.lake import hourly_key
from exporter_pipeline.settings import Settings
from exporter_pipeline_tests.delivery.conftest import Receiver, delivering_outputs
from exporter_pipeline_tests.delivery.test_delivery import HOUR, SECRET, Deployment
from exporter_pipeline_tests.exports.conftest import DAY, Lake

MANIFESTS = "deliveries/_manifests"
MANIFEST_0 = f"{MANIFESTS}/2026-10-01-00-00_2026-10-01-01-00.json"
MANIFEST_1 = f"{MANIFESTS}/2026-10-01-01-00_2026-10-01-02-00.json"
ERROR_5 = f"{MANIFESTS}/2026-10-01-05-00_2026-10-01-06-00.error.json"


@pytest.fixture
def deployment(
    lake: Lake, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Deployment:
    monkeypatch.setenv("T_HOOK_SECRET", SECRET)
    output = {"type": "local", "path": str(tmp_path / "bucket")}
    return Deployment(tmp_path, lake, output, receiver, None, {})


def keys(requests: list[dg.RunRequest]) -> list[str]:
    return [r.run_config["ops"]["deliver"]["config"]["key"] for r in requests]


def test_a_rewritten_old_window_is_delivered_again_and_nothing_twice(
    deployment: Deployment,
) -> None:
    assert deployment.tick() == []
    assert deployment.export().success
    [first] = deployment.tick()  # its observation and its run's end: one request
    assert keys([first]) == [MANIFEST_0]
    assert deployment.export("2026-10-01-01:00").success
    assert keys(deployment.tick()) == [MANIFEST_1]
    assert deployment.tick() == []
    # A re-run of the first window rewrites its manifest: the same key, a new time.
    assert deployment.export().success
    [again] = deployment.tick()
    assert keys([again]) == [MANIFEST_0] and again.run_key != first.run_key
    assert deployment.tick() == []
    assert deployment.deliver(again).success


def test_a_window_erasure_regenerated_is_delivered_again(
    deployment: Deployment, lake: Lake
) -> None:
    """Erasure exports a window again outside the export's job: its observation of the
    export is the sensor's only hint (the erase run is no run of the export)."""
    assert deployment.export().success
    [first] = deployment.tick()
    raw = pl.read_parquet(lake.root / hourly_key("raw_events", DAY))
    user = raw.filter(pl.col("tenant") == "acme")["user_id"].drop_nulls()[0]
    config = {"ops": {"erase": {"config": {"tenant": "acme", "user_id": user}}}}
    erase = deployment.defs.resolve_job_def("erase_user")
    assert erase.execute_in_process(instance=deployment.instance, run_config=config).success
    [again] = deployment.tick()
    assert keys([again]) == [MANIFEST_0] and again.run_key != first.run_key
    assert deployment.tick() == []


def test_a_run_key_used_by_any_delivery_run_is_not_requested_again(
    deployment: Deployment,
) -> None:
    assert deployment.export().success
    [request] = deployment.tick()
    # The delivery launched (as the daemon does, with the run key as a tag), possibly by
    # the per-output sensor this one replaced; then a fresh cursor reads the same events.
    job = deployment.defs.resolve_job_def("deliver_export")
    deployment.instance.create_run_for_job(
        job, run_config=request.run_config, tags={"dagster/run_key": str(request.run_key)}
    )
    assert deployment.tick(cursor="") == []
    # The cursor of the listing sensors of before is read as a fresh one, too.
    assert deployment.tick(cursor='{"watermark": null, "seen": []}') == []


def test_the_failure_sensors_error_file_is_delivered_once(deployment: Deployment) -> None:
    assert deployment.tick() == []
    instance, defs = deployment.instance, deployment.defs
    job = defs.resolve_job_def("export_acme_hourly")
    run = instance.create_run_for_job(
        job, tags={**job.tags, "dagster/partition": "2026-10-01-05:00"}
    )
    instance.report_engine_event(
        f"Run execution process for {run.run_id} was terminated by signal 9 (SIGKILL).", run
    )
    instance.report_run_failed(run)
    # The delivery sensor may see the run's end before the failure sensor wrote the file.
    assert deployment.tick() == []
    failure = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[0]
    sensor = defs.resolve_sensor_def("export_failure_notice_sensor")
    assert isinstance(sensor, dg.RunStatusSensorDefinition) and failure.dagster_event
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run.run_id),  # type: ignore[arg-type]
        dagster_event=failure.dagster_event,
    )
    sensor(context)
    [request] = deployment.tick()  # found from the failure sensor's observation
    assert keys([request]) == [ERROR_5] and request.tags["delivery"] == "failed"
    assert deployment.tick() == []
    assert deployment.deliver(request).success


def test_an_output_that_cannot_be_read_keeps_its_hints(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert deployment.export().success
    listing = LocalDestination.list

    def down(self: LocalDestination, prefix: str = "") -> list[ObjectInfo]:
        raise RetryableDestinationError(f"{self.uri(prefix)}: unreachable")

    monkeypatch.setattr(LocalDestination, "list", down)
    assert deployment.tick() == []
    pending = [h.key for h in DeliveryCursor.parse(deployment.cursor).pending]
    assert sorted(pending) == [MANIFEST_0.replace(".json", ".error.json"), MANIFEST_0]
    monkeypatch.setattr(LocalDestination, "list", listing)
    assert keys(deployment.tick()) == [MANIFEST_0]
    assert DeliveryCursor.parse(deployment.cursor).pending == []


def fill_history(root: Path, days: int) -> None:
    """`days` days of hourly manifests before the lake's day, as old runs left them."""
    folder = root / "bucket" / MANIFESTS
    folder.mkdir(parents=True, exist_ok=True)
    first = datetime(2026, 10, 1, tzinfo=UTC) - timedelta(days=days)
    for hour in range(days * 24):
        start = first + timedelta(hours=hour)
        name = f"{start:%Y-%m-%d-%H-%M}_{start + timedelta(hours=1):%Y-%m-%d-%H-%M}.json"
        (folder / name).write_bytes(b"{}")
        os.utime(folder / name, (start.timestamp(), start.timestamp()))


@pytest.mark.parametrize("days", [0, 30])
def test_a_tick_lists_the_same_few_objects_whatever_the_history(
    days: int, deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill_history(tmp_path, days)
    calls: list[tuple[str, int]] = []
    listing = LocalDestination.list

    def counted(self: LocalDestination, prefix: str = "") -> list[ObjectInfo]:
        found = listing(self, prefix)
        calls.append((prefix, len(found)))
        return found

    monkeypatch.setattr(LocalDestination, "list", counted)
    assert deployment.tick() == []
    assert calls == []  # no event, no listing
    assert deployment.export().success
    calls.clear()  # what the export run listed (its stale files) is not the sensor's
    assert keys(deployment.tick()) == [MANIFEST_0]
    assert calls == [(f"{MANIFESTS}/2026-10-01", 1)]  # one day's names, not the folder


def test_a_backlog_is_read_a_bounded_number_of_events_per_tick(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert deployment.tick() == []
    assert deployment.export().success
    assert deployment.export("2026-10-01-01:00").success
    monkeypatch.setattr(delivery_sensor, "EVENTS_PER_TICK", 1)
    found: list[str] = []
    for _ in range(4):
        found += keys(deployment.tick())
    assert found == [MANIFEST_0, MANIFEST_1]


def info(key: str, modified: datetime) -> ObjectInfo:
    return ObjectInfo(key, 10, modified)


def test_fresh_objects_are_new_since_their_hint_and_young_enough() -> None:
    now = datetime(2026, 10, 10, tzinfo=UTC)
    cursor = DeliveryCursor()
    since = now - timedelta(hours=1)
    hints = [Hint("e", "a.json", since), Hint("e", "b.json", since), Hint("e", "a.json", now)]
    found = [
        info("a.json", since + timedelta(minutes=1)),
        info("b.json", since - timedelta(minutes=1)),  # an earlier run's: delivered then
        info("c.json", now),  # not hinted
    ]
    assert [(e, o.key) for e, o in fresh_objects(found, hints, cursor, now)] == [("e", "a.json")]
    assert fresh_objects(found, hints, cursor, now) == []  # seen
    cursor.forget_before(now + timedelta(hours=1))
    assert cursor.seen == {}
    old = [info("a.json", now - MAX_AGE - timedelta(seconds=1))]
    assert fresh_objects(old, [Hint("e", "a.json", now - MAX_AGE * 2)], cursor, now) == []


def test_two_outputs_holding_the_same_key_both_deliver_on_a_sqlite_instance(
    lake: Lake, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the default SQLite storage (events sharded per run), with one sensor for all."""
    monkeypatch.setenv("T_HOOK_SECRET", SECRET)
    hook = {"url": receiver.url, "secret_env": "T_HOOK_SECRET"}
    settings = delivering_outputs(tmp_path, lake.root, ("o1", "o2"), hook)
    defs = build_definitions(Settings.from_env(settings))
    sensor = defs.resolve_sensor_def("deliver_manifests_sensor")
    with dg.instance_for_test() as instance:
        for name in ("acme_o1", "acme_o2"):
            job = defs.resolve_job_def(f"export_{name}")
            assert job.execute_in_process(instance=instance, partition_key=HOUR).success
        with dg.build_sensor_context(instance=instance, resources=defs.resources) as context:
            result = sensor.evaluate_tick(context)
        requests = list(result.run_requests or [])
        assert sorted(r.tags["export"] for r in requests) == ["acme_o1", "acme_o2"]
        assert keys(requests) == [MANIFEST_0, MANIFEST_0]
        assert len({r.run_key for r in requests}) == 2
        with dg.build_sensor_context(
            instance=instance, resources=defs.resources, cursor=result.cursor
        ) as context:
            assert not sensor.evaluate_tick(context).run_requests


def test_listing_prefixes_cover_a_day_of_names_each() -> None:
    names = [f"p/_manifests/2026-10-0{d}-{h:02d}-00_x.json" for d in (1, 2) for h in range(24)]
    prefixes = sorted({listing_prefix(name) for name in names})
    assert prefixes == ["p/_manifests/2026-10-01", "p/_manifests/2026-10-02"]
    assert listing_prefix("2026-10-01-00-00_x.json") == "2026-10-01"


def test_listings_are_planned_news_first_oldest_first() -> None:
    now = datetime(2026, 10, 10, tzinfo=UTC)
    day_1, day_2 = "p/_manifests/2026-10-01-00-00_x.json", "p/_manifests/2026-10-02-00-00_x.json"
    news = [
        Hint("a", day_2, now),
        Hint("b", day_1, now - timedelta(hours=2)),
        Hint("a", day_1, now - timedelta(hours=1)),
        Hint("a", day_1.replace(".json", ".error.json"), now),
    ]
    retried = [Hint("c", day_1, now - timedelta(days=1)), Hint("a", day_2, now - timedelta(days=1))]
    planned = plan_listings(news, retried, {"a": "out_a", "b": "out_b", "c": "out_c"})
    assert [(p.output, p.prefix[-10:], p.retry, len(p.hints)) for p in planned] == [
        ("out_a", "2026-10-02", False, 1),  # news and a retry of one key: news, the earliest
        ("out_b", "2026-10-01", False, 1),
        ("out_a", "2026-10-01", False, 2),  # one listing for both keys of the day
        ("out_c", "2026-10-01", True, 1),  # only an output that could not be read: last
    ]
    assert planned[0].oldest == now - timedelta(days=1)


def test_a_cursor_round_trips() -> None:
    cursor = DeliveryCursor(
        after={"observed": 3},
        seen={"k@t": 1.0},
        pending=[Hint("e", "k", datetime.now(UTC))],
        backlog=[Hint("e", "j", datetime.now(UTC))],
    )
    assert DeliveryCursor.parse(cursor.serialize()) == cursor
    assert DeliveryCursor.parse(None).first_tick
    # A cursor of before the backlog reads as one with an empty backlog.
    older = '{"after": {"observed": 3}, "seen": {}, "pending": []}'
    assert DeliveryCursor.parse(older) == DeliveryCursor(after={"observed": 3})
