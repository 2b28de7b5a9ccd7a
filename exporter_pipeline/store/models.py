"""The definitions store's tables as SQLAlchemy 2 ORM models (DESIGN.md, Definitions store).

`outputs` holds each named output: its tenant (none: the operator's), its type, the keys
that are no secret as JSON (as the YAML writes them, `*_env` names included), and the
credentials stored through the store, Fernet-encrypted as one blob (`crypto.py`), their
names in clear beside it. `exports` holds each export definition as JSON, exactly the
YAML keys, with its tenant and output name beside it for queries, and the signing secret
of its webhook when the store holds it (`secret_stored: true`), Fernet-encrypted, never
in the definition. An export's output
must exist (a foreign key), so an output in use cannot be removed. Beside each row, for
the lookups of the rules across entries (`neighbours.py`): the Dagster name (`a-b` is
`a_b`), an output's place and an export's output path (`places.py`). `store_state` is
one row: whether the store was ever seeded (given definitions). The schema changes
only by a migration (`migrations/versions/`); a test checks the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Names are at most 63 characters (names.py); a little room for the type's name.
NAME = String(63)
# Lookups by prefix (`LIKE 'a/b/%'`) use these indexes on PostgreSQL whatever the
# database's collation; SQLite compares text bytewise and is asked for a range instead.
PREFIX_OPS = "text_pattern_ops"
# JSON text (not PostgreSQL's JSONB): it keeps the keys in the order they were written,
# so `definitions dump` gives them back as the operator wrote them.
JSON_DOCUMENT = JSON()


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    # Constraint names fixed by convention, so migrations can name them on every database.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_name)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class OutputRow(Base):
    __tablename__ = "outputs"
    __table_args__ = (Index("ix_outputs_place", "place", postgresql_ops={"place": PREFIX_OPS}),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(NAME, unique=True)
    tenant: Mapped[str | None] = mapped_column(NAME, index=True)
    type: Mapped[str] = mapped_column(String(16))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON_DOCUMENT)
    secrets: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Which credentials `secrets` holds (`secret_access_key`): names only, so a dump can
    # say they are set without the key.
    secret_names: Mapped[list[str] | None] = mapped_column(JSON_DOCUMENT)
    # Where it writes (`places.output_place`; None: judged by every lookup).
    place: Mapped[str | None] = mapped_column(Text)
    dagster_name: Mapped[str] = mapped_column(NAME, index=True, server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    def body(self) -> dict[str, Any]:
        return output_body(self.type, self.tenant, self.settings)


def output_body(kind: str, tenant: str | None, settings: dict[str, Any]) -> dict[str, Any]:
    """A stored output as its YAML keys: type, tenant if any, then the other keys."""
    return {"type": kind, **({} if tenant is None else {"tenant": tenant}), **settings}


class ExportRow(Base):
    __tablename__ = "exports"
    __table_args__ = (
        Index(
            "ix_exports_output_name_path",
            "output_name",
            "output_path",
            postgresql_ops={"output_path": PREFIX_OPS},
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(NAME, unique=True)
    tenant: Mapped[str] = mapped_column(NAME, index=True)
    output_name: Mapped[str] = mapped_column(
        NAME, ForeignKey("outputs.name", ondelete="RESTRICT"), index=True
    )
    definition: Mapped[dict[str, Any]] = mapped_column(JSON_DOCUMENT)
    # The webhook's `whsec_` secret as one Fernet token (`crypto.encrypt_webhook_secret`).
    webhook_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    dagster_name: Mapped[str] = mapped_column(NAME, index=True, server_default="")
    # Its output's path as its segments (`places.path_key`).
    output_path: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class ApiKeyRow(Base):
    """One key of the HTTP API: only its SHA-256 is kept (keys are 256 random bits, so a
    fast hash is enough), with the first characters to tell keys apart in `list`."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant: Mapped[str] = mapped_column(NAME, index=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    prefix: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StoreSecretRow(Base):
    """Secrets the service makes for itself (the key that signs the API's download URLs
    of local outputs), created once, on first use."""

    __tablename__ = "store_secrets"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# The id of `store_state`'s one row.
STATE_ROW = 1


class StoreStateRow(Base):
    """The store's own state, one row (`STATE_ROW`), made by its migration. `seeded_at`:
    when definitions first reached the store (seeded from EXPORTER_EXPORTS_FILE, applied,
    or written through the API); until then a load seeds it from that file, afterwards
    never again, even once it is emptied (`definitions apply --prune`)."""

    __tablename__ = "store_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    seeded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
