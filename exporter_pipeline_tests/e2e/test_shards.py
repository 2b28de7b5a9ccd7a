"""Two shards end to end, as production runs them: each shard a `dagster code-server`
(EXPORTER_SHARD=0/2 and 1/2) started with the command `exporter-pipeline workspace
--shards 2` prints, the webserver and the daemon (`dagster dev -w`) on that workspace, the
instance and the definitions store on a throwaway PostgreSQL cluster, through GraphQL.

Two tenants on different shards, each with an hourly export delivering a signed webhook
to a real HTTP receiver on loopback. Each location lists only its own tenant's export
job, and only shard 0 defines `raw_events`. Landing files are ingested by shard 0's
`raw_events`; per shard: a launch of one partition and a backfill of two (with the raw
hours they read, so shard 1's export waits for shard 0's ingest across locations). The
exported rows are compared with an independent count of the landing files, the manifests
with the files, and each manifest is delivered once, by its own shard's sensor."""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import json
import os
import re
import shlex
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster_graphql.client.query import (
    LAUNCH_PARTITION_BACKFILL_MUTATION,
    LAUNCH_PIPELINE_EXECUTION_MUTATION,
)
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from exporter_pipeline.events.simulate import simulate
from exporter_pipeline.shards import shard_of
from exporter_pipeline_tests.delivery.conftest import Receiver
from exporter_pipeline_tests.e2e.conftest import Deployment, Postgres, start_dagster_dev
from exporter_pipeline_tests.e2e.test_dagster_dev import TERMINAL, wait_for
from exporter_pipeline_tests.servers import REPO, free_port, stop_group, wait_for_port

DAY = datetime(2026, 10, 1, tzinfo=UTC)
HOURS = 5  # landing hours 00:00 … 04:00 of DAY
# The first candidate of each shard of 2, computed as the code location computes it.
CANDIDATES = ["acme", "globex", "initech", "umbrella", "hooli"]
TENANTS = {k: next(t for t in CANDIDATES if shard_of(t, 2) == k) for k in (0, 1)}
SHARD_OF = {tenant: shard for shard, tenant in TENANTS.items()}
ISO = "%Y-%m-%dT%H:%M:%SZ"
# A webhook secret per tenant: a body verifies with its own tenant's secret only.
SECRETS = {
    k: "whsec_" + base64.b64encode(b"webhook secret of shard %d!!!!" % k).decode() for k in (0, 1)
}
LAUNCHED = 0  # each shard's export: a launch of 00:00, a backfill of two more hours
BACKFILLED = {0: (1, 2), 1: (3, 4)}
REPOSITORIES = """{ repositoriesOrError { ... on RepositoryConnection { nodes {
    name location { name } jobs { name } sensors { name }
    assetNodes { assetKey { path } isMaterializable } } } } }"""
ASSET = """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
    repository { location { name } }
    dependencies { asset { assetKey { path } repository { location { name } } } } } } }"""
BACKFILL = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status } } }"""
RUNS = """query($filter: RunsFilter) { runsOrError(filter: $filter) { ... on Runs { results {
    runId status startTime endTime tags { key value } assetSelection { path }
    repositoryOrigin { repositoryLocationName } } } } }"""


def export_name(shard: int) -> str:
    return f"{TENANTS[shard]}_hourly"


def partition(hour: int) -> str:
    return f"{DAY + timedelta(hours=hour):%Y-%m-%d-%H:%M}"


@dataclass
class Shards:
    dev: Deployment
    locations: dict[int, str]  # shard → code location name, from the workspace
    out: Path
    landing: Path


def consecutive_free_ports() -> int:
    """A port P with P+1 free too: the workspace command numbers shard k's port P+k."""
    for _ in range(50):
        port = free_port()
        with contextlib.suppress(OSError), socket.socket() as sock:
            sock.bind(("127.0.0.1", port + 1))
            return port
    raise RuntimeError("no two consecutive free ports")


def workspace(root: Path) -> dict[int, tuple[list[str], int, str]]:
    """Write the workspace the real command prints; per shard its code server's command
    (from the comment above its entry), port and location name."""
    command = [str(REPO / ".venv/bin/exporter-pipeline"), "workspace", "--shards", "2"]
    port = ["--port", str(consecutive_free_ports())]
    printed = subprocess.run([*command, *port], check=True, capture_output=True, text=True).stdout
    (root / "workspace.yaml").write_text(printed)
    entries = [e["grpc_server"] for e in yaml.safe_load(printed)["load_from"]]
    commands = re.findall(r"# EXPORTER_SHARD=(\d)/2 (dagster code-server start .*)", printed)
    assert len(entries) == len(commands) == 2, printed
    servers = {}
    for (shard, command), entry in zip(commands, entries, strict=True):
        argv = shlex.split(command)
        assert argv[argv.index("-p") + 1] == str(entry["port"]), printed
        assert argv[argv.index("--location-name") + 1] == entry["location_name"], printed
        servers[int(shard)] = (argv, entry["port"], entry["location_name"])
    return servers


