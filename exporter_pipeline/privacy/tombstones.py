"""Tombstones: which (tenant, user) pairs were erased, without storing who they are.

A subject is `sha256(salt, tenant, user_id)`; the salt is random, made once per lake
and kept in the lake (`_privacy/salt`), so a subject cannot be looked up in a table of
hashed ids from elsewhere. Ingest drops every landing record whose subject is
tombstoned, before validation, so an erased user's late data reaches neither the lake
nor the quarantine.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Final

import orjson
import polars as pl

from exporter_pipeline.destinations import Destination

SALT_KEY: Final = "_privacy/salt"
TOMBSTONES_KEY: Final = "_privacy/tombstones.json"


def lake_salt(lake: Destination) -> bytes:
    try:
        return lake.get_bytes(SALT_KEY)
    except FileNotFoundError:
        salt = secrets.token_bytes(32)
        lake.put_bytes(salt, SALT_KEY)
        return salt


def subject_of(salt: bytes, tenant: str, user_id: str) -> str:
    return hashlib.sha256(salt + f"\x1f{tenant}\x1f{user_id}".encode()).hexdigest()


def load_tombstones(lake: Destination) -> set[str]:
    try:
        document = orjson.loads(lake.get_bytes(TOMBSTONES_KEY))
    except FileNotFoundError:
        return set()
    return {entry["subject"] for entry in document["tombstones"]}


def add_tombstone(lake: Destination, subject: str, request_id: str) -> None:
    try:
        document = orjson.loads(lake.get_bytes(TOMBSTONES_KEY))
    except FileNotFoundError:
        document = {"tombstones": []}
    if subject not in {e["subject"] for e in document["tombstones"]}:
        document["tombstones"].append(
            {
                "subject": subject,
                "request_id": request_id,
                "erased_at": datetime.now(UTC).isoformat(),
            }
        )
    lake.put_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2), TOMBSTONES_KEY)


def erased_pairs(
    frame: pl.LazyFrame,
    tombstones: set[str],
    salt: bytes,
    tenant: str = "tenant",
    user: str = "user_id",
) -> pl.DataFrame:
    """The distinct (tenant, user_id) values of `frame` that are tombstoned.

    Hashing runs over distinct pairs only, not over every row.
    """
    empty = pl.DataFrame(schema={tenant: pl.String, user: pl.String})
    if not tombstones:
        return empty
    pairs = (
        frame.select(
            pl.col(tenant).cast(pl.String).str.strip_chars(),
            pl.col(user).cast(pl.String).str.strip_chars(),
        )
        .drop_nulls()
        .unique()
        .collect()
    )
    erased = [(t, u) for t, u in pairs.iter_rows() if subject_of(salt, t, u) in tombstones]
    return (
        pl.DataFrame(erased, schema={tenant: pl.String, user: pl.String}, orient="row")
        if erased
        else empty
    )
