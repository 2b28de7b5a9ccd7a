"""Which manifests to deliver: hints from Dagster's event log, checked against the bucket.

A delivery sensor does not list every `_manifests/` folder each tick (that grew with
history and with tenants). It reads what happened since its cursor, by storage id: an
observation of `exports/<name>` naming a manifest or error file (an export run logs one
per window; a failure sensor logs one per error file it writes), and the end of a run
(success, failure, cancel: the windows it covered). Each is a *hint*: a key of one export
and the earliest modification time that can be new. The sensor then looks only at the
hinted keys in the bucket, so a tick costs O(new events), whatever the history or the
number of tenants. The bucket stays the truth: a hint whose key is not there launches
nothing, and a rewritten old window (a re-run) is hinted by the run that rewrote it.

The cursor keeps the storage id read per kind of event, the (key, time) pairs requested
in the last `SEEN_TTL` (two hints of one object launch one run), and hints whose output
could not be read (a bucket down, a missing variable), retried every tick until
`MAX_AGE`. Pure: no Dagster import.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

from exporter_pipeline.destinations import ObjectInfo

# A key requested this recently is not requested again by a second hint.
SEEN_TTL = timedelta(minutes=10)
# Older objects are not delivered (their links would be about to expire); on its first
# tick the sensor reads the events of this long ago.
MAX_AGE = timedelta(days=7)
# Clocks of Dagster's hosts and of the object store may differ by up to this much.
SKEW = timedelta(minutes=10)
# Hints kept for a later tick at most (an output down for a long time).
MAX_PENDING = 10_000
# Characters of `yyyy-MM-dd` at the start of a manifest's name: one listing per day.
_DAY = len("2026-10-01")


@dataclass(frozen=True)
class Hint:
    """A key of export `export` that may have been (re)written after `since`."""

    export: str
    key: str
    since: datetime


@dataclass
class DeliveryCursor:
    after: dict[str, int] = field(default_factory=dict)  # event kind -> last storage id
    seen: dict[str, float] = field(default_factory=dict)  # key@time -> requested at (epoch)
    pending: list[Hint] = field(default_factory=list)

    def serialize(self) -> str:
        return orjson.dumps(
            {
                "after": self.after,
                "seen": self.seen,
                "pending": [[h.export, h.key, h.since.timestamp()] for h in self.pending],
            }
        ).decode()

    @classmethod
    def parse(cls, text: str | None) -> DeliveryCursor:
        """The cursor; a fresh one for none or for the listing sensors' old cursor."""
        data = orjson.loads(text) if text else {}
        if "after" not in data:
            return cls()
        pending = [Hint(e, k, datetime.fromtimestamp(t, UTC)) for e, k, t in data["pending"]]
        return cls(dict(data["after"]), dict(data["seen"]), pending)

    @property
    def first_tick(self) -> bool:
        return not self.after

    def forget_before(self, now: datetime) -> None:
        """Drop requests older than SEEN_TTL and hints older than MAX_AGE."""
        limit = (now - SEEN_TTL).timestamp()
        self.seen = {k: t for k, t in self.seen.items() if t >= limit}
        self.pending = [h for h in self.pending if h.since >= now - MAX_AGE][-MAX_PENDING:]


def _moment(info: ObjectInfo) -> str:
    return info.modified.astimezone(UTC).isoformat()


def seen_id(export: str, info: ObjectInfo) -> str:
    return f"{export}:{info.key}@{_moment(info)}"


def run_key(export: str, info: ObjectInfo) -> str:
    """The delivery's run key: one run per manifest, modification time and export. One
    sensor serves every output, and two outputs may hold the same key: the export's name
    keeps their run keys apart (Dagster refuses a run key a second time per sensor)."""
    return f"{legacy_run_key(info)}#{export}"


def legacy_run_key(info: ObjectInfo) -> str:
    """The run key the per-output sensors gave (unique within one output only)."""
    return f"{info.key}#{_moment(info)}"


def listing_prefixes(keys: Iterable[str]) -> list[str]:
    """Prefixes that cover `keys` (manifest keys of one folder) with at most a day of
    names each: a run of 168 hourly windows is listed in 7 short requests, not 336."""
    prefixes = set()
    for key in keys:
        folder, _, name = key.rpartition("/")
        prefixes.add(f"{folder}/{name[:_DAY]}" if folder else name[:_DAY])
    return sorted(prefixes)


def merge_hints(hints: Iterable[Hint]) -> list[Hint]:
    """One hint per export and key, with the earliest time any of its hints gave."""
    merged: dict[tuple[str, str], Hint] = {}
    for hint in hints:
        known = merged.get((hint.export, hint.key))
        if known is None or hint.since < known.since:
            merged[hint.export, hint.key] = hint
    return list(merged.values())


def fresh_objects(
    found: Iterable[ObjectInfo], hints: Iterable[Hint], cursor: DeliveryCursor, now: datetime
) -> list[tuple[str, ObjectInfo]]:
    """(export, object) for each hinted object of one output to deliver, oldest first,
    each once: marked seen in `cursor`."""
    by_key = {hint.key: hint for hint in merge_hints(hints)}
    fresh = {}
    for info in found:
        hint = by_key.get(info.key)
        if hint is None or info.modified < max(hint.since, now - MAX_AGE):
            continue
        if (name := seen_id(hint.export, info)) not in cursor.seen:
            fresh[name] = (hint.export, info)
    for name in fresh:
        cursor.seen[name] = now.timestamp()
    return sorted(fresh.values(), key=lambda pair: (pair[1].modified, pair[1].key))