@contextlib.contextmanager
def code_server(
    argv: list[str], port: int, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A shard's gRPC code server in a session of its own; its group, and the run workers
    it started, are killed whatever happens."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(REPO / ".venv/bin/dagster"), *argv[1:]],
            cwd=log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **env},
        )
        try:
            # The code is loaded before the server listens: a listening server is ready.
            wait_for_port(port, process, timeout=240)
            yield process
        finally:
            stop_group(process, grace=10)


def exports_file(root: Path, receiver: Receiver) -> dict[str, Any]:
    def export(shard: int) -> dict[str, Any]:
        hook = {"url": receiver.url, "secret_env": f"E2E_SHARD{shard}_SECRET"}
        return {
            "name": export_name(shard),
            "tenant": TENANTS[shard],
            "dataset": "raw",
            "format": "csv",
            "cadence": "hourly",
            "start": f"{DAY:{ISO}}",
            "end": f"{DAY + timedelta(hours=HOURS):{ISO}}",
            # One operator output for both: each shard's sensor watches only its own path.
            "output": {"name": "shared", "path": TENANTS[shard]},
            "delivery": {"webhook": {**hook, "backoff_seconds": 0.2}},
        }

    return {
        "outputs": {"shared": {"type": "local", "path": str(root / "out")}},
        "exports": [export(0), export(1)],
    }


@pytest.fixture
def shards(tmp_path: Path, receiver: Receiver, postgres: Postgres) -> Iterator[Shards]:
    landing = tmp_path / "landing"
    end = DAY + timedelta(hours=HOURS)
    simulate(landing, [*TENANTS.values()], DAY, end, 300, seed=14, duplicate_rate=0.05)
    (tmp_path / "exports.yaml").write_text(yaml.safe_dump(exports_file(tmp_path, receiver)))
    env = {
        "EXPORTER_LAKE_URL": str(tmp_path / "lake"),
        "EXPORTER_LANDING_URL": str(landing),
        "EXPORTER_EXPORTS_FILE": str(tmp_path / "exports.yaml"),
        # One store on PostgreSQL: both code servers find it empty and apply the file.
        "EXPORTER_DATABASE_URL": postgres.create_database("shards_store"),
        "EXPORTER_PARTITIONS_START": f"{DAY:%Y-%m-%d}",
        "EXPORTER_WEBHOOK_ALLOW_PRIVATE": "true",
        **{f"E2E_SHARD{k}_SECRET": secret for k, secret in SECRETS.items()},
    }
    servers = workspace(tmp_path)
    with contextlib.ExitStack() as stack:
        for shard, (argv, port, _) in sorted(servers.items()):
            shard_env = {**env, "EXPORTER_SHARD": f"{shard}/2"}  # else the same settings
            log = tmp_path / f"shard{shard}.log"
            stack.enter_context(code_server(argv, port, shard_env, log))
        for dev in start_dagster_dev(
            tmp_path, env, postgres, workspace=tmp_path / "workspace.yaml"
        ):
            locations = {shard: name for shard, (_, _, name) in servers.items()}
            yield Shards(dev, locations, tmp_path / "out", landing)


def launch(
    dev: Deployment, location: str, job: str, partition_key: str, assets: list[str] | None = None
) -> str:
    selector: dict[str, Any] = {
        "repositoryLocationName": location,
        "repositoryName": "__repository__",
    }
    if assets:  # an asset job's run of these assets only, as the UI's "Materialize"
        selector["assetSelection"] = [{"path": assets}]
    params = {
        "selector": {**selector, "jobName": job},
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition_key}]},
    }
    result = dev.graphql(LAUNCH_PIPELINE_EXECUTION_MUTATION, {"executionParams": params})
    assert result["launchPipelineExecution"]["__typename"] == "LaunchRunSuccess", result
    return str(result["launchPipelineExecution"]["run"]["runId"])


def backfill(dev: Deployment, assets: list[list[str]], hours: tuple[int, ...]) -> str:
    params = {
        "assetSelection": [{"path": path} for path in assets],
        "partitionNames": [partition(h) for h in hours],
        "fromFailure": False,
    }
    result = dev.graphql(LAUNCH_PARTITION_BACKFILL_MUTATION, {"backfillParams": params})
    assert result["launchPartitionBackfill"]["__typename"] == "LaunchBackfillSuccess", result
    return str(result["launchPartitionBackfill"]["backfillId"])


