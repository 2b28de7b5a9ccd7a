"""Privacy jobs of a sharded deployment (EXPORTER_SHARD=k/2), through the Dagster jobs on
a local lake and output: erasure launched in a location that does not hold the tenant is
refused before anything changes (the tenant's exports are in another location, so the
user would stay in them), and only shard 0's retention removes lake hours; each shard's
retention removes its own exports' files."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
import yaml

from exporter_pipeline.definitions import build_definitions
from exporter_pipeline.lake import hourly_key
from exporter_pipeline.settings import Settings
from exporter_pipeline.shards import shard_of
from exporter_pipeline_tests.exports.conftest import DAY, HOURS, Lake, build_lake

# The tenants of build_lake, one in each shard of 2.
SHARDS = {"acme": 0, "globex": 1}
HOUR = "2026-10-01-00:00"


def shard_definitions(root: Path, lake: Lake) -> dict[int, dg.Definitions]:
    exports = [
        {
            "name": f"{tenant}_raw",
            "tenant": tenant,
            "dataset": "raw",
            "format": "csv",
            "cadence": "hourly",
            "start": "2026-10-01T00:00:00Z",
            "output": {"name": "managed", "path": tenant},
        }
        for tenant in SHARDS
    ]
    outputs = {"managed": {"type": "local", "path": str(root / "out")}}
    (root / "exports.yaml").write_text(yaml.safe_dump({"outputs": outputs, "exports": exports}))
    env = {
        "EXPORTER_LAKE_URL": str(lake.root),
        "EXPORTER_LANDING_URL": str(root / "data" / "landing"),
        "EXPORTER_EXPORTS_FILE": str(root / "exports.yaml"),
        "EXPORTER_PARTITIONS_START": "2026-09-01",
    }
    return {
        k: build_definitions(Settings.from_env({**env, "EXPORTER_SHARD": f"{k}/2"})) for k in (0, 1)
    }


def run(defs: dg.Definitions, job: str, **kwargs: Any) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(job).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, **kwargs
    )


def sha256s(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.servers  # whole Dagster jobs (execute_in_process)
def test_erasure_is_refused_by_a_shard_that_does_not_hold_the_tenant(tmp_path: Path) -> None:
    assert {t: shard_of(t, 2) for t in SHARDS} == SHARDS
    lake = build_lake(tmp_path / "data", events_per_hour=400, hours=1)
    shards = shard_definitions(tmp_path, lake)
    assert run(shards[0], "export_acme_raw", partition_key=HOUR).success
    exported = tmp_path / "out/acme/2026-10-01-00-00.csv"
    raw = pl.read_parquet(lake.files("raw_events")[0])
    user = raw.filter(pl.col("tenant") == "acme")["user_id"].drop_nulls().mode().sort()[0]
    assert user in exported.read_text()
    before = sha256s(tmp_path)
    config = {"ops": {"erase": {"config": {"tenant": "acme", "user_id": user}}}}

    # Shard 1 does not hold acme: nothing is erased, not even from the lake.
    refused = run(shards[1], "erase_user", run_config=config)
    assert not refused.success
    failure = refused.failure_data_for_node("erase")
    assert failure is not None and failure.error is not None
    assert (
        "erase_user not run: tenant 'acme' belongs to shard 0/2 (code location "
        "exporter_pipeline_shard_0_of_2), not to this location's shard 1/2: launch it in "
        "exporter_pipeline_shard_0_of_2, which holds the tenant's exports"
    ) in failure.error.message
    assert sha256s(tmp_path) == before

    # Acme's own shard erases the user from the lake and from acme's export.
    erased = run(shards[0], "erase_user", run_config=config)
    assert erased.success
    assert erased.output_for_node("erase")["audit"]
    # The regenerated file holds other bytes, so it has a versioned name (a name never
    # changes content); the manifest lists only it, and the old file is gone.
    manifest = json.loads(
        (tmp_path / "out/acme/_manifests/2026-10-01-00-00_2026-10-01-01-00.json").read_text()
    )
    [regenerated] = [tmp_path / "out" / f["key"] for f in manifest["files"]]
    assert regenerated.name.startswith("2026-10-01-00-00.") and not exported.exists()
    assert user not in regenerated.read_text() and "acme" in regenerated.read_text()


@pytest.mark.servers  # whole Dagster jobs (execute_in_process)
def test_only_shard_0_removes_lake_hours_each_shard_its_exports_files(tmp_path: Path) -> None:
    lake = build_lake(tmp_path / "data", events_per_hour=200)
    shards = shard_definitions(tmp_path, lake)
    for tenant, shard in SHARDS.items():
        assert run(shards[shard], f"export_{tenant}_raw", partition_key=HOUR).success
    now = DAY + timedelta(days=90, hours=1, minutes=30)
    stamp = (now - timedelta(days=8)).timestamp()
    for path in (tmp_path / "out").rglob("*"):
        os.utime(path, (stamp, stamp))

    plans = {}
    for shard, defs in shards.items():
        dry_run = {"dry_run": True, "now": now.isoformat()}
        result = run(
            defs, "retention", run_config={"ops": {"apply_retention_op": {"config": dry_run}}}
        )
        assert result.success
        plans[shard] = result.output_for_node("apply_retention_op")
    expired = [hourly_key(d, HOURS[0]) for d in ("raw_events", "view_segments")]
    assert sorted(plans[0]["lake"]) == sorted(expired) and plans[1]["lake"] == []
    for tenant, shard in SHARDS.items():
        assert plans[shard]["exports"] == {
            "managed": [
                f"{tenant}/2026-10-01-00-00.csv",
                f"{tenant}/_manifests/2026-10-01-00-00_2026-10-01-01-00.json",
            ]
        }
