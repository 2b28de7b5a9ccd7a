"""The delivery sensor under a burst (defs/delivery_sensor.py, delivery/cursor.py): every
output has news at once, more than one tick may look at. Real export runs on a SQLite
Dagster instance (`instance_for_test`) write to real local output folders, one per
export; the sensor is evaluated as the daemon does. A burst larger than the per-tick
budget (`EXPORTER_DELIVERY_LISTINGS_PER_TICK`) is delivered over the next ticks, each
within the budget, oldest news first, every manifest requested once; an output that is
down never holds the others' news; a full backlog leaves the events after the cursor
for later ticks; a tick out of time carries what it did not reach. A bucket that never
answers: hostile/test_silent_bucket.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from exporter_pipeline.definitions import build_definitions
from exporter_pipeline.defs import delivery_sensor
from exporter_pipeline.defs.delivery_sensor import DELIVERY_SENSOR
from exporter_pipeline.delivery import cursor as delivery_cursor
from exporter_pipeline.delivery.cursor import DeliveryCursor
from exporter_pipeline.destinations import ObjectInfo
from exporter_pipeline.destinations.local import LocalDestination
from exporter_pipeline.errors import RetryableDestinationError
from exporter_pipeline.settings import Settings
from exporter_pipeline.store.store import DefinitionsStore
from exporter_pipeline_tests.delivery.conftest import Receiver, delivering_outputs
from exporter_pipeline_tests.delivery.test_delivery import HOUR, SECRET
from exporter_pipeline_tests.exports.conftest import Lake

MANIFEST_0 = "deliveries/_manifests/2026-10-01-00-00_2026-10-01-01-00.json"


class Fleet:
    """Local outputs o0, o1, … with one delivering export `acme_o<i>` each, one sensor
    for all, a SQLite instance; the outputs each tick lists, and outputs made to fail."""

    def __init__(
        self, root: Path, lake: Lake, hook: dict[str, str], instance: dg.DagsterInstance
    ) -> None:
        self.root, self.lake, self.hook, self.instance = root, lake, hook, instance
        self.cursor: str | None = None
        self.listed: list[str] = []  # the output of each listing of the last tick
        self.down: set[str] = set()  # outputs whose listings raise during a tick
        self.ticking = False

    def build(self, outputs: int, budget: int) -> Fleet:
        names = [f"o{i}" for i in range(outputs)]
        self.settings = {
            **delivering_outputs(self.root, self.lake.root, names, self.hook),
            "EXPORTER_DELIVERY_LISTINGS_PER_TICK": str(budget),
        }
        self.defs = build_definitions(Settings.from_env(self.settings))
        return self

    def move(self, output: str, to: dict[str, str]) -> None:
        """Point `output` somewhere else, through the store (its exports and news stay)."""
        exports_file = self.root / "exports.yaml"
        document = yaml.safe_load(exports_file.read_text())
        document["outputs"][output] = to
        exports_file.write_text(yaml.safe_dump(document))
        DefinitionsStore.open(os.environ["EXPORTER_DATABASE_URL"]).apply_file(exports_file)
        self.defs = build_definitions(Settings.from_env(self.settings))

    def export(self, output: str) -> None:
        job = self.defs.resolve_job_def(f"export_acme_{output}")
        assert job.execute_in_process(instance=self.instance, partition_key=HOUR).success

    def tick(self) -> list[dg.RunRequest]:
        self.listed, self.ticking = [], True
        sensor = self.defs.resolve_sensor_def(DELIVERY_SENSOR)
        try:
            with dg.build_sensor_context(
                instance=self.instance, cursor=self.cursor, resources=self.defs.resources
            ) as context:
                result = sensor.evaluate_tick(context)
        finally:
            self.ticking = False
        self.cursor = result.cursor
        return list(result.run_requests or [])

    def listing(self, destination: LocalDestination, prefix: str) -> None:
        """Count a listing the sensor makes; raise if its output is down."""
        if self.ticking:
            output = destination.root.relative_to(self.root.resolve()).parts[0]
            self.listed.append(output)
            if output in self.down:
                raise RetryableDestinationError(f"{destination.uri(prefix)}: unreachable")

    @property
    def parsed(self) -> DeliveryCursor:
        return DeliveryCursor.parse(self.cursor)


@pytest.fixture
def fleet(
    lake: Lake, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Fleet]:
    monkeypatch.setenv("T_HOOK_SECRET", SECRET)
    with dg.instance_for_test() as instance:
        made = Fleet(tmp_path, lake, {"url": receiver.url, "secret_env": "T_HOOK_SECRET"}, instance)
        listing = LocalDestination.list

        def counted(self: LocalDestination, prefix: str = "") -> list[ObjectInfo]:
            made.listing(self, prefix)
            return listing(self, prefix)

        monkeypatch.setattr(LocalDestination, "list", counted)
        yield made


def exports_of(requests: list[dg.RunRequest]) -> list[str]:
    return [r.tags["export"] for r in requests]


def burst(fleet: Fleet, outputs: int) -> None:
    """A first tick on a quiet log, then every output's export publishes a window, o0
    first (its news is the oldest)."""
    assert fleet.tick() == []
    for i in range(outputs):
        fleet.export(f"o{i}")


def test_a_burst_over_the_budget_is_delivered_over_the_next_ticks_each_once(
    fleet: Fleet,
) -> None:
    burst(fleet.build(7, budget=3), 7)
    ticks, listed = [], []
    for _ in range(4):
        ticks.append(fleet.tick())
        listed.append(sorted(fleet.listed))  # listed on threads, in any order
    # Three listings a tick at most, oldest news first, until the backlog is drained.
    assert listed == [["o0", "o1", "o2"], ["o3", "o4", "o5"], ["o6"], []]
    assert [exports_of(t) for t in ticks] == [
        ["acme_o0", "acme_o1", "acme_o2"],
        ["acme_o3", "acme_o4", "acme_o5"],
        ["acme_o6"],
        [],
    ]
    requests = [r for t in ticks for r in t]
    assert len({r.run_key for r in requests}) == len(requests) == 7
    assert {r.run_config["ops"]["deliver"]["config"]["key"] for r in requests} == {MANIFEST_0}
    assert fleet.parsed.backlog == [] and fleet.parsed.pending == []


def test_an_output_that_is_down_never_holds_the_others_news(fleet: Fleet) -> None:
    fleet.build(4, budget=2)
    fleet.down = {"o0", "o1", "o2"}
    burst(fleet, 3)
    assert fleet.tick() == [] and sorted(fleet.listed) == ["o0", "o1"]  # both failed
    fleet.export("o3")
    # News first (o2's, then o3's), the outputs that could not be read after them.
    assert exports_of(fleet.tick()) == ["acme_o3"] and sorted(fleet.listed) == ["o2", "o3"]
    fleet.down = set()
    assert exports_of(fleet.tick()) == ["acme_o0", "acme_o1"]
    assert exports_of(fleet.tick()) == ["acme_o2"]
    assert fleet.tick() == [] and fleet.listed == []


def test_a_full_backlog_leaves_the_next_events_after_the_cursor(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    burst(fleet.build(3, budget=10), 3)
    before = dict(fleet.parsed.after)
    monkeypatch.setattr(delivery_cursor, "MAX_BACKLOG", 1)
    # One event a tick: the first observation, the backlog is full, the rest waits.
    assert exports_of(fleet.tick()) == ["acme_o0"]
    after = fleet.parsed.after
    assert after["observed"] > before["observed"] and after["success"] == before["success"]
    assert exports_of(fleet.tick()) == ["acme_o1"]
    assert exports_of(fleet.tick()) == ["acme_o2"]
    # Then the runs' ends, one a tick: nothing new, nothing requested twice.
    assert [fleet.tick() for _ in range(4)] == [[], [], [], []]
    assert fleet.parsed.after["success"] > before["success"]


def test_a_tick_out_of_time_carries_the_outputs_it_did_not_reach(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    burst(fleet.build(3, budget=10), 3)
    monkeypatch.setattr(delivery_sensor, "TICK_SECONDS", -1.0)  # always out of time
    # Only the oldest output is looked at each tick; the others wait, none is lost.
    ticks = [exports_of(fleet.tick()) for _ in range(4)]
    assert ticks == [["acme_o0"], ["acme_o1"], ["acme_o2"], []]
