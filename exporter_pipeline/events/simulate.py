"""A deterministic simulator of player and CDN events, written as landing files.

Sessions behave like real viewers: an impression, maybe a pre-roll ad, playStart,
progress every 10 s with http/p2p bytes at the current bitrate, pauses and resumes,
seeks, rebuffers, quality changes, heartbeats, and an end by completion, swipe, error
or by simply stopping (an unfinished view). The same arguments always write the same
bytes: every random choice comes from a generator seeded by (seed, tenant, hour).
"""

from __future__ import annotations

import gzip
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

import orjson
import polars as pl

from exporter_pipeline.events.schema import EVENT_COLUMNS, FLOAT_COLUMNS, INTEGER_COLUMNS
from exporter_pipeline.windows import hour_prefix

FORMATS: Final = ("jsonl", "jsonl.gz", "csv", "parquet")
RECORDS_PER_FILE: Final = 250_000

DEVICES: Final = (
    # device_type, browser, os, weight
    ("desktop", "Chrome", "Windows", 30),
    ("desktop", "Firefox", "Windows", 6),
    ("desktop", "Safari", "macOS", 10),
    ("desktop", "Edge", "Windows", 6),
    ("mobile", "Chrome", "Android", 20),
    ("mobile", "Safari", "iOS", 16),
    ("tablet", "Safari", "iPadOS", 5),
    ("tv", "WebKit", "tvOS", 4),
    ("tv", "Chrome", "Android TV", 3),
)
PLACES: Final = (
    ("US", "New York", 14),
    ("US", "Los Angeles", 10),
    ("DE", "Berlin", 9),
    ("DE", "Munich", 5),
    ("GB", "London", 9),
    ("FR", "Paris", 7),
    ("HU", "Budapest", 4),
    ("BR", "São Paulo", 6),
    ("JP", "Tokyo", 6),
    ("IN", "Mumbai", 5),
)
ISPS: Final = ("Comcast", "Deutsche Telekom", "BT", "Orange", "Vivo", "NTT", "Jio", "Verizon")
BITRATES_KBPS: Final = (800, 1500, 3000, 4500, 6000)
# Offsets collectors stamp on event_time: most are UTC, some local, some epoch ms.
OFFSETS: Final = (timedelta(0), timedelta(hours=2), timedelta(hours=-5), timedelta(hours=5.5))

MALFORMATIONS: Final = (
    "missing tenant",
    "unparseable event_time",
    "event_time outside partition hour",
    "negative http_bytes",
    "unknown event_type",
    "malformed JSON",
)


@dataclass(frozen=True)
class SimulationSummary:
    files: list[str]
    records: int
    malformed: int
    duplicates: int


def _weighted(rng: random.Random, items: tuple[tuple[Any, ...], ...]) -> tuple[Any, ...]:
    return rng.choices(items, weights=[item[-1] for item in items])[0]


def _time_text(rng: random.Random, moment: datetime) -> Any:
    style = rng.random()
    if style < 0.2:
        return int(moment.timestamp() * 1000)
    offset = OFFSETS[0] if style < 0.7 else rng.choice(OFFSETS)
    local = moment.astimezone(timezone(offset))
    text = local.isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z") if style < 0.45 else text


