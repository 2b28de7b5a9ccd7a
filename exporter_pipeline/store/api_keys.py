"""The HTTP API's keys (DESIGN.md, HTTP API v1): created, listed, revoked, checked.

A key is `ep_` and 43 characters of 256 random bits, shown once when it is created; the
store keeps its SHA-256 only (a slow hash adds nothing to a random key of that size) and
its first characters, so `api-keys list` can tell keys apart. Each key acts for one
tenant; an admin key may act for any tenant. Pure: no Dagster import.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.names import name_problem
from exporter_pipeline.store.models import ApiKeyRow, StoreSecretRow, utcnow

KEY_PREFIX = "ep_"
# Characters of a key kept in clear to tell keys apart: the prefix and 6 of 43 random.
SHOWN = len(KEY_PREFIX) + 6


@dataclass(frozen=True)
class ApiKey:
    id: int
    tenant: str
    admin: bool
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _as_key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(row.id, row.tenant, row.admin, row.prefix, row.created_at, row.revoked_at)


def create_key(engine: Engine, tenant: str, *, admin: bool = False) -> tuple[ApiKey, str]:
    """A new key for `tenant`: its record, and the key itself (never stored)."""
    problem = name_problem(tenant)
    if problem:
        raise DefinitionError(f"tenant {tenant!r} {problem}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        row = ApiKeyRow(
            tenant=tenant, admin=admin, prefix=key[:SHOWN], digest=_digest(key), created_at=utcnow()
        )
        session.add(row)
    return _as_key(row), key


def list_keys(engine: Engine, tenant: str | None = None) -> list[ApiKey]:
    query = select(ApiKeyRow).order_by(ApiKeyRow.id)
    if tenant is not None:
        query = query.where(ApiKeyRow.tenant == tenant)
    with engine.connect() as connection:
        return [_as_key(ApiKeyRow(**row._mapping)) for row in connection.execute(query)]


def revoke_key(engine: Engine, key_id: int) -> bool:
    """Revoke key `key_id`; False when there is no such key or it was revoked already."""
    with engine.begin() as connection:
        done = connection.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        return bool(done.rowcount)


def authenticate(engine: Engine, key: str) -> ApiKey | None:
    """The live key `key` is, or None (unknown, malformed or revoked)."""
    if not key.startswith(KEY_PREFIX) or len(key) > 128:
        return None
    digest = _digest(key)
    with engine.connect() as connection:
        row = connection.execute(select(ApiKeyRow).where(ApiKeyRow.digest == digest)).first()
    if row is None or row.revoked_at is not None:
        return None
    # The lookup was by digest; compare again in constant time, as a habit of secrets.
    if not hmac.compare_digest(row.digest, digest):
        return None
    return _as_key(ApiKeyRow(**row._mapping))


def service_secret(engine: Engine, name: str) -> str:
    """The service's own secret `name`, made (256 random bits) the first time it is asked
    for; two processes asking at once both get the one that was stored."""
    with engine.connect() as connection:
        value = connection.execute(
            select(StoreSecretRow.value).where(StoreSecretRow.name == name)
        ).scalar()
    if value is not None:
        return str(value)
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(StoreSecretRow).values(
                    name=name, value=secrets.token_urlsafe(32), created_at=utcnow()
                )
            )
    except IntegrityError:  # another process stored it first: read theirs
        pass
    with engine.connect() as connection:
        return str(
            connection.execute(
                select(StoreSecretRow.value).where(StoreSecretRow.name == name)
            ).scalar_one()
        )
