"""The tenants the definitions store knows: any that has an export, an output of its own
or an API key (revoked or not). Pure: no Dagster import."""

from __future__ import annotations

from sqlalchemy import CompoundSelect, Engine, select, union

from exporter_pipeline.store.models import ApiKeyRow, ExportRow, OutputRow


def knows_tenant(engine: Engine, tenant: str) -> bool:
    """Whether `tenant` has an export, an output or an API key in the store."""
    named: CompoundSelect[tuple[str]] = union(
        select(ExportRow.tenant).where(ExportRow.tenant == tenant),
        select(OutputRow.tenant).where(OutputRow.tenant == tenant),
        select(ApiKeyRow.tenant).where(ApiKeyRow.tenant == tenant),
    )
    with engine.connect() as connection:
        return connection.execute(select(named.subquery()).limit(1)).first() is not None
