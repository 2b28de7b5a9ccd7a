"""The HTTP API served for real: uvicorn on a free loopback port, from a thread, over a
definitions store on the test's own SQLite file. Clients are httpx clients with a key of
one tenant. Dagster is a `DagsterClient` pointed at `dagster_url` (nothing listens there
unless a test starts `dagster dev`; see e2e/test_api.py)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from exporter_pipeline.api.app import create_app
from exporter_pipeline.api.context import Services
from exporter_pipeline.api.dagster_client import DagsterClient
from exporter_pipeline.settings import Settings
from exporter_pipeline.store.api_keys import create_key
from exporter_pipeline.store.crypto import new_key
from exporter_pipeline.store.store import DefinitionsStore
from exporter_pipeline_tests.servers import free_port


@dataclass
class Api:
    url: str
    services: Services

    def key(self, tenant: str, *, admin: bool = False) -> str:
        return create_key(self.services.store.engine, tenant, admin=admin)[1]

    def client(self, tenant: str | None = None, *, key: str | None = None) -> httpx.Client:
        """A client with a new key of `tenant` (or `key`; no key at all when neither)."""
        if tenant is not None and key is None:
            key = self.key(tenant)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


def serve(app: object, port: int) -> Iterator[None]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")  # type: ignore[arg-type]  # an ASGI app
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {
            "EXPORTER_LANDING_URL": str(tmp_path / "landing"),
            "EXPORTER_LAKE_URL": str(tmp_path / "lake"),
            "EXPORTER_EXPORTS_FILE": str(tmp_path / "no-exports.yaml"),
            "EXPORTER_DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}",
            "EXPORTER_SECRET_KEY": new_key(),
            # Nothing listens there: routes that need Dagster answer 503 in this tier.
            "EXPORTER_DAGSTER_URL": f"http://127.0.0.1:{free_port()}",
        }
    )


@pytest.fixture
def make_api() -> Iterator[Callable[[Settings], Api]]:
    """Start an API over `settings` (several may run in one test)."""
    stops: list[Iterator[None]] = []

    def start(settings: Settings) -> Api:
        port = free_port()
        settings = Settings(**{**settings.__dict__, "api_url": f"http://127.0.0.1:{port}"})
        services = Services(
            settings=settings,
            store=DefinitionsStore.open(settings.database_url, settings.secret_key),
            dagster=DagsterClient(settings.dagster_url, settings.api_shards, timeout=5),
        )
        running = serve(create_app(services=services), port)
        next(running)
        stops.append(running)
        return Api(f"http://127.0.0.1:{port}", services)

    yield start
    for running in stops:
        next(running, None)


@pytest.fixture
def api_server(make_api: Callable[[Settings], Api], api_settings: Settings) -> Api:
    return make_api(api_settings)


@pytest.fixture
def defs_settings(api_settings: Settings, tmp_path: Path) -> Settings:
    """The API's settings for outputs and exports: tenants' local outputs under the test's
    folder; private addresses refused, as in production."""
    return dataclasses.replace(
        api_settings, api_local_root=str(tmp_path / "tenant-outputs"), webhook_allow_private=False
    )


@pytest.fixture
def defs_api(make_api: Callable[[Settings], Api], defs_settings: Settings) -> Api:
    return make_api(defs_settings)


@pytest.fixture
def private_api(make_api: Callable[[Settings], Api], defs_settings: Settings) -> Api:
    """An API that lets outputs reach loopback servers (moto), as the tests' setting does."""
    return make_api(dataclasses.replace(defs_settings, webhook_allow_private=True))
