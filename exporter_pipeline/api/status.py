"""`exporter-pipeline status`: the operator's daily view of the exports, read through the
Dagster webserver's GraphQL API (the numbers the UI shows, from the same queries).

Per export: its last windows (the newest materialization or failure of each partition,
whichever run made it: a job run, a schedule's, a UI backfill's), the status of that run,
the window's rows and files (the observation the run logged for the window), the last
delivery run (`deliver_export`) and its answer, and the failed runs of the last 24 hours.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from exporter_pipeline.api.dagster_client import DagsterClient, DagsterError, tag_dict

DELIVERY_JOB = "deliver_export"
FAILURE_WINDOW_S = 24 * 3600
# Asset events read per export: enough for the last windows of a long range run.
EVENTS_READ = 500

ENTRIES = """metadataEntries { label __typename
    ... on IntMetadataEntry { intValue } ... on TextMetadataEntry { text } }"""

EXPORT_ASSETS = """
query Exports { assetsOrError(prefix: ["exports"]) { __typename
  ... on AssetConnection { nodes { key { path } definition { tags { key value } } } }
  ... on PythonError { message } } }
"""

ASSET_EVENTS = f"""
query Events($key: AssetKeyInput!, $limit: Int!, $after: String) {{
  assetOrError(assetKey: $key) {{ __typename ... on Asset {{
    windows: assetEventHistory(limit: $limit,
        eventTypeSelectors: [MATERIALIZATION, FAILED_TO_MATERIALIZE]) {{ results {{
      __typename
      ... on MaterializationEvent {{ partition runId timestamp }}
      ... on FailedToMaterializeEvent {{ partition runId timestamp }} }} }}
    failed: assetEventHistory(limit: $limit, afterTimestampMillis: $after,
        eventTypeSelectors: [FAILED_TO_MATERIALIZE]) {{ results {{
      ... on FailedToMaterializeEvent {{ runId }} }} }}
    assetObservations(limit: $limit) {{ partition runId {ENTRIES} }} }} }}
}}
"""

RUNS = """
query Runs($filter: RunsFilter, $limit: Int) { runsOrError(filter: $filter, limit: $limit) {
  __typename ... on Runs { results { runId status jobName creationTime tags { key value } } }
  ... on PythonError { message } } }
"""

OUTPUTS = f"""
query Outputs($runId: ID!) {{ logsForRun(runId: $runId) {{ __typename
  ... on EventConnection {{ events {{ __typename
    ... on ExecutionStepOutputEvent {{ {ENTRIES} }}
    ... on ExecutionStepFailureEvent {{ error {{ message }} }} }} }} }} }}
