"""Erasure over every place the product writes (issue 20, point 3), through the Dagster
jobs, with the managed output a local folder and a bucket on the moto S3 server: the
user's rows leave the lake's raw hours, its quarantine (a record with no tenant, a blank
tenant, a malformed line), its view segments, the definition export, every on-demand task
(CSV, gzipped JSON Lines, Parquet, and one written in the definition's own folder) and
their own data export; everyone else's rows stay byte for byte. Every window changed is
published by the publish rule: new content under versioned names whose hash the test
computes itself, the old files gone, nothing unlisted left, manifests matching their
files; each regenerated window is observed so the delivery sensor finds its manifest; the
audit's counts equal what the test counts itself, and `not_reached` names exactly what
was left."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from exporter_pipeline.defs.delivery_sensor import OBSERVED, observation_hints, read_events
from exporter_pipeline.delivery.cursor import DeliveryCursor
from exporter_pipeline.exports.execution import export_window
from exporter_pipeline.exports.spec import load_definitions_file
from exporter_pipeline.exports.task_request import definition_of_request
from exporter_pipeline_tests.privacy.places import OUTPUT_KINDS, TASKS, Places, busiest_user

TASK_MANIFEST = "{}/_manifests/2026-10-01-00-00_2026-10-01-02-00.json"
DEFINITION_MANIFESTS = [
    "raw/_manifests/2026-10-01-00-00_2026-10-01-01-00.json",
    "raw/_manifests/2026-10-01-01-00_2026-10-01-02-00.json",
]
# An on-demand task written into the definition export's folder, over a window no
# definition run regenerates (issue 20: it was skipped, and the user left in it).
IN_DEFINITION_FOLDER = {
    "name": "raw_folder_task",
    "tenant": "acme",
    "dataset": "raw",
    "columns": ["event_id", "event_time", "user_id"],
    "output": "managed",
    "path": "raw",
    "start_time": "2026-10-01T00:30:00Z",
    "end_time": "2026-10-01T02:00:00Z",
}
IN_DEFINITION_FOLDER_MANIFEST = "raw/_manifests/2026-10-01-00-30_2026-10-01-02-00.json"
_VERSION = re.compile(r"\.[0-9a-f]{12}\.")


def quarantine_records(user: str) -> tuple[list[str], list[str]]:
    """Rejected records of the user (to go) and of others (to stay), as landed."""
    at = "2026-10-01T00:10:00Z"
    mine = [
        json.dumps({"event_id": "q-1", "user_id": user, "event_type": "pause", "event_time": at}),
        json.dumps({"event_id": "q-2", "tenant": " ", "user_id": user, "event_time": at}),
        json.dumps({"event_id": "q-3", "tenant": "acme", "user_id": user, "event_type": "x"}),
        f'{{"event_id": "q-4", "tenant": "acme", "user_id": "{user}", "event_time": ',
    ]
    others = [
        json.dumps({"event_id": "q-5", "tenant": "globex", "user_id": user, "event_type": "x"}),
        json.dumps({"event_id": "q-6", "user_id": "someone", "event_type": "pause"}),
        f'{{"event_id": "q-7", "tenant": "globex", "user_id": "{user}", "event_time": ',
    ]
    return mine, others


def quarantined(places: Places) -> list[str]:
    return places.lake_rows("raw_events_quarantine")["record"].to_list()


def of_user(frame: pl.DataFrame, user: str) -> pl.Expr:
    """A row of the user: by `user_id`, or `viewer_identifier` in views (seed 003)."""
    column = "user_id" if "user_id" in frame.columns else "viewer_identifier"
    return pl.col(column).cast(pl.String).eq(user).fill_null(False)


def user_rows(places: Places, key: str, user: str) -> int:
    frame = places.out.frame(key)
    return frame.filter(of_user(frame, user)).height


def listed_files(places: Places, manifest_key: str) -> list[str]:
    return [f["key"] for f in places.out.manifest(manifest_key)["files"]]


def versioned(key: str, data: bytes) -> str:
    """The name the publish rule gives `data` published in place of the file `key`."""
    stem, rest = _VERSION.sub(".", key).split(".", 1)
    return f"{stem}.{hashlib.sha256(data).hexdigest()[:12]}.{rest}"


def assert_republished(
    places: Places, manifest: str, before: list[str], sha_before: dict[str, str]
) -> list[str]:
    """The manifest lists, in place of each file of `before`, the same file when its
    content is the same, else the new content under its versioned name (the old gone)."""
    after = listed_files(places, manifest)
    expected = []
    for old, new in zip(before, after, strict=True):
        data = places.out.read(new)
        same = hashlib.sha256(data).hexdigest() == sha_before[old]
        expected.append(old if same else versioned(old, data))
    assert after == expected, manifest
    changed = set(before) - set(after)
    assert not changed & set(places.out.keys()), manifest
    return after


def assert_manifests_match_their_files(places: Places) -> None:
    """Every manifest's files are there as listed, and nothing else is (no file unlisted)."""
    keys = places.out.keys()
    manifests = [k for k in keys if "/_manifests/" in k]
    assert sorted({*manifests, *(f for m in manifests for f in listed_files(places, m))}) == keys
    for key in manifests:
        manifest = places.out.manifest(key)
        for entry in manifest["files"]:
            data = places.out.read(entry["key"])
            assert entry["sha256"] == hashlib.sha256(data).hexdigest(), entry["key"]
            assert entry["bytes"] == len(data), entry["key"]
            if not entry["key"].endswith("profile.jsonl"):
                assert entry["rows"] == places.out.frame(entry["key"]).height, entry["key"]
        assert manifest["rows"] == sum(f["rows"] for f in manifest["files"])


