"""Which manifests are new since the last sensor tick: a cursor that survives restarts.

Object stores give second-precision (or coarser) modification times, many objects can
share one, and an upload that started earlier can appear later. So the cursor keeps a
watermark (newest time seen) and the (key, time) pairs seen within a look-back before
it; an object is new when its pair has not been seen. A manifest rewritten by a re-run
has a new time, so it is new again. Objects older than `max_age` on the first tick are
not delivered (their links would be about to expire).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

from exporter_pipeline.destinations import ObjectInfo

LOOKBACK = timedelta(minutes=10)
MAX_AGE = timedelta(days=7)


@dataclass
class ManifestCursor:
    watermark: datetime | None = None
    seen: set[str] = field(default_factory=set)

    def serialize(self) -> str:
        return orjson.dumps(
            {
                "watermark": self.watermark.isoformat() if self.watermark else None,
                "seen": sorted(self.seen),
            }
        ).decode()

    @classmethod
    def parse(cls, text: str | None) -> ManifestCursor:
        if not text:
            return cls()
        data = orjson.loads(text)
        watermark = datetime.fromisoformat(data["watermark"]) if data.get("watermark") else None
        return cls(watermark=watermark, seen=set(data.get("seen", [])))


def seen_id(info: ObjectInfo) -> str:
    return f"{info.key}@{info.modified.astimezone(UTC).isoformat()}"


def new_objects(
    listing: list[ObjectInfo], cursor: ManifestCursor, now: datetime, max_age: timedelta = MAX_AGE
) -> tuple[list[ObjectInfo], ManifestCursor]:
    """The objects not seen before (oldest first) and the cursor after them."""
    horizon = (cursor.watermark - LOOKBACK) if cursor.watermark else now - max_age
    fresh = [o for o in listing if o.modified >= horizon and seen_id(o) not in cursor.seen]
    fresh.sort(key=lambda o: (o.modified, o.key))
    times = [o.modified for o in listing]
    watermark = max([*times, cursor.watermark] if cursor.watermark else times, default=None)
    keep_from = (watermark - LOOKBACK) if watermark else None
    seen = {seen_id(o) for o in listing if keep_from is not None and o.modified >= keep_from}
    return fresh, ManifestCursor(watermark=watermark, seen=seen)