"""


@dataclass(frozen=True)
class Window:
    partition: str
    run_id: str
    status: str
    rows: int | None
    files: int | None
    timestamp: float


@dataclass(frozen=True)
class Delivery:
    run_id: str
    status: str
    created: float
    answer: str


@dataclass
class ExportStatus:
    name: str
    tenant: str
    windows: list[Window] = field(default_factory=list)
    delivery: Delivery | None = None
    failures_24h: int = 0


def _entries(event: dict[str, Any]) -> dict[str, Any]:
    found = {}
    for entry in event.get("metadataEntries") or []:
        found[entry["label"]] = entry.get("intValue", entry.get("text"))
    return found


def _runs(client: DagsterClient, run_filter: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    answer = client.graphql(RUNS, {"filter": run_filter, "limit": limit})["runsOrError"]
    if answer["__typename"] != "Runs":
        raise DagsterError(f"Dagster did not list runs: {answer.get('message')}")
    return list(answer["results"])


def export_names(
    client: DagsterClient, tenant: str | None, export: str | None
) -> list[tuple[str, str]]:
    """(export, tenant) of every export asset of the deployment, filtered, by name."""
    answer = client.graphql(EXPORT_ASSETS)["assetsOrError"]
    if answer["__typename"] != "AssetConnection":
        raise DagsterError(f"Dagster did not list the assets: {answer.get('message')}")
    found = []
    for node in answer["nodes"]:
        path, definition = node["key"]["path"], node.get("definition")
        if len(path) != 2 or definition is None:
            continue  # an asset of no loaded export (a left-out entry has no tenant tag)
        owner = tag_dict(definition).get("tenant")
        if owner and (tenant in (None, owner)) and (export in (None, path[1])):
            found.append((path[1], owner))
    return sorted(found)


def export_status(
    client: DagsterClient, name: str, tenant: str, last: int, now: float
) -> ExportStatus:
    """The status of export `name`: its `last` newest windows, delivery and failures."""
    since = str(int((now - FAILURE_WINDOW_S) * 1000))
    variables = {"key": {"path": ["exports", name]}, "limit": EVENTS_READ, "after": since}
    asset = client.graphql(ASSET_EVENTS, variables)["assetOrError"]
    status = ExportStatus(name, tenant)
    if asset["__typename"] != "Asset":
        return status  # never materialized
    counts = {(o["partition"], o["runId"]): _entries(o) for o in asset["assetObservations"]}
    newest: dict[str, dict[str, Any]] = {}
    for event in asset["windows"]["results"]:  # newest first
        newest.setdefault(event["partition"], event)
    events = sorted(newest.values(), key=lambda e: float(e["timestamp"]), reverse=True)[:last]
    run_ids = sorted({e["runId"] for e in events})
    # An empty runIds filter is no filter at all in Dagster's GraphQL: ask only for some.
    found = _runs(client, {"runIds": run_ids}, len(run_ids)) if run_ids else []
    statuses = {r["runId"]: r["status"] for r in found}
    for event in events:
        facts = counts.get((event["partition"], event["runId"]), {})
        status.windows.append(
            Window(
                partition=event["partition"],
                run_id=event["runId"],
                status=statuses.get(event["runId"], "UNKNOWN"),
                rows=facts.get("rows"),
                files=facts.get("files"),
                timestamp=float(event["timestamp"]) / 1000,
            )
        )
    status.failures_24h = len(_failed_runs(client, name, asset, now))
    status.delivery = last_delivery(client, name)
    return status


def _failed_runs(client: DagsterClient, name: str, asset: dict[str, Any], now: float) -> set[str]:
    """Failed runs of the last 24 h: the export's own (tagged) and any run that failed
    to materialize one of its windows (a UI backfill's carries no export tag)."""
    run_filter = {
        "statuses": ["FAILURE"],
        "createdAfter": now - FAILURE_WINDOW_S,
        "tags": [{"key": "export", "value": name}],
    }
    tagged = {
        r["runId"] for r in _runs(client, run_filter, EVENTS_READ) if r["jobName"] != DELIVERY_JOB
    }
    return tagged | {e["runId"] for e in asset["failed"]["results"] if e.get("runId")}


def last_delivery(client: DagsterClient, name: str) -> Delivery | None:
    run_filter = {"pipelineName": DELIVERY_JOB, "tags": [{"key": "export", "value": name}]}
    found = _runs(client, run_filter, 1)
    if not found:
        return None
    run = found[0]
    logs = client.graphql(OUTPUTS, {"runId": run["runId"]})["logsForRun"]
    events = logs.get("events") or []
    return Delivery(run["runId"], run["status"], float(run["creationTime"]), _answer(events))


def _answer(events: list[dict[str, Any]]) -> str:
    """What the receiver answered, as the delivery step's output metadata says."""
    for event in events:
        if event["__typename"] == "ExecutionStepOutputEvent":
            facts = _entries(event)
            said = []
            if "webhook_status" in facts:
                said.append(
                    f"webhook {facts['webhook_status']} after {facts.get('webhook_attempts')} "
                    "attempt(s)"
                )
            if "emailed" in facts:
                said.append("emailed")
            return ", ".join(said) or "delivered"
    for event in reversed(events):
        if event["__typename"] == "ExecutionStepFailureEvent":
            return str(event["error"]["message"]).strip().splitlines()[0][:120]
    return "-"


def read_status(
    client: DagsterClient,
    tenant: str | None = None,
    export: str | None = None,
    last: int = 5,
    now: float | None = None,
) -> list[ExportStatus]:
    now = time.time() if now is None else now
    names = export_names(client, tenant, export)
    return [export_status(client, name, owner, last, now) for name, owner in names]


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(timestamp))


def status_lines(statuses: list[ExportStatus]) -> list[str]:
    """Plain tables: one per export (its windows), then its delivery and failures."""
    lines: list[str] = []
    for status in statuses:
        lines.append(f"export {status.name} (tenant {status.tenant})")
        lines.append(
            f"  {'window':<17} {'run':<8} {'status':<9} {'rows':>8} {'files':>5}  at (UTC)"
        )
        for w in status.windows:
            rows = "-" if w.rows is None else str(w.rows)
            files = "-" if w.files is None else str(w.files)
            lines.append(
                f"  {w.partition:<17} {w.run_id[:8]:<8} {w.status:<9} {rows:>8} {files:>5}"
                f"  {_when(w.timestamp)}"
            )
        if not status.windows:
            lines.append("  (no window exported yet)")
        d = status.delivery
        delivery = f"{d.run_id[:8]} {d.status} {_when(d.created)}: {d.answer}" if d else "none"
        lines.append(f"  last delivery: {delivery}")
        lines.append(f"  failed runs in the last 24 hours: {status.failures_24h}")
        lines.append("")
    return lines
