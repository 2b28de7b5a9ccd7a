"""A running deployment for end-to-end tests: `dagster dev` (webserver + daemon) on a free
port with a temporary DAGSTER_HOME, on SQLite or on a throwaway PostgreSQL cluster, on the
project's workspace.yaml or another one (the shards' gRPC code servers)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from exporter_pipeline_tests.servers import (  # Postgres: the shared fixture's value
    REPO,
    Postgres,
    free_port,
    stop_group,
    wait_for_port,
)


@dataclass
class Deployment:
    url: str
    home: Path
    root: Path

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
        )
        # The webserver logs no traceback for a failed query: its answer carries it.
        assert answer.ok, f"{answer.status_code} from {answer.url}: {answer.text[:4000]}"
        body = answer.json()
        assert "errors" not in body, body["errors"]
        return body["data"]  # type: ignore[no-any-return]


def instance_yaml(
    home: Path, postgres: Postgres | None, overrides: dict[str, Any] | None = None
) -> None:
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    config.update(overrides or {})  # whole top-level sections, e.g. shorter run_monitoring
    # Short intervals so a test sees sensors and backfills move within seconds.
    config["sensors"] = {"use_threads": True, "num_workers": 2}
    if postgres is not None:
        # A database per deployment: the session's cluster serves every PostgreSQL
        # deployment of a worker, and one test must never count another's runs.
        database = f"dagster_{uuid.uuid4().hex[:12]}"
        postgres.create_database(database)
        config["storage"] = {
            "postgres": {
                "postgres_db": {
                    "scheme": "postgresql+psycopg2",
                    "hostname": "127.0.0.1",
                    "port": postgres.port,
                    "db_name": database,
                    "username": postgres.user,
                    "password": "unused",
                }
            }
        }
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))


def start_dagster_dev(
    root: Path,
    env: dict[str, str],
    postgres: Postgres | None,
    instance: dict[str, Any] | None = None,
    workspace: Path = REPO / "workspace.yaml",
) -> Iterator[Deployment]:
    home = root / "dagster_home"
    home.mkdir()
    instance_yaml(home, postgres, instance)
    port = free_port()
    log = open(root / "dagster-dev.log", "wb")
    process = subprocess.Popen(
        [
            str(REPO / ".venv" / "bin" / "dagster"),
            "dev",
            "-w",
            str(workspace),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # Webhook receivers of the tests listen on 127.0.0.1.
        env={
            **os.environ,
            "EXPORTER_WEBHOOK_ALLOW_PRIVATE": "true",
            **env,
            "DAGSTER_HOME": str(home),
        },
    )
    try:
        wait_for_port(port, process, timeout=180)
        deployment = Deployment(f"http://127.0.0.1:{port}", home, root)
        _wait_for_code_location(deployment, process)
        yield deployment
    finally:
        stop_group(process)
        log.close()
        # Nothing of the deployment is left running: its process group is gone, and so is
        # any process that left the group (code servers start their own sessions) but
        # still names this deployment's DAGSTER_HOME.
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            pass
        else:
            raise AssertionError("dagster dev left processes behind")
        deadline = time.monotonic() + 15  # they stop when their heartbeat stops
        while _processes_mentioning(str(home)) and time.monotonic() < deadline:
            time.sleep(0.5)
        for pid in _processes_mentioning(str(home)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        left = _processes_mentioning(str(home))
        assert not left, f"dagster dev left processes behind: {left}"


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command:
            found.append(int(entry.name))
    return found


def _wait_for_code_location(deployment: Deployment, process: subprocess.Popen[bytes]) -> None:
    query = """{ workspaceOrError { ... on Workspace { locationEntries {
        name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, "dagster dev exited"
        try:
            entries = deployment.graphql(query)["workspaceOrError"]["locationEntries"]
        except (requests.RequestException, AssertionError):
            entries = []
        # Every location of the workspace (one, or one per shard) must have loaded.
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            for entry in entries:
                loaded = entry["locationOrLoadError"]
                assert loaded["__typename"] == "RepositoryLocation", (entry["name"], loaded)
            return
        time.sleep(1)
    raise TimeoutError("the code locations did not load within 180 s")


from exporter_pipeline_tests.delivery.conftest import receiver  # noqa: E402, F401 (shared)

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1440,900",
    "--virtual-time-budget=20000",
]


def browser(url: str, out: Path, profile: Path) -> str:
    """Open `url` in headless Chromium: save a screenshot to `out`, return the rendered DOM."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("Chromium is not installed: `make test-servers` installs it")
    out.parent.mkdir(parents=True, exist_ok=True)
    common = [chromium, *CHROMIUM_FLAGS]
    subprocess.run(
        [*common, f"--user-data-dir={profile}-shot", f"--screenshot={out}", url],
        check=True,
        capture_output=True,
        timeout=120,
    )
    dom = subprocess.run(
        [*common, f"--user-data-dir={profile}-dom", "--dump-dom", url],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return dom.stdout.decode(errors="replace")