def fill(places: Places, user: str, other: str) -> None:
    """The definition's two hours, every task (one in the definition's folder), both
    users' data exports."""
    for hour in ("2026-10-01-00:00", "2026-10-01-01:00"):
        assert places.run("export_acme_raw", partition_key=hour).success
    for name in TASKS:
        places.task(name)
    # Tasks are now refused at an export's path; one written there before still holds rows.
    export, start, end = definition_of_request(IN_DEFINITION_FOLDER)
    output = places.out.destination()
    export_window(export, start, end, places.lake.store, output, "run-before-the-rule")
    places.user_export(user, "gdpr/u")
    places.user_export(other, "gdpr/v")


def assert_delivery_finds(places: Places, result: dg.ExecuteInProcessResult) -> None:
    """One observation of `exports/acme_raw` per regenerated window, naming its manifest,
    read from the instance's event log as the delivery sensor reads it."""
    observed = [
        (e.asset_key.path if e.asset_key else None, e.partition, e.event_specific_data)
        for e in result.get_asset_observation_events()
    ]
    assert [(path, partition) for path, partition, _ in observed] == [
        (["exports", "acme_raw"], "2026-10-01-00:00"),
        (["exports", "acme_raw"], "2026-10-01-01:00"),
    ]
    exports = {e.name: e for e in load_definitions_file(places.definitions_file).exports}
    records = read_events(
        places.instance,
        OBSERVED,
        dg.DagsterEventType.ASSET_OBSERVATION,
        DeliveryCursor(),
        datetime.now(UTC),
    )
    # The exports' own runs were observed too: the erase run's observations are its own.
    hints = observation_hints([r for r in records if r.run_id == result.run_id], exports)
    assert [(h.export, h.key) for h in hints] == [("acme_raw", m) for m in DEFINITION_MANIFESTS]


