"""The envelope of single resources, as JSON:API puts them: `{"data": {...}}`, with
`"meta"` when a change says more than the resource (the reload of the code location).
Lists use `pagination.Page`; errors `errors.ErrorDocument`.

A change that alters what Dagster loads (an export created, replaced or removed) asks
the webserver to reload the tenant's code location before answering, so the new job and
schedule exist when the client reads the answer. No webserver answering is no failure:
the change is stored, and a location started later loads it.
"""

from __future__ import annotations

import logging
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from exporter_pipeline.api.dagster_client import location_for
from exporter_pipeline.settings import Settings
from exporter_pipeline.store.reload import reload_locations

log = logging.getLogger(__name__)

Item = TypeVar("Item")

NO_WEBSERVER = "not reloaded: no Dagster webserver answered (it loads the change when it starts)"
LOAD_FAILED = "reloaded, but the code location failed to load (the operator sees why)"


class Document(BaseModel, Generic[Item]):
    """One resource: `{"data": {...}}`."""

    data: Item


class ReloadMeta(BaseModel):
    location: str = Field(description="The code location holding the tenant's jobs.")
    reload: str = Field(
        description='"reloaded", or "not reloaded: ..." / "reloaded, but ..." saying why not.'
    )


class ChangeMeta(BaseModel):
    reload: ReloadMeta


class ChangedDocument(Document[Item], Generic[Item]):
    """A resource just changed: `{"data": {...}, "meta": {"reload": {...}}}`."""

    meta: ChangeMeta


# The header of an answer without a body (204) that carries the reload's outcome.
RELOAD_HEADER = "Exporter-Reload"


def reload_tenant(settings: Settings, tenant: str) -> ChangeMeta:
    """Reload the code location of `tenant` and say how it went, in words for a tenant:
    neither the webserver's address nor the location's error text (which may concern
    other tenants) is told; both are logged for the operator."""
    location = location_for(tenant, settings.api_shards)
    (line, *_rest) = reload_locations(settings.dagster_url, [location]) or [""]
    outcome = line.removeprefix(f"{location}: ")
    if outcome.startswith("no Dagster webserver answered"):
        outcome = NO_WEBSERVER
    elif outcome.startswith("reloaded, but"):
        log.warning("reloading %s for tenant %s: %s", location, tenant, outcome)
        outcome = LOAD_FAILED
    elif outcome != "reloaded":
        log.warning("reloading %s for tenant %s: %s", location, tenant, outcome)
        outcome = "not reloaded: the Dagster webserver refused (the operator sees why)"
    return ChangeMeta(reload=ReloadMeta(location=location, reload=outcome))
