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

A burst (every output published at once) is spread over ticks: the hints become
*listings*, one per output and day of names (`plan_listings`), made oldest news first;
a tick makes at most its budget of them and keeps the others in the cursor's `backlog`.
While the backlog holds `MAX_BACKLOG` hints the sensor reads no further event: those wait
in the event log after the cursor (Dagster's pattern: the cursor stays at the last event
taken in hand), so the cursor stays small, nothing is dropped and no tick reads more than
one batch of events again.

The cursor keeps the storage id read per kind of event, the (key, time) pairs requested
in the last `SEEN_TTL` (two hints of one object launch one run), the backlog, and hints
whose output could not be read (`pending`: a bucket down, a missing variable), retried
every tick after the news, until `MAX_AGE`. Pure: no Dagster import.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
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
# Hints of outputs that could not be read kept for a later tick at most (an output down
# for a long time).
MAX_PENDING = 10_000
# Hints waiting for a tick's budget past which no further event is read (see above).
MAX_BACKLOG = 5_000
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
    pending: list[Hint] = field(default_factory=list)  # of outputs that could not be read
    backlog: list[Hint] = field(default_factory=list)  # not looked at yet: the budget was spent

    def serialize(self) -> str:
        return orjson.dumps(
            {
                "after": self.after,
                "seen": self.seen,
                "pending": [[h.export, h.key, h.since.timestamp()] for h in self.pending],
                "backlog": [[h.export, h.key, h.since.timestamp()] for h in self.backlog],
            }
        ).decode()

    @classmethod
    def parse(cls, text: str | None) -> DeliveryCursor:
        """The cursor; a fresh one for none or for the listing sensors' old cursor."""
        data = orjson.loads(text) if text else {}
        if "after" not in data:
            return cls()
        pending, backlog = (
            [Hint(e, k, datetime.fromtimestamp(t, UTC)) for e, k, t in data.get(name, [])]
            for name in ("pending", "backlog")
        )
        return cls(dict(data["after"]), dict(data["seen"]), pending, backlog)

    @property
    def first_tick(self) -> bool:
        return not self.after

    @property
    def backlog_full(self) -> bool:
        """Whether the backlog is long enough that no further event is read this tick."""
        return len(self.backlog) >= MAX_BACKLOG

    def carry(self, listings: Iterable[Listing]) -> None:
        """Keep the hints of listings not made this tick for the next: retries with the
        outputs that could not be read, news in the backlog."""
        for listing in listings:
            (self.pending if listing.retry else self.backlog).extend(listing.hints)

    def forget_before(self, now: datetime) -> None:
        """Drop requests older than SEEN_TTL and hints older than MAX_AGE."""
        limit = (now - SEEN_TTL).timestamp()
        self.seen = {k: t for k, t in self.seen.items() if t >= limit}
        self.pending = [h for h in self.pending if h.since >= now - MAX_AGE][-MAX_PENDING:]
        self.backlog = [h for h in self.backlog if h.since >= now - MAX_AGE]


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


def listing_prefix(key: str) -> str:
    """The prefix of a day of names that covers manifest key `key`: a run of 168 hourly
    windows is listed in 7 short requests, not 336."""
    folder, _, name = key.rpartition("/")
    return f"{folder}/{name[:_DAY]}" if folder else name[:_DAY]


@dataclass(frozen=True)
class Listing:
    """One listing request: a day of names in output `output`, for `hints`. `retry`: all
    of them are hints of an output that could not be read at an earlier tick."""

    output: str
    prefix: str
    hints: tuple[Hint, ...]
    retry: bool = False

    @property
    def oldest(self) -> datetime:
        return min(hint.since for hint in self.hints)


def plan_listings(
    news: Iterable[Hint], retried: Iterable[Hint], output_of: Mapping[str, str]
) -> list[Listing]:
    """The listings that cover the hints (`output_of`: export -> output), in the order a
    tick makes them: news before retries (an output that is down never takes the budget
    from the others), each oldest news first (a burst of others never starves one)."""
    news = list(news)
    fresh = {(hint.export, hint.key) for hint in news}
    grouped: dict[tuple[str, str], list[Hint]] = defaultdict(list)
    for hint in merge_hints([*news, *retried]):
        grouped[output_of[hint.export], listing_prefix(hint.key)].append(hint)
    listings = [
        Listing(output, prefix, tuple(hints), not any((h.export, h.key) in fresh for h in hints))
        for (output, prefix), hints in grouped.items()
    ]
    return sorted(listings, key=lambda item: (item.retry, item.oldest, item.output, item.prefix))


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
