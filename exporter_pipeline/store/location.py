"""What the code location loads: the store's definitions, leniently. The load of a store
that was never seeded applies `EXPORTER_EXPORTS_FILE` (DESIGN.md), so a fresh clone and
the demo work with no extra step; once seeded (by the file, or by any change) it is never
seeded again, even when emptied (`definitions apply --prune`)."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

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
    """Apply the file to a never-seeded store as a lenient load reads it: what that load
    leaves out is not stored. The file's load, with its problems, when this call seeded
    the store; None without a file, or when the store was seeded meanwhile (another
    process loading the location at the same moment). Any database error is raised."""
    exists, document = read_definitions_document(path, missing_ok=True)
    if not exists:
        return None
    loaded = parse_definitions(document, path, now, lenient=True)
    changes = store.seed(document, loaded)
    if changes is None:
        log.info("the definitions store was seeded meanwhile: %s not applied", path)
        return None
    log.info("the definitions store was never seeded: applied %s (%s)", path, changes.summary())
    return loaded


def load_definitions(
    settings: Settings | None = None, tenants: Tenants | None = None, now: datetime | None = None
) -> DefinitionsFile:
    """The definitions of the code location, leniently (a bad entry is left out and listed
    in `rejected`), of `tenants` only when given (a predicate or a set of names)."""
    settings = settings or Settings.from_env()
    store = DefinitionsStore.from_settings(settings)
    if not store.was_seeded():
        seeded = seed_from_file(store, Path(settings.exports_file), now)
        # The file's own load keeps its problems' words; a shard reads the store instead.
        if seeded is not None and tenants is None:
            return seeded
    return store.load(tenants, now)
