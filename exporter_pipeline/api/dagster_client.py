"""The Dagster webserver's GraphQL API, as the HTTP API uses it: launch a run, read runs,
terminate one (DESIGN.md: a run is the execution; the API never touches the instance's
tables). One `httpx.Client` per API process, its connections kept alive.

Which code location holds a tenant's jobs follows the shards (shards.py): one location,
`exporter_pipeline`, or `exporter_pipeline_shard_k_of_N` for the tenant's shard k.
"""

from __future__ import annotations

from typing import Any

import httpx

from exporter_pipeline.shards import Shard, shard_of

REPOSITORY = "__repository__"
SINGLE_LOCATION = "exporter_pipeline"

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message reason } }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on PresetNotFoundError { message }
    ... on ConflictingExecutionParamsError { message }
    ... on NoModeProvidedError { message }
    ... on RunConflict { message }
    ... on UnauthorizedError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { invalidOutputName }
  }
}
"""

RUN_FIELDS = """
  runId status jobName creationTime startTime endTime
  tags { key value }
"""


def runs_query(fields: str) -> str:
    return f"""
query Runs($filter: RunsFilter, $cursor: String, $limit: Int) {{
  runsOrError(filter: $filter, cursor: $cursor, limit: $limit) {{
    __typename
    ... on Runs {{ count results {{ {fields} }} }}
    ... on PythonError {{ message }}
    ... on InvalidPipelineRunsFilterError {{ message }}
  }}
}}
"""


RUNS = runs_query(RUN_FIELDS)
# An export task's request is its run config (the API reads it back, as JSON).
RUNS_WITH_CONFIG = runs_query(RUN_FIELDS + " runConfig")

LOGS = """
query Logs($runId: ID!, $cursor: String, $limit: Int) {
  logsForRun(runId: $runId, afterCursor: $cursor, limit: $limit) {
    __typename
    ... on EventConnection { cursor hasMore events { __typename ... on MessageEvent { message } } }
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
}
"""
# Events read per request of a run's log.
LOG_PAGE = 1000

TERMINATE = """
mutation Terminate($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunFailure { message }
    ... on RunNotFoundError { message }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}
"""


class DagsterError(Exception):
    """Dagster refused or could not be reached; the message says which, never a secret."""


class DagsterUnavailable(DagsterError):
    """The webserver did not answer (down, restarting, unreachable)."""


def location_for(tenant: str, shards: int) -> str:
    """The code location holding `tenant`'s jobs in a deployment of `shards` shards."""
    if shards <= 1:
        return SINGLE_LOCATION
    return Shard(shard_of(tenant, shards), shards).location_name


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def tag_dict(run: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run.get("tags") or []}


class DagsterClient:
    def __init__(self, url: str, shards: int = 1, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.shards = shards
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            answer = self._http.post("/graphql", json={"query": query, "variables": variables})
            answer.raise_for_status()
        except httpx.HTTPError as error:
            message = f"the Dagster webserver at {self.url} did not answer: {error}"
            raise DagsterUnavailable(message) from None
        try:
            body = answer.json()
        except ValueError:  # a proxy's HTML page, an empty answer
            kind = answer.headers.get("content-type", "no content type")
            raise DagsterError(f"{self.url}/graphql answered {kind}, not JSON") from None
        if not isinstance(body, dict):
            raise DagsterError(f"{self.url}/graphql answered JSON that is not an object")
        if body.get("errors"):
            errors = body["errors"]
            first = errors[0] if isinstance(errors, list) and errors else {}
            said = first.get("message") if isinstance(first, dict) else first
            raise DagsterError(f"Dagster refused the request: {said}")
        data = body.get("data")
        if not isinstance(data, dict):
            raise DagsterError(f"{self.url}/graphql answered no data")
        return data

    def launch(
        self, tenant: str, job: str, tags: dict[str, str], run_config: dict[str, Any] | None = None
    ) -> str:
        """Launch job `job` of `tenant`'s code location; its run id."""
        params = {
            "selector": {
                "repositoryLocationName": location_for(tenant, self.shards),
                "repositoryName": REPOSITORY,
                "jobName": job,
            },
            "runConfigData": run_config or {},
            "executionMetadata": {"tags": tag_list(tags)},
        }
        result = self.graphql(LAUNCH, {"params": params})["launchPipelineExecution"]
        if result["__typename"] == "LaunchRunSuccess":
            return str(result["run"]["runId"])
        reasons = [e.get("message", "") for e in result.get("errors") or []]
        message = "; ".join(reasons) or result.get("message") or result["__typename"]
        raise DagsterError(f"Dagster did not launch {job}: {message}")

    def runs(
        self,
        *,
        job: str | None = None,
        tags: dict[str, str] | None = None,
        run_ids: list[str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        with_config: bool = False,
    ) -> tuple[list[dict[str, Any]], int]:
        """The runs matching the filter, newest first, and how many match in all
        (`with_config`: each with its `runConfig`)."""
        run_filter: dict[str, Any] = {}
        if job is not None:
            run_filter["pipelineName"] = job
        if tags:
            run_filter["tags"] = tag_list(tags)
        if run_ids is not None:
            run_filter["runIds"] = run_ids
        query = RUNS_WITH_CONFIG if with_config else RUNS
        variables = {"filter": run_filter, "cursor": cursor, "limit": limit}
        result = self.graphql(query, variables)["runsOrError"]
        if result["__typename"] != "Runs":
            raise DagsterError(f"Dagster did not list runs: {result.get('message')}")
        return list(result["results"]), int(result["count"])

    def run(self, run_id: str, *, with_config: bool = False) -> dict[str, Any] | None:
        found, _count = self.runs(run_ids=[run_id], limit=1, with_config=with_config)
        return found[0] if found else None

    def messages(self, run_id: str) -> list[str]:
        """The messages of a run's log events, oldest first."""
        found: list[str] = []
        cursor = None
        while True:
            variables = {"runId": run_id, "cursor": cursor, "limit": LOG_PAGE}
            result = self.graphql(LOGS, variables)["logsForRun"]
            if result["__typename"] != "EventConnection":
                raise DagsterError(f"Dagster did not read the log of run {run_id}")
            found += [e["message"] for e in result["events"] if e.get("message")]
            if not result["hasMore"] or not result["events"]:
                return found
            cursor = result["cursor"]

    def terminate(self, run_id: str) -> None:
        result = self.graphql(TERMINATE, {"runId": run_id})["terminateRun"]
        if result["__typename"] != "TerminateRunSuccess":
            raise DagsterError(f"Dagster did not cancel run {run_id}: {result.get('message')}")
