"""Erasure over every place the product writes (issue 20, point 3), through the Dagster
jobs, with the managed output a local folder and a bucket on the moto S3 server: the
user's rows leave the lake's raw hours, its quarantine (a record with no tenant, a blank
tenant, a malformed line), its view segments, the definition export, every on-demand task
(CSV, gzipped JSON Lines, Parquet) and their own data export; everyone else's rows stay
byte for byte; manifests match their files again; the audit's counts equal what the test
counts itself, and `not_reached` names exactly what was left."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from exporter_pipeline_tests.privacy.places import OUTPUT_KINDS, TASKS, Places, busiest_user

TASK_MANIFEST = "{}/_manifests/2026-10-01-00-00_2026-10-01-02-00.json"


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


def assert_manifests_match_their_files(places: Places) -> None:
    for key in places.out.keys():
        if "/_manifests/" not in key:
            continue
        manifest = places.out.manifest(key)
        for entry in manifest["files"]:
            data = places.out.read(entry["key"])
            assert entry["sha256"] == hashlib.sha256(data).hexdigest(), entry["key"]
            assert entry["bytes"] == len(data), entry["key"]
            if not entry["key"].endswith("profile.jsonl"):
                assert entry["rows"] == places.out.frame(entry["key"]).height, entry["key"]
        assert manifest["rows"] == sum(f["rows"] for f in manifest["files"])


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
    for hour in ("2026-10-01-00:00", "2026-10-01-01:00"):
        assert places.run("export_acme_raw", partition_key=hour).success
    for name in TASKS:
        places.task(name)
    places.user_export(user, "gdpr/u")
    places.user_export(other, "gdpr/v")
    keys_before, sha_before = places.out.keys(), places.out.sha256s()
    is_user = (pl.col("tenant") == "acme") & (pl.col("user_id") == user)
    raw_before = places.lake_rows("raw_events")
    segments_before = places.lake_rows("view_segments")
    definition_files = [k for k in keys_before if k.startswith("raw/") and k.endswith(".csv")]
    in_definition = sum(user_rows(places, k, user) for k in definition_files)
    rewritten = ["parquet_task", "raw_task", "views_task"]
    frames_before = {
        k: places.out.frame(k)
        for name in rewritten
        for k in listed_files(places, TASK_MANIFEST.format(TASKS[name]["path"]))
    }
    in_tasks = {
        name: sum(
            user_rows(places, k, user)
            for k in listed_files(places, TASK_MANIFEST.format(TASKS[name]["path"]))
        )
        for name in rewritten
    }
    assert all(in_tasks.values()) and in_definition and raw_before.filter(is_user).height
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
    assert keys_after == [k for k in keys_before if k not in gone]
    assert len(gone) == 4  # profile, events, views, manifest
    sha_after = places.out.sha256s()
    for key in keys_after:
        if key.startswith(("gdpr/v/", "tasks/columns/", "tasks/globex/")):
            assert sha_after[key] == sha_before[key], key
    for key, before in frames_before.items():
        after = places.out.frame(key)
        assert after.equals(before.filter(~of_user(before, user))), key
    for key in definition_files:
        assert user_rows(places, key, user) == 0
        assert places.out.frame(key).filter(pl.col("tenant") == "acme").height > 0
    assert_manifests_match_their_files(places)

    audits = sorted((places.lake.root / "_privacy/audit").glob("*.json"))
    assert len(audits) == 1 and user not in audits[0].read_text()
    audit = json.loads(audits[0].read_text())
    assert audit["rows_removed"] == {
        "raw_events": raw_before.filter(is_user).height,
        "raw_events_quarantine": len(mine),
        "view_segments": segments_before.filter(is_user).height,
        "definition_exports": in_definition,
        "on_demand_exports": sum(in_tasks.values()),
        "user_exports": user_export_rows,
    }
    regenerated = ["acme_raw:2026-10-01T00:00", "acme_raw:2026-10-01T01:00"]
    assert audit["exports_regenerated"] == regenerated
    assert sorted(audit["exports_rewritten"]) == [
        f"managed:{TASK_MANIFEST.format(TASKS[name]['path'])}" for name in rewritten
    ]
    assert audit["user_exports_removed"] == [f"managed:{user_manifest}"]
    assert audit["not_reached"] == [
        f"export columns_task (managed:{TASK_MANIFEST.format('tasks/columns')}): "
        "its files have no user_id or viewer_identifier column",
        "output elsewhere: not managed (on-demand and user data exports there)",
        "landing files (kept until retention; the tombstone drops their records on ingest)",
        "copies of delivered files made by receivers",
    ]