def backfills_done(dev: Deployment, ids: list[str]) -> bool:
    statuses = [dev.graphql(BACKFILL, {"id": i})["partitionBackfillOrError"]["status"] for i in ids]
    assert not {"FAILED", "CANCELED", "COMPLETED_FAILED"} & set(statuses), statuses
    return all(s in ("COMPLETED", "COMPLETED_SUCCESS") for s in statuses)


def asset_node(dev: Deployment, path: list[str]) -> dict[str, Any]:
    return dev.graphql(ASSET, {"key": {"path": path}})["assetNodeOrError"]  # type: ignore[no-any-return]


def check_locations(dev: Deployment, locations: dict[int, str]) -> None:
    """Each location holds its own tenant's export, job and delivery sensor; the lake's
    `raw_events` is shard 0's, and shard 1's export depends on it across locations."""
    nodes = dev.graphql(REPOSITORIES)["repositoriesOrError"]["nodes"]
    by_location = {n["location"]["name"]: n for n in nodes}
    assert sorted(by_location) == sorted(locations.values())
    for shard, location in locations.items():
        repository = by_location[location]
        jobs = {j["name"] for j in repository["jobs"]}
        # export_on_demand is every location's: it runs the location's own exports.
        exports = {j for j in jobs if j.startswith("export_")} - {"export_on_demand"}
        assert exports == {f"export_{export_name(shard)}"}
        assert "deliver_export" in jobs
        assert "deliver_manifests_sensor" in {s["name"] for s in repository["sensors"]}
        assets = [a for a in repository["assetNodes"] if a["isMaterializable"]]
        defined = {"/".join(a["assetKey"]["path"]) for a in assets}
        assert {a for a in defined if a.startswith("exports/")} == {f"exports/{export_name(shard)}"}
        assert ("raw_events" in defined) is (shard == 0), defined
    assert asset_node(dev, ["raw_events"])["repository"]["location"]["name"] == locations[0]
    for shard, location in locations.items():
        export = asset_node(dev, ["exports", export_name(shard)])
        assert export["repository"]["location"]["name"] == location
        parents = [
            (d["asset"]["assetKey"]["path"], d["asset"]["repository"]["location"]["name"])
            for d in export["dependencies"]
        ]
        assert parents == [(["raw_events"], locations[0])]


def landing_ids(landing: Path, tenant: str, hour: datetime) -> set[str]:
    """The tenant's distinct events of one landing hour, read without the ingest code."""
    folder = landing / f"dt={hour:%Y-%m-%d}" / f"hour={hour:%H}"
    records = [json.loads(line) for f in folder.glob("*.jsonl") for line in f.open()]
    return {r["event_id"] for r in records if r["tenant"] == tenant}


def check_window(shards: Shards, shard: int, hour: int, run_ids: set[str]) -> str:
    """The window's data file holds exactly the tenant's landing events of the hour, and
    its manifest describes that file; returns the manifest's key."""
    tenant = TENANTS[shard]
    start = DAY + timedelta(hours=hour)
    end = start + timedelta(hours=1)
    data_key = f"{tenant}/{start:%Y-%m-%d-%H-%M}.csv"
    data = shards.out / data_key
    with data.open(newline="") as text:
        rows = list(csv.DictReader(text))
    expected = landing_ids(shards.landing, tenant, start)
    assert len(rows) == len(expected) > 0
    assert {r["event_id"] for r in rows} == expected and {r["tenant"] for r in rows} == {tenant}
    manifest_key = f"{tenant}/_manifests/{start:%Y-%m-%d-%H-%M}_{end:%Y-%m-%d-%H-%M}.json"
    manifest = json.loads((shards.out / manifest_key).read_bytes())
    assert (manifest["export"], manifest["tenant"]) == (export_name(shard), tenant)
    assert manifest["window"] == {"start": f"{start:{ISO}}", "end": f"{end:{ISO}}"}
    assert manifest["rows"] == len(expected) and manifest["run_id"] in run_ids
    sha256 = hashlib.sha256(data.read_bytes()).hexdigest()
    file = {"key": data_key, "rows": len(expected), "bytes": data.stat().st_size, "sha256": sha256}
    assert manifest["files"] == [file]
    return manifest_key


def shard_runs(dev: Deployment, **filters: Any) -> list[dict[str, Any]]:
    """Runs with their code location and the assets they materialize."""
    found = dev.graphql(RUNS, {"filter": filters})["runsOrError"]["results"]
    for run in found:
        run["location"] = run.pop("repositoryOrigin")["repositoryLocationName"]
        run["assets"] = {"/".join(a["path"]) for a in run.pop("assetSelection") or []}
        run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
    return found  # type: ignore[no-any-return]


def ended(dev: Deployment, run_id: str) -> dict[str, Any] | None:
    """The run once it has ended, else None."""
    run = shard_runs(dev, runIds=[run_id])[0]
    return run if run["status"] in TERMINAL else None


