"""Asking the Dagster webserver to reload the code location after the store changed, so
new jobs, schedules and sensors appear without a restart (GraphQL
`reloadRepositoryLocation`, the mutation the UI's "Reload" button sends)."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml

RELOAD = """
mutation Reload($location: String!) {
  reloadRepositoryLocation(repositoryLocationName: $location) {
    __typename
    ... on WorkspaceLocationEntry {
      locationOrLoadError { __typename ... on PythonError { message } }
    }
    ... on UnauthorizedError { message }
    ... on ReloadNotSupported { message }
    ... on RepositoryLocationNotFound { message }
    ... on PythonError { message }
  }
}
"""
DEFAULT_LOCATION = "exporter_pipeline"


def location_names(workspace: Path = Path("workspace.yaml")) -> list[str]:
    """The code locations `workspace` declares (each shard is one); the default name when
    there is no such file."""
    try:
        document = yaml.safe_load(workspace.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return [DEFAULT_LOCATION]
    names = []
    for entry in document.get("load_from") or []:
        for target in (entry or {}).values():
            if isinstance(target, dict) and target.get("location_name"):
                names.append(str(target["location_name"]))
    return names or [DEFAULT_LOCATION]


def reload_locations(url: str, names: list[str], timeout: float = 120.0) -> list[str]:
    """One line per location saying what happened; one line in all when no webserver
    answers at `url` (nothing to reload then: a server started later loads the store)."""
    lines = []
    with httpx.Client(base_url=url, timeout=timeout) as client:
        for name in names:
            try:
                answer = client.post(
                    "/graphql", json={"query": RELOAD, "variables": {"location": name}}
                )
                answer.raise_for_status()
            except httpx.TransportError:
                return [f"no Dagster webserver answered at {url}: nothing reloaded"]
            except httpx.HTTPStatusError as error:
                lines.append(f"{name}: not reloaded (HTTP {error.response.status_code})")
                continue
            lines.append(f"{name}: {_outcome(answer.json())}")
    return lines


def _outcome(body: dict[str, object]) -> str:
    data = body.get("data")
    result = data.get("reloadRepositoryLocation") if isinstance(data, dict) else None
    if not isinstance(result, dict):
        return f"not reloaded ({body.get('errors')})"
    if result.get("__typename") != "WorkspaceLocationEntry":
        return f"not reloaded: {result.get('__typename')}: {result.get('message', '')}".strip()
    loaded = result.get("locationOrLoadError") or {}
    if isinstance(loaded, dict) and loaded.get("__typename") == "PythonError":
        return f"reloaded, but it failed to load: {loaded.get('message', '').strip()}"
    return "reloaded"
