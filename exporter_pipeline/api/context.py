"""What every route is given: the settings, the definitions store, the Dagster client and
who is asking (the tenant of the request's key)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from exporter_pipeline.api.dagster_client import DagsterClient
from exporter_pipeline.api.errors import ApiError
from exporter_pipeline.names import NAME_PATTERN, name_problem
from exporter_pipeline.settings import Settings
from exporter_pipeline.store.api_keys import authenticate
from exporter_pipeline.store.store import DefinitionsStore


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: DefinitionsStore
    dagster: DagsterClient

    def output_environ(self, **overrides: str) -> dict[str, str]:
        """The environment a tenant's output is opened with: the process's, with the
        API's own rule on private endpoints (`store.open_output` judges by it)."""
        allow = str(self.settings.webhook_allow_private).lower()
        return {**os.environ, "EXPORTER_WEBHOOK_ALLOW_PRIVATE": allow, **overrides}


@dataclass(frozen=True)
class Caller:
    """The tenant a request acts for, and the key it came with."""

    tenant: str
    key_id: int
    admin: bool


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


_bearer = HTTPBearer(auto_error=False, description="An API key: `exporter-pipeline api-keys`")


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    tenant: Annotated[
        str | None,
        Query(pattern=NAME_PATTERN, description="Admin keys only: the tenant to act for."),
    ] = None,
) -> Caller:
    """The caller of a request: 401 without a live key; an admin key acts for `?tenant=`
    (its own tenant when not given), any other key only for its own tenant."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "unauthorized", "an API key is needed: Authorization: Bearer <key>")
    key = authenticate(services(request).store.engine, credentials.credentials)
    if key is None:
        raise ApiError(401, "unauthorized", "the API key is not valid (unknown or revoked)")
    if tenant is None or tenant == key.tenant:
        return Caller(key.tenant, key.id, key.admin)
    if not key.admin:
        # A tenant key naming another tenant: as if that tenant had nothing.
        raise ApiError(
            403, "forbidden", "only an admin key may act for another tenant", parameter="tenant"
        )
    problem = name_problem(tenant)
    if problem:
        raise ApiError(422, "invalid_parameter", f"tenant {problem}", parameter="tenant")
    return Caller(tenant, key.id, True)


ServicesDep = Annotated[Services, Depends(services)]
CallerDep = Annotated[Caller, Depends(caller)]
