"""The simulator: same arguments give the same bytes; the records look like real sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from exporter_pipeline.events.schema import EVENT_TYPES
from exporter_pipeline.events.simulate import FORMATS, MALFORMATIONS, simulate
from exporter_pipeline_tests.files import file_digests

START = datetime(2026, 10, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_seed_same_bytes_other_seed_other_bytes(fmt: str, tmp_path: Path) -> None:
    args = dict(
        tenants=["acme", "globex"],
        start=START,
        end=START + timedelta(hours=2),
        events_per_hour=500,
        fmt=fmt,
        malformed_rate=0.05,
        duplicate_rate=0.05,
    )
    simulate(tmp_path / "a", seed=11, **args)  # type: ignore[arg-type]
    simulate(tmp_path / "b", seed=11, **args)  # type: ignore[arg-type]
    simulate(tmp_path / "c", seed=12, **args)  # type: ignore[arg-type]
    a, b, c = (
        file_digests(tmp_path / "a"),
        file_digests(tmp_path / "b"),
        file_digests(tmp_path / "c"),
    )
    assert a == b
    assert set(a) == set(c) and a != c
    assert sorted(a) == [
        f"dt=2026-10-01/hour={h:02d}/{t}-000.{fmt}" for h in (0, 1) for t in ("acme", "globex")
    ]


def test_records_are_realistic_sessions(tmp_path: Path) -> None:
    summary = simulate(tmp_path, ["acme"], START, START + timedelta(hours=1), 5000, seed=1)
    assert summary.records == 5000 and summary.malformed == 0 and summary.duplicates == 0
    lines = (tmp_path / "dt=2026-10-01/hour=00/acme-000.jsonl").read_bytes().splitlines()
    records = [orjson.loads(line) for line in lines]
    assert len(records) == 5000
    types = {r["event_type"] for r in records}
    for wanted in (
        "impression",
        "playStart",
        "watchProgress",
        "pause",
        "seek",
        "rebuffer",
        "qualityChange",
        "completion",
        "swipe",
        "adImpression",
        "heartbeat",
    ):
        assert wanted in types
    assert types <= set(EVENT_TYPES)
    assert len({r["country"] for r in records}) >= 5
    assert len({r["browser"] for r in records}) >= 4
    assert len({r["device_type"] for r in records}) >= 3
    assert len({r["event_id"] for r in records}) == 5000
    # A session opens with an impression and its time never goes backwards.
    by_session: dict[str, list[tuple[datetime, str]]] = {}
    for r in records:
        by_session.setdefault(r["session_id"], []).append(
            (as_utc(r["event_time"]), r["event_type"])
        )
    assert len(by_session) > 20
    for events in by_session.values():
        assert events[0][1] == "impression"
        times = [t for t, _ in events]
        assert times == sorted(times)
        assert all(START <= t < START + timedelta(hours=1) for t in times)


def as_utc(value: str | int) -> datetime:
    if isinstance(value, int):
        return datetime.fromtimestamp(value / 1000, UTC)
    return datetime.fromisoformat(value).astimezone(UTC)


def test_malformed_and_duplicates_on_request(tmp_path: Path) -> None:
    summary = simulate(
        tmp_path,
        ["acme"],
        START,
        START + timedelta(hours=1),
        3000,
        seed=2,
        malformed_rate=0.05,
        duplicate_rate=0.05,
    )
    lines = (tmp_path / "dt=2026-10-01/hour=00/acme-000.jsonl").read_bytes().splitlines()
    assert len(lines) == 3000
    assert summary.malformed > len(MALFORMATIONS) and summary.duplicates > 10
    parsed = []
    broken = 0
    for line in lines:
        try:
            parsed.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            broken += 1
    assert broken > 0
    ids = [r["event_id"] for r in parsed]
    assert len(ids) - len(set(ids)) == summary.duplicates
