"""Shared fixtures: a real S3-compatible server (moto in server mode) and tmp landing/lake;
and the test tiers (`unit`, `servers`, `e2e`), given to every test at collection."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from exporter_pipeline_tests.cloud import CLOUD_SERVERS, CloudServer
from exporter_pipeline_tests.servers import (
    Postgres,
    free_port,
    moto_command,
    postgres_cluster,
    server_process,
)

# Fixtures that start a real server (a subprocess, or a socket served from a thread). A test
# needing one of them, directly or through another fixture, is in the `servers` tier.
SERVER_FIXTURES = frozenset(
    {
        "s3_server",  # moto in server mode
        "cloud_servers",  # moto, the GCS emulator and Azurite
        "private_cloud",  # one of those, started for a single test
        "receiver",  # the webhook receiver (delivery/conftest.py)
        "smtp_server",  # aiosmtpd (delivery/conftest.py)
        "servers",  # loopback HTTP(S) servers (hostile/test_webhooks.py)
        "postgres",  # a throwaway PostgreSQL cluster (below)
        "api_server",  # the HTTP API on uvicorn (api/conftest.py)
        "make_api",  # the same, started by the test
    }
)
TIERS = ("unit", "servers", "e2e")
E2E_FOLDER = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier, unless it carries one already: `e2e` under e2e/,
    `servers` when it uses a server fixture, `unit` otherwise. `item.fixturenames` is
    the whole closure, so a fixture that depends on a server fixture counts too.
    Fixtures requested at run time (`request.getfixturevalue`) are not in it: such a
    test marks itself (see destinations/test_destinations.py)."""
    for item in items:
        if any(item.get_closest_marker(tier) for tier in TIERS):
            continue
        if E2E_FOLDER in item.path.parents:
            item.add_marker(pytest.mark.e2e)
        elif SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.servers)
        else:
            item.add_marker(pytest.mark.unit)


class TierGuard:
    """A `unit` test that starts a server at run time, where the rule above cannot see it
    (`request.getfixturevalue`), is in the wrong tier: it fails with the fix rather than
    slowing the unit tier down. A plugin, not conftest hooks: those are not called for
    session-scoped fixtures, whose node is above this folder."""

    def __init__(self) -> None:
        self.item: pytest.Item | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> None:
        self.item = item

    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef[object]) -> None:
        item = self.item
        if (
            item is not None
            and fixturedef.argname in SERVER_FIXTURES
            and fixturedef.argname not in getattr(item, "fixturenames", ())
            and item.get_closest_marker("unit")
        ):
            pytest.fail(
                f"{item.nodeid} starts the server fixture {fixturedef.argname!r} at run "
                "time: mark it `servers`",
                pytrace=False,
            )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(TierGuard(), "exporter-tier-guard")


@pytest.fixture(autouse=True)
def definitions_store(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A definitions store of its own for every test (a fresh SQLite file): a test's
    definitions never meet another's, and its first load applies its exports file."""
    url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'exporter.sqlite3'}"
    monkeypatch.setenv("EXPORTER_DATABASE_URL", url)
    return url


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL cluster for the session (the e2e suite's instance storage,
    the definitions store's tests)."""
    try:
        with postgres_cluster() as cluster:
            yield cluster
    except RuntimeError as error:
        pytest.fail(str(error))


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key_id: str = "testing-key"
    secret_access_key: str = "testing-secret"
    region: str = "us-east-1"

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )

    def environment(self) -> dict[str, str]:
        """The standard AWS variables that point boto3 at this server."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def new_bucket(self) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with server_process(moto_command(port), port, log):
        yield S3Server(endpoint_url=f"http://127.0.0.1:{port}")


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """Point the process's standard AWS environment at the test server."""
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    path = tmp_path / "lake"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def cloud_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, CloudServer]]:
    """One running server of each cloud kind for the session (S3, GCS, Azure)."""
    servers: dict[str, CloudServer] = {}
    try:
        for kind, server_type in CLOUD_SERVERS.items():
            server = server_type(tmp_path_factory.mktemp(kind))
            server.start()
            servers[kind] = server
        environment = {k: v for s in servers.values() for k, v in s.environment().items()}
        saved = {k: os.environ.get(k) for k in environment}
        os.environ.update(environment)
        yield servers
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture
def private_cloud(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], CloudServer]]:
    """Start a server of a kind only for this test (it may be stopped and restarted)."""
    started: list[CloudServer] = []

    def start(kind: str) -> CloudServer:
        server = CLOUD_SERVERS[kind](tmp_path)
        server.start()
        for name, value in server.environment().items():
            monkeypatch.setenv(name, value)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
