"""The FastAPI application of the HTTP API v1: one router per seed's part, JSON:API
errors, bearer keys. `exporter-pipeline api` serves it with uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from exporter_pipeline.api import (
    errors,
    executions,
    exports,
    files,
    metrics,
    openapi_document,
    outputs,
    tasks,
    views,
)
from exporter_pipeline.api.context import Services
from exporter_pipeline.api.dagster_client import DagsterClient
from exporter_pipeline.settings import Settings
from exporter_pipeline.store.store import DefinitionsStore

DESCRIPTION = """\
Tenants manage their outputs and export definitions, start and follow executions and
one-off export tasks, download the files, and query metrics, views and viewers.

Every request carries `Authorization: Bearer <key>` (`exporter-pipeline api-keys create
--tenant T`). A key reaches only its tenant's resources: another tenant's answer 404,
exactly like missing ones. Errors are JSON:API documents. Lists take `_page` and `_limit`.
"""


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """The API over `services` (built from `settings`, or the environment, by default)."""
    if services is None:
        settings = settings or Settings.from_env()
        services = Services(
            settings=settings,
            store=DefinitionsStore.from_settings(settings),
            dagster=DagsterClient(settings.dagster_url, settings.api_shards),
        )
    built = services

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        built.dagster.close()

    app = FastAPI(
        title="exporter_pipeline",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=errors.ERROR_RESPONSES,
    )
    app.state.services = built
    errors.install(app)
    openapi_document.install(app)
    for module in (outputs, exports, executions, tasks, files, metrics, views):
        app.include_router(module.router, prefix="/v1")
    return app
