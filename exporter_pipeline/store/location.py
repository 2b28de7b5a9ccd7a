"""What the code location loads: the store's definitions, leniently; the first load of an
empty store applies `EXPORTER_EXPORTS_FILE` (DESIGN.md), so a fresh clone and the demo
work with no extra step."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from sqlalchemy.exc import IntegrityError, OperationalError

from exporter_pipeline.exports.definitions_file import (
    DefinitionsFile,
    parse_definitions,
    read_definitions_document,
)
from exporter_pipeline.settings import Settings
from exporter_pipeline.store.store import DefinitionsStore, Tenants

log = logging.getLogger(__name__)


def seed_from_file(
    store: DefinitionsStore, path: Path, now: datetime | None = None
) -> DefinitionsFile | None:
    """Apply the file to the (empty) store as a lenient load reads it: what that load
    leaves out is not stored. The file's load, with its problems, or None without a file."""
    exists, document = read_definitions_document(path, missing_ok=True)
    if not exists:
        return None
    loaded = parse_definitions(document, path, now, lenient=True)
    try:
        changes = store.seed(document, loaded)
    # Another process loading the location (webserver, daemon, a code server) stored the
    # same file at the same moment: what it stored is what this load read.
    except (IntegrityError, OperationalError) as error:
        log.info("definitions store seeded by another process (%s)", type(error).__name__)
        return loaded
    log.info("the definitions store was empty: applied %s (%s)", path, changes.summary())
    return loaded


def load_definitions(
    settings: Settings | None = None, tenants: Tenants | None = None, now: datetime | None = None
) -> DefinitionsFile:
    """The definitions of the code location, leniently (a bad entry is left out and listed
    in `rejected`), of `tenants` only when given (a predicate or a set of names)."""
    settings = settings or Settings.from_env()
    store = DefinitionsStore.from_settings(settings)
    if store.is_empty():
        seeded = seed_from_file(store, Path(settings.exports_file), now)
        # The file's own load keeps its problems' words; a shard reads the store instead.
        if seeded is not None and tenants is None:
            return seeded
    return store.load(tenants, now)