class _Session:
    """One viewer session: yields its events in time order until it ends or the hour does."""

    def __init__(self, rng: random.Random, tenant: str, hour: datetime) -> None:
        self.rng = rng
        self.tenant = tenant
        self.hour_end = hour + timedelta(hours=1)
        self.clock = hour + timedelta(seconds=rng.uniform(0, 3500))
        users = 400
        user_no = rng.randrange(users)
        # About one viewer in eight is anonymous: no user_id, only a device.
        self.user_id = None if user_no % 8 == 0 else f"{tenant}-user-{user_no:04d}"
        device_type, browser, os_name, _ = _weighted(rng, DEVICES)
        country, city, _ = _weighted(rng, PLACES)
        self.common = {
            "tenant": tenant,
            "license_key": f"lic-{tenant}-{user_no % 3}",
            "user_id": self.user_id,
            "session_id": uuid.UUID(int=rng.getrandbits(128), version=4).hex[:16],
            "device_id": f"dev-{tenant}-{user_no:04d}-{rng.randrange(2)}",
            "content_id": str(10_000 + rng.randrange(60)),
            "device_type": device_type,
            "browser": browser,
            "os": os_name,
            "country": country,
            "city": city,
            "isp": rng.choice(ISPS),
            "page": None if device_type == "tv" else f"https://{tenant}.example/watch",
        }
        self.common["content_type"] = (
            "live" if int(self.common["content_id"]) % 4 == 0 else ("recorded")
        )
        # Live viewers join at the live edge; recorded content starts at the beginning.
        self.position = rng.uniform(0, 7200) if self.common["content_type"] == "live" else 0.0
        self.bitrate = rng.choice(BITRATES_KBPS)
        self.p2p_share = rng.choice((0.0, 0.3, 0.6))

    def _event(self, event_type: str, **fields: Any) -> dict[str, Any]:
        record = {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "event_type": event_type,
            "event_time": self.clock,
            "position_s": round(self.position, 3),
            "bitrate_kbps": self.bitrate,
            "http_bytes": 0,
            "p2p_bytes": 0,
            "played_ms": 0,
            "rebuffered_ms": 0,
            "data": None,
            **self.common,
            **fields,
        }
        return record

    def _advance(self, seconds: float) -> bool:
        self.clock += timedelta(seconds=seconds)
        return self.clock < self.hour_end

    def events(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        yield self._event("impression", data={"autoplay": rng.random() < 0.5})
        if rng.random() < 0.35:
            if not self._advance(rng.uniform(0.5, 2)):
                return
            ad = {"ad_id": f"ad-{rng.randrange(20)}", "position": "preroll"}
            yield self._event("adImpression", data=ad)
            if rng.random() < 0.1:
                yield self._event("adClick", data=ad)
            if not self._advance(rng.uniform(5, 30)):
                return
            yield self._event("adCompletion", data=ad)
        if not self._advance(rng.uniform(0.5, 3)):
            return
        yield self._event("playStart")
        for _ in range(rng.randint(3, 120)):
            step = 10.0
            if not self._advance(step):
                return
            self.position += step
            total = int(self.bitrate * 1000 / 8 * step)
            p2p = int(total * self.p2p_share * rng.uniform(0.5, 1.0))
            yield self._event(
                "watchProgress", http_bytes=total - p2p, p2p_bytes=p2p, played_ms=int(step * 1000)
            )
            roll = rng.random()
            if roll < 0.04:
                stall = rng.randint(200, 4000)
                if not self._advance(stall / 1000):
                    return
                yield self._event("rebuffer", rebuffered_ms=stall)
            elif roll < 0.07:
                self.bitrate = rng.choice(BITRATES_KBPS)
                yield self._event("qualityChange", data={"bitrate_kbps": self.bitrate})
            elif roll < 0.10:
                yield self._event("pause")
                if not self._advance(rng.uniform(3, 120)):
                    return
                yield self._event("playStart", data={"resumed": True})
            elif roll < 0.12:
                target = max(0.0, self.position + rng.uniform(-60, 240))
                yield self._event("seek", data={"from": self.position, "to": round(target, 3)})
                self.position = target
                if not self._advance(rng.uniform(0.3, 2)):
                    return
                yield self._event("playStart", data={"after_seek": True})
            elif roll < 0.15:
                yield self._event("heartbeat")
        end = rng.random()
        if end < 0.45:
            yield self._event("completion")
        elif end < 0.75:
            yield self._event("swipe", data={"direction": rng.choice(("up", "down"))})
        elif end < 0.80:
            yield self._event("error", data={"code": rng.choice((1001, 2004, 3002))})
        # Otherwise the viewer just left: the view stays unfinished.


def _finish(rng: random.Random, record: dict[str, Any]) -> dict[str, Any]:
    out = dict(record)
    out["event_time"] = _time_text(rng, record["event_time"])
    return out


def _malform(rng: random.Random, record: dict[str, Any], kind: str, hour: datetime) -> Any:
    bad = dict(record)
    if kind == "missing tenant":
        bad.pop("tenant")
    elif kind == "unparseable event_time":
        bad["event_time"] = "yesterday at noon"
    elif kind == "event_time outside partition hour":
        bad["event_time"] = (hour - timedelta(hours=3)).isoformat()
    elif kind == "negative http_bytes":
        bad["http_bytes"] = -rng.randint(1, 5000)
    elif kind == "unknown event_type":
        bad["event_type"] = "teleport"
    elif kind == "malformed JSON":
        return orjson.dumps(bad).decode()[:-7]  # a truncated line
    return bad


def tenant_hour_records(
    tenant: str,
    hour: datetime,
    count: int,
    seed: int,
    malformed_rate: float = 0.0,
    duplicate_rate: float = 0.0,
) -> Iterator[tuple[str, Any]]:
    """Exactly `count` records of one tenant for one hour, each as (kind, record).

    kind is `ok`, `malformed` or `duplicate`; a record is a dict, or text for broken JSON.
    """
    rng = random.Random(f"{seed}:{tenant}:{hour:%Y-%m-%dT%H}")
    produced = 0
    kinds = 0
    while produced < count:
        for event in _Session(rng, tenant, hour).events():
            if produced >= count:
                return
            record = _finish(rng, event)
            if malformed_rate and rng.random() < malformed_rate:
                yield (
                    "malformed",
                    _malform(rng, record, MALFORMATIONS[kinds % len(MALFORMATIONS)], hour),
                )
                kinds += 1
            elif duplicate_rate and rng.random() < duplicate_rate and produced + 1 < count:
                yield "ok", record
                yield "duplicate", dict(record)  # the collector delivered it twice
                produced += 1
            else:
                yield "ok", record
            produced += 1


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return str(value)


def _write_chunk(records: list[Any], path: Path, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("jsonl", "jsonl.gz"):
        lines = b"".join(
            (r.encode() if isinstance(r, str) else orjson.dumps(r)) + b"\n" for r in records
        )
        if fmt == "jsonl.gz":
            # mtime=0 keeps the gzip header, and so the file, identical run after run.
            path.write_bytes(gzip.compress(lines, mtime=0))
        else:
            path.write_bytes(lines)
        return
    # Tabular formats cannot carry a broken JSON line; those records become bad `data`.
    rows = [
        r if isinstance(r, dict) else {"event_id": "broken", "data": "[broken"} for r in records
    ]
    frame = pl.DataFrame(
        {name: [_as_text(r.get(name)) for r in rows] for name in EVENT_COLUMNS},
        schema={name: pl.String for name in EVENT_COLUMNS},
    )
    if fmt == "csv":
        frame.write_csv(path)
    else:
        numeric = {n: pl.Int64 for n in INTEGER_COLUMNS} | {n: pl.Float64 for n in FLOAT_COLUMNS}
        frame.cast(numeric, strict=False).write_parquet(path)  # type: ignore[arg-type]


def simulate(
    landing: Path,
    tenants: list[str],
    start: datetime,
    end: datetime,
    events_per_hour: int,
    seed: int = 7,
    fmt: str = "jsonl",
    malformed_rate: float = 0.0,
    duplicate_rate: float = 0.0,
    records_per_file: int = RECORDS_PER_FILE,
    on_hour: Callable[[datetime], None] | None = None,
) -> SimulationSummary:
    """Write landing files for every hour in [start, end) and every tenant.

    `events_per_hour` is the total of one hour, shared evenly by the tenants.
    `fmt` is one of FORMATS, or `mixed` to rotate through them hour by hour.
    `on_hour(hour)` is called after each hour is written (a progress bar's tick).
    """
    if fmt != "mixed" and fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)} or mixed")
    files: list[str] = []
    records = malformed = duplicates = 0
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hour_no = 0
    while hour < end:
        hour_fmt = FORMATS[hour_no % len(FORMATS)] if fmt == "mixed" else fmt
        for index, tenant in enumerate(tenants):
            count = events_per_hour // len(tenants) + (index < events_per_hour % len(tenants))
            chunk: list[Any] = []
            part = 0
            stream = tenant_hour_records(tenant, hour, count, seed, malformed_rate, duplicate_rate)
            for kind, record in stream:
                malformed += kind == "malformed"
                duplicates += kind == "duplicate"
                chunk.append(record)
                if len(chunk) >= records_per_file:
                    files.append(_flush(landing, hour, tenant, part, chunk, hour_fmt))
                    part += 1
            if chunk or part == 0:
                files.append(_flush(landing, hour, tenant, part, chunk, hour_fmt))
            records += count
        if on_hour:
            on_hour(hour)
        hour += timedelta(hours=1)
        hour_no += 1
    return SimulationSummary(
        files=files, records=records, malformed=malformed, duplicates=duplicates
    )


def _flush(
    landing: Path, hour: datetime, tenant: str, part: int, chunk: list[Any], fmt: str
) -> str:
    path = landing / hour_prefix(hour) / f"{tenant}-{part:03d}.{fmt}"
    _write_chunk(chunk, path, fmt)
    chunk.clear()
    return path.relative_to(landing).as_posix()