@pytest.mark.servers  # whole Dagster jobs; the S3 case asks for moto at run time
@pytest.mark.parametrize("kind", OUTPUT_KINDS)
def test_erasure_reaches_every_place_the_product_writes(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    places = Places(tmp_path, kind, request, monkeypatch)
    user, other = busiest_user(places, "acme"), busiest_user(places, "acme", rank=1)
    mine, others = quarantine_records(user)
    places.quarantine(mine + others)
    records_before = quarantined(places)
    assert set(mine + others) <= set(records_before)
    fill(places, user, other)
    keys_before, sha_before = places.out.keys(), places.out.sha256s()
    is_user = (pl.col("tenant") == "acme") & (pl.col("user_id") == user)
    raw_before = places.lake_rows("raw_events")
    segments_before = places.lake_rows("view_segments")
    rewritten = [
        *(TASK_MANIFEST.format(TASKS[name]["path"]) for name in ("parquet_task", "raw_task")),
        TASK_MANIFEST.format(TASKS["views_task"]["path"]),
        IN_DEFINITION_FOLDER_MANIFEST,
    ]
    files_before = {m: listed_files(places, m) for m in [*rewritten, *DEFINITION_MANIFESTS]}
    frames_before = {m: [places.out.frame(k) for k in files_before[m]] for m in rewritten}
    removed_from = {
        m: sum(user_rows(places, k, user) for k in keys) for m, keys in files_before.items()
    }
    assert all(removed_from[m] for m in rewritten) and raw_before.filter(is_user).height
    # The user's events are in hour 1 only: hour 0 is affected by quarantine alone, so
    # its window is regenerated with the same content under the same name.
    assert [removed_from[m] > 0 for m in DEFINITION_MANIFESTS] == [False, True]
    user_manifest = next(k for k in keys_before if k.startswith("gdpr/u/_manifests/"))
    user_export_rows = places.out.manifest(user_manifest)["rows"]

    result = places.run(
        "erase_user",
        {"ops": {"erase": {"config": {"tenant": "acme", "user_id": user}}}},
        tags={"user": "dpo@acme.example"},
    )
    assert result.success

    # The lake: raw, quarantine (exactly the user's four records), derived.
    assert places.lake_rows("raw_events").filter(is_user).height == 0
    assert sorted(quarantined(places)) == sorted(r for r in records_before if r not in mine)
    assert places.lake_rows("view_segments").filter(is_user).height == 0
    # The output: the user's export is gone, the other user's and other tenants' stay.
    keys_after = places.out.keys()
    gone = [k for k in keys_before if k.startswith("gdpr/u/")]
    assert len(gone) == 4 and not set(gone) & set(keys_after)  # profile, events, views, manifest
    sha_after = places.out.sha256s()
    for key in keys_before:
        if key.startswith(("gdpr/v/", "tasks/columns/", "tasks/globex/")):
            assert sha_after[key] == sha_before[key], key
    # Every changed window republished: versioned names, old files gone, the user's rows
    # gone and everyone else's as they were.
    for manifest in rewritten:
        after = assert_republished(places, manifest, files_before[manifest], sha_before)
        for key, before in zip(after, frames_before[manifest], strict=True):
            assert places.out.frame(key).equals(before.filter(~of_user(before, user))), key
    for manifest in DEFINITION_MANIFESTS:
        for key in assert_republished(places, manifest, files_before[manifest], sha_before):
            assert user_rows(places, key, user) == 0
            assert places.out.frame(key).filter(pl.col("tenant") == "acme").height > 0
    assert_manifests_match_their_files(places)
    assert_delivery_finds(places, result)

    audits = sorted((places.lake.root / "_privacy/audit").glob("*.json"))
    assert len(audits) == 1 and user not in audits[0].read_text()
    audit = json.loads(audits[0].read_text())
    assert audit["rows_removed"] == {
        "raw_events": raw_before.filter(is_user).height,
        "raw_events_quarantine": len(mine),
        "view_segments": segments_before.filter(is_user).height,
        "definition_exports": sum(removed_from[m] for m in DEFINITION_MANIFESTS),
        "on_demand_exports": sum(removed_from[m] for m in rewritten),
        "user_exports": user_export_rows,
    }
    regenerated = ["acme_raw:2026-10-01T00:00", "acme_raw:2026-10-01T01:00"]
    assert audit["exports_regenerated"] == regenerated
    assert sorted(audit["exports_rewritten"]) == sorted(f"managed:{m}" for m in rewritten)
    assert audit["user_exports_removed"] == [f"managed:{user_manifest}"]
    assert audit["not_reached"] == [
        f"export columns_task (managed:{TASK_MANIFEST.format('tasks/columns')}): "
        "its files have no user_id or viewer_identifier column",
        "output elsewhere: not managed (on-demand and user data exports there)",
        "landing files (the operator's to remove; the tombstone drops their records on ingest)",
        "copies of delivered files made by receivers",
    ]


@pytest.mark.servers  # whole Dagster jobs
def test_a_window_whose_export_is_running_is_named_not_regenerated(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run of the export started when erasure runs: its windows are left as they are (two
    runs of a window at once collide) and each is named in `not_reached`."""
    places = Places(tmp_path, "local", request, monkeypatch)
    user = busiest_user(places, "acme")
    for hour in ("2026-10-01-00:00", "2026-10-01-01:00"):
        assert places.run("export_acme_raw", partition_key=hour).success
    before = places.out.sha256s()
    running = dg.DagsterRun(
        job_name="export_acme_raw", status=dg.DagsterRunStatus.STARTED, tags={"export": "acme_raw"}
    )
    places.instance.add_run(running)
    result = places.run(
        "erase_user", {"ops": {"erase": {"config": {"tenant": "acme", "user_id": user}}}}
    )
    assert result.success
    assert places.out.sha256s() == before
    assert result.get_asset_observation_events() == []
    audit = json.loads(next((places.lake.root / "_privacy/audit").glob("*.json")).read_text())
    assert audit["exports_regenerated"] == [] and audit["rows_removed"]["definition_exports"] == 0
    # The user's events are in hour 1 only (see the test above): its window is named.
    assert audit["not_reached"] == [
        "export acme_raw 2026-10-01 01:00: a run of the export is in progress "
        "(erase again once it ends)",
        "output elsewhere: not managed (on-demand and user data exports there)",
        "landing files (the operator's to remove; the tombstone drops their records on ingest)",
        "copies of delivered files made by receivers",
    ]
