"""Privacy on a private lake and a managed local output, through the Dagster jobs: the
user data export holds exactly the user's rows (checked with DuckDB); erasure leaves no
trace of the user in raw, quarantine, derived or managed export files, keeps everyone
else's rows, and drops the user's late landing files; retention removes exactly what is
past its age, and a dry run removes nothing."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml

from exporter_pipeline.definitions import build_definitions
from exporter_pipeline.destinations import destination_from_url
from exporter_pipeline.events.ingest import ingest_hour
from exporter_pipeline.lake import hourly_key
from exporter_pipeline.settings import Settings
from exporter_pipeline_tests.exports.conftest import DAY, HOURS, build_lake


class Privacy:
    def __init__(self, root: Path) -> None:
        self.lake = build_lake(root / "data", events_per_hour=800, hours=2)
        self.landing = root / "data" / "landing"
        self.out = root / "out"
        (root / "exports.yaml").write_text(
            yaml.safe_dump(
                {
                    "outputs": {"managed": {"type": "local", "path": str(self.out)}},
                    "exports": [
                        {
                            "name": "acme_raw",
                            "tenant": "acme",
                            "dataset": "raw",
                            "format": "csv",
                            "cadence": "hourly",
                            "start": "2026-10-01T00:00:00Z",
                            "output": {"name": "managed", "path": "raw"},
                        }
                    ],
                }
            )
        )
        self.defs = build_definitions(
            Settings.from_env(
                {
                    "EXPORTER_LAKE_URL": str(self.lake.root),
                    "EXPORTER_LANDING_URL": str(self.landing),
                    "EXPORTER_EXPORTS_FILE": str(root / "exports.yaml"),
                    "EXPORTER_PARTITIONS_START": "2026-09-01",
                }
            )
        )
        self.instance = dg.DagsterInstance.ephemeral()

    def run(
        self, job: str, config: dict[str, Any] | None = None, **kwargs: Any
    ) -> dg.ExecuteInProcessResult:
        return self.defs.resolve_job_def(job).execute_in_process(
            instance=self.instance, run_config=config or {}, **kwargs
        )

    def raw(self) -> str:
        return f"read_parquet({self.lake.files('raw_events')}, hive_partitioning=false)"


def busiest_user(privacy: Privacy, tenant: str) -> str:
    """The user of `tenant` with the most events in the first hour (so also in its export)."""
    first_hour = f"read_parquet('{privacy.lake.files('raw_events')[0]}')"
    return duckdb.sql(
        f"select user_id from {first_hour} where tenant = '{tenant}' and "
        "user_id is not null group by 1 order by count(*) desc, 1 limit 1"
    ).fetchall()[0][0]


@pytest.mark.servers  # whole Dagster jobs (execute_in_process)
def test_user_data_export_holds_exactly_the_users_rows(tmp_path: Path) -> None:
    privacy = Privacy(tmp_path)
    user = busiest_user(privacy, "acme")
    result = privacy.run(
        "user_data_export",
        {
            "ops": {
                "export_user_data": {
                    "config": {
                        "tenant": "acme",
                        "user_id": user,
                        "output": "managed",
                        "path": "gdpr/req-1",
                    }
                }
            }
        },
    )
    assert result.success
    folder = privacy.out / "gdpr/req-1"
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    expected = duckdb.sql(
        f"select event_id from {privacy.raw()} where tenant = 'acme' and "
        f"user_id = '{user}' order by event_time, event_id"
    ).fetchall()
    assert [e["event_id"] for e in events] == [row[0] for row in expected]
    assert {(e["tenant"], e["user_id"]) for e in events} == {("acme", user)}
    views = [json.loads(line) for line in (folder / "views.jsonl").read_text().splitlines()]
    assert views and {v["user_id"] for v in views} == {user}
    profile = json.loads((folder / "profile.jsonl").read_text())
    assert profile["events"] == len(events) and profile["user_id"] == user
    devices = sorted({e["device_id"] for e in events})
    assert profile["device_ids"] == devices
    assert (
        profile["first_seen"]
        == min(
            datetime.fromisoformat(e["event_time"].replace("Z", "+00:00")) for e in events
        ).isoformat()
    )
    manifests = list((folder / "_manifests").glob("*.json"))
    assert len(manifests) == 1
    listed = [f["key"] for f in json.loads(manifests[0].read_text())["files"]]
    assert listed == [
        "gdpr/req-1/profile.jsonl",
        "gdpr/req-1/events.jsonl",
        "gdpr/req-1/views.jsonl",
    ]


def lake_text(privacy: Privacy, dataset: str) -> pl.DataFrame:
    files = [privacy.lake.root / hourly_key(dataset, h) for h in HOURS]
    return pl.concat([pl.read_parquet(f) for f in files if f.exists()], how="diagonal")


def quarantine_text(privacy: Privacy) -> str:
    """Every quarantined record of the lake as one text ("" when none is left)."""
    files = [privacy.lake.root / hourly_key("raw_events_quarantine", h) for h in HOURS]
    return "\n".join(
        pl.read_parquet(f)["record"].str.join("\n").item() for f in files if f.exists()
    )


@pytest.mark.servers  # whole Dagster jobs (execute_in_process)
def test_erasure_removes_the_user_everywhere_we_manage(tmp_path: Path) -> None:
    privacy = Privacy(tmp_path)
    user = busiest_user(privacy, "acme")
    # A malformed record of the user sits in quarantine; an export was delivered before.
    bad = {
        "event_id": "bad-1",
        "tenant": "acme",
        "user_id": user,
        "event_type": "teleport",
        "event_time": "2026-10-01T00:10:00Z",
    }
    (privacy.landing / "dt=2026-10-01/hour=00/late.jsonl").write_text(json.dumps(bad) + "\n")
    landing = destination_from_url(str(privacy.landing))
    ingest_hour(HOURS[0], landing, privacy.lake.store)
    assert user in quarantine_text(privacy)
    assert privacy.run("export_acme_raw", partition_key="2026-10-01-00:00").success
    assert user in (privacy.out / "raw/2026-10-01-00-00.csv").read_text()
    holding = [
        f"{h:%Y-%m-%d-%H:%M}"
        for h, f in zip(HOURS, privacy.lake.files("raw_events"), strict=True)
        if pl.read_parquet(f).filter(pl.col("user_id") == user).height
    ]
    assert holding
    before = duckdb.sql(
        f"select tenant, user_id, count(*) from {privacy.raw()} group by all"
    ).fetchall()

    result = privacy.run(
        "erase_user",
        {"ops": {"erase": {"config": {"tenant": "acme", "user_id": user}}}},
        tags={"user": "dpo@acme.example"},
    )
    assert result.success

    raw = lake_text(privacy, "raw_events")
    assert raw.filter((pl.col("tenant") == "acme") & (pl.col("user_id") == user)).height == 0
    assert user not in quarantine_text(privacy)
    segments = lake_text(privacy, "view_segments")
    assert segments.filter(pl.col("user_id") == user).height == 0
    assert lake_text(privacy, "delivery_metrics")["played_ms"].sum() == raw["played_ms"].sum()
    # The regenerated file has new content, so a versioned name; the one that held the
    # user is gone, and the manifest lists only the new one.
    manifest = json.loads(
        (privacy.out / "raw/_manifests/2026-10-01-00-00_2026-10-01-01-00.json").read_text()
    )
    [regenerated] = [f["key"] for f in manifest["files"]]
    assert regenerated.startswith("raw/2026-10-01-00-00.") and regenerated.endswith(".csv")
    assert not (privacy.out / "raw/2026-10-01-00-00.csv").exists()
    exported = (privacy.out / regenerated).read_text()
    assert user not in exported and "acme" in exported
    after = duckdb.sql(
        f"select tenant, user_id, count(*) from {privacy.raw()} group by all"
    ).fetchall()
    assert sorted(after, key=str) == sorted((r for r in before if r[:2] != ("acme", user)), key=str)

    audits = list((privacy.lake.root / "_privacy/audit").glob("*.json"))
    assert len(audits) == 1
    audit_text = audits[0].read_text()
    assert user not in audit_text
    audit = json.loads(audit_text)
    assert audit["requested_by"] == "dpo@acme.example" and audit["tenant"] == "acme"
    assert audit["partitions"] == holding  # every hour that held the user, no other
    assert audit["rows_removed"]["raw_events_quarantine"] == 1
    assert audit["rows_removed"]["raw_events"] == sum(
        r[2] for r in before if r[:2] == ("acme", user)
    )
    assert audit["exports_regenerated"] == ["acme_raw:2026-10-01T00:00"]

    # Late data for the erased user is dropped at ingest, the rest still lands.
    late = [
        {**bad, "event_id": "late-user", "event_type": "heartbeat"},
        {**bad, "event_id": "late-other", "event_type": "heartbeat", "user_id": "someone"},
    ]
    (privacy.landing / "dt=2026-10-01/hour=01/later.jsonl").write_text(
        "\n".join(json.dumps({**r, "event_time": "2026-10-01T01:20:00Z"}) for r in late) + "\n"
    )
    report = ingest_hour(HOURS[1], landing, privacy.lake.store)
    assert report.erased > 0
    ids = set(lake_text(privacy, "raw_events")["event_id"])
    assert "late-other" in ids and "late-user" not in ids


@pytest.mark.servers  # whole Dagster jobs (execute_in_process)
def test_retention_removes_exactly_what_is_past_its_age(tmp_path: Path) -> None:
    privacy = Privacy(tmp_path)
    assert privacy.run("export_acme_raw", partition_key="2026-10-01-00:00").success
    assert privacy.run("export_acme_raw", partition_key="2026-10-01-01:00").success
    now = DAY + timedelta(days=90, hours=1, minutes=30)
    # The first hour's export files were written 8 days before `now`, the second's 6.
    for path in (privacy.out / "raw").rglob("*"):
        days = 8 if "2026-10-01-00-00" in path.name else 6
        stamp = (now - timedelta(days=days)).timestamp()
        os.utime(path, (stamp, stamp))

    def files() -> set[str]:
        lake = {
            p.relative_to(privacy.lake.root).as_posix()
            for p in privacy.lake.root.rglob("*.parquet")
        }
        return lake | {
            p.relative_to(privacy.out).as_posix() for p in privacy.out.rglob("*") if p.is_file()
        }

    everything = files()
    dry = privacy.run(
        "retention",
        {"ops": {"apply_retention_op": {"config": {"dry_run": True, "now": now.isoformat()}}}},
    )
    assert dry.success and files() == everything
    planned = dry.output_for_node("apply_retention_op")
    expected_lake = [hourly_key(d, HOURS[0]) for d in ("raw_events", "view_segments")]
    assert sorted(planned["lake"]) == sorted(expected_lake)
    assert planned["exports"] == {
        "managed": [
            "raw/2026-10-01-00-00.csv",
            "raw/_manifests/2026-10-01-00-00_2026-10-01-01-00.json",
        ]
    }

    assert privacy.run(
        "retention", {"ops": {"apply_retention_op": {"config": {"now": now.isoformat()}}}}
    ).success
    gone = everything - files()
    assert gone == set(expected_lake) | {
        "raw/2026-10-01-00-00.csv",
        "raw/_manifests/2026-10-01-00-00_2026-10-01-01-00.json",
    }
    # Aggregates stay two years; the second hour of raw data is not yet 90 days old.
    assert hourly_key("delivery_metrics", HOURS[0]) in files()
    assert hourly_key("raw_events", HOURS[1]) in files()