def check_backfill(
    dev: Deployment, backfill_id: str, shard: int, locations: dict[int, str]
) -> set[str]:
    """The backfill's runs succeeded, and shard 0 ingested the raw hours before the
    export's own shard exported them. Returns the ids of the export's runs."""
    found = shard_runs(dev, tags=[{"key": "dagster/backfill", "value": backfill_id}])
    assert found and {r["status"] for r in found} == {"SUCCESS"}, found
    ingest = [r for r in found if r["assets"] == {"raw_events"}]
    export = [r for r in found if r["assets"] == {f"exports/{export_name(shard)}"}]
    assert ingest and export and len(ingest) + len(export) == len(found), found
    assert {r["location"] for r in ingest} == {locations[0]}
    assert {r["location"] for r in export} == {locations[shard]}
    assert max(r["endTime"] for r in ingest) <= min(r["startTime"] for r in export)
    return {r["runId"] for r in export}


def check_deliveries(shards: Shards, receiver: Receiver, manifests: dict[int, set[str]]) -> None:
    """One signed webhook per manifest, signed with its tenant's secret, sent by a
    delivery run of the tenant's own shard."""
    expected = sum(len(keys) for keys in manifests.values())
    wait_for(lambda: len(receiver.requests) >= expected, 180, f"{expected} webhooks")

    def delivered() -> list[dict[str, Any]]:
        found = shard_runs(shards.dev, pipelineName="deliver_export")
        done = len(found) >= expected and all(r["status"] in TERMINAL for r in found)
        return found if done else []

    deliveries = wait_for(delivered, 120, "the delivery runs to end")
    assert len(receiver.requests) == len(deliveries) == expected
    assert {r["status"] for r in deliveries} == {"SUCCESS"}
    for run in deliveries:
        shard = SHARD_OF[run["tags"]["tenant"]]
        assert run["location"] == shards.locations[shard]
        assert run["tags"]["export"] == export_name(shard)
    received: dict[int, set[str]] = {shard: set() for shard in TENANTS}
    for request in receiver.requests:
        body = json.loads(request.body)
        shard = SHARD_OF[body["tenant"]]
        assert Webhook(SECRETS[shard]).verify(request.body, request.headers) == body
        with pytest.raises(WebhookVerificationError):
            Webhook(SECRETS[1 - shard]).verify(request.body, request.headers)
        assert body["type"] == "export.ready" and body["export"] == export_name(shard)
        received[shard].add(body["manifest"])
    assert received == manifests


def test_two_shards_launch_backfill_and_deliver(shards: Shards, receiver: Receiver) -> None:
    dev, locations = shards.dev, shards.locations
    began = time.monotonic()
    check_locations(dev, locations)

    # Each shard backfills two hours of its export together with their ingest (shard 1's
    # across the two locations); shard 0 ingests the launched hour, then each shard
    # exports it.
    filled = {
        k: backfill(dev, [["raw_events"], ["exports", export_name(k)]], BACKFILLED[k])
        for k in TENANTS
    }
    ingest = launch(dev, locations[0], "__ASSET_JOB", partition(LAUNCHED), ["raw_events"])
    ingested = wait_for(lambda: ended(dev, ingest), 180, "the ingest of the launched hour")
    assert ingested["status"] == "SUCCESS" and ingested["assets"] == {"raw_events"}
    launched = {
        k: launch(dev, locations[k], f"export_{export_name(k)}", partition(LAUNCHED))
        for k in TENANTS
    }

    def finished() -> bool:
        runs_ended = all(ended(dev, run_id) for run_id in launched.values())
        return runs_ended and backfills_done(dev, list(filled.values()))

    wait_for(finished, 300, "the launches and the backfills")
    manifests: dict[int, set[str]] = {}
    for shard, tenant in TENANTS.items():
        launch_run = ended(dev, launched[shard])
        assert launch_run is not None
        assert (launch_run["status"], launch_run["location"]) == ("SUCCESS", locations[shard])
        run_ids = {launched[shard], *check_backfill(dev, filled[shard], shard, locations)}
        hours = (LAUNCHED, *BACKFILLED[shard])
        manifests[shard] = {check_window(shards, shard, h, run_ids) for h in hours}
        # Nothing else in the tenant's folder: no other tenant's hours, no stray files.
        written = {p.relative_to(shards.out).as_posix() for p in (shards.out / tenant).rglob("*.*")}
        data = {f"{tenant}/{DAY + timedelta(hours=h):%Y-%m-%d-%H-%M}.csv" for h in hours}
        assert written == data | manifests[shard]
    assert sorted(p.name for p in shards.out.iterdir()) == sorted(TENANTS.values())

    check_deliveries(shards, receiver, manifests)
    print(f"\ntwo shards: test body {time.monotonic() - began:.0f} s")
