"""A small lake shared by the export tests: two tenants, two hours, raw and derived."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest

from exporter_pipeline.derived.delivery_metrics import delivery_metrics
from exporter_pipeline.derived.view_segments import view_segments
from exporter_pipeline.destinations import Destination, destination_from_url
from exporter_pipeline.events.ingest import ingest_hour
from exporter_pipeline.events.simulate import simulate
from exporter_pipeline.exports.spec import ExportDefinition, parse_definitions
from exporter_pipeline.lake import hourly_key, write_hourly

DAY = datetime(2026, 10, 1, tzinfo=UTC)
HOURS = [DAY, DAY + timedelta(hours=1)]


@dataclass(frozen=True)
class Lake:
    root: Path
    store: Destination
    hours: tuple[datetime, ...] = tuple(HOURS)

    def files(self, dataset: str) -> list[str]:
        return [str(self.root / hourly_key(dataset, hour)) for hour in self.hours]


def build_lake(
    root: Path,
    events_per_hour: int = 4000,
    seed: int = 21,
    hours: int = len(HOURS),
    row_group_rows: int | None = None,
    day: datetime = DAY,
) -> Lake:
    """Simulated landing files ingested into a lake, with both derived data sets.

    `row_group_rows` rewrites each raw hour in row groups of that many rows, as a large
    hour is stored (the lake writes 128 K-row groups), so exports read it group by group.
    `day` is the first hour (any UTC hour; the API's tests need recent ones).
    """
    landing = root / "landing"
    every = tuple(day + timedelta(hours=h) for h in range(hours))
    simulate(
        landing, ["acme", "globex"], day, every[-1] + timedelta(hours=1), events_per_hour, seed=seed
    )
    store = destination_from_url(str(root / "lake"))
    for hour in every:
        ingest_hour(hour, destination_from_url(str(landing)), store)
        raw_file = root / "lake" / hourly_key("raw_events", hour)
        if row_group_rows:
            pq.write_table(pq.read_table(raw_file), raw_file, row_group_size=row_group_rows)
        raw = pl.scan_parquet(raw_file)
        for name, transform in (
            ("view_segments", view_segments),
            ("delivery_metrics", delivery_metrics),
        ):
            work = root / f"work-{name}-{hour:%Y%m%d%H}"
            work.mkdir()
            write_hourly(store, name, hour, transform(raw), work)
    return Lake(root / "lake", store, every)


@pytest.fixture(scope="session")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return build_lake(tmp_path_factory.mktemp("export-lake"), row_group_rows=700)


def definition(**fields: Any) -> ExportDefinition:
    body = {
        "name": "t",
        "tenant": "acme",
        "dataset": "raw",
        "cadence": "hourly",
        "start": "2026-10-01T00:00:00Z",
        "output": {"name": "out", "path": "exp"},
        **fields,
    }
    document = {"outputs": {"out": {"type": "local", "path": "/unused"}}, "exports": [body]}
    return parse_definitions(
        document, Path("test.yaml"), now=datetime(2026, 10, 2, tzinfo=UTC)
    ).exports[0]
