"""A lake file read one row group at a time gives exactly what polars' own scan gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from exporter_pipeline.exports.writers import write_file
from exporter_pipeline.lake import scan_by_row_group

START = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.fixture
def hour_file(tmp_path: Path) -> Path:
    """2,500 rows in row groups of 1,000, 1,000 and 500, with nulls and two tenants."""
    n = 2500
    frame = pl.DataFrame(
        {
            "event_id": [f"e{i:05d}" for i in range(n)],
            "tenant": ["acme" if i % 3 else "globex" for i in range(n)],
            "event_time": [START + timedelta(milliseconds=1440 * i) for i in range(n)],
            "country": [None if i % 7 == 0 else ("US", "DE", "FR")[i % 3] for i in range(n)],
            "played_ms": [None if i % 11 == 0 else i * 10 for i in range(n)],
        },
        schema_overrides={"event_time": pl.Datetime("us", "UTC")},
    )
    path = tmp_path / "events.parquet"
    pq.write_table(frame.to_arrow(), path, row_group_size=1000)
    assert pq.read_metadata(path).num_row_groups == 3
    return path


def _selections(frame: pl.LazyFrame) -> dict[str, pl.LazyFrame]:
    acme = frame.filter(pl.col("tenant") == "acme")
    return {
        "all": frame,
        "tenant": acme,
        "tenant, country, columns": acme.filter(pl.col("country").is_in(["US", "DE"])).select(
            "event_time", "played_ms"
        ),
        "head": acme.head(700),
        "slice across groups": acme.slice(600, 900),
        "time cut": acme.filter(pl.col("event_time") >= START + timedelta(minutes=30)),
        "count": acme.select(pl.len()),
        "row numbers": frame.with_row_index("_row").filter(
            pl.col("_row").is_in([0, 999, 1000, 2499])
        ),
    }


def test_every_selection_equals_polars_own_scan(hour_file: Path) -> None:
    expected = _selections(pl.scan_parquet(hour_file))
    got = _selections(scan_by_row_group(hour_file))
    for name, frame in got.items():
        assert frame.collect().equals(expected[name].collect()), name
    assert got["count"].collect().item() == sum(1 for i in range(2500) if i % 3)


@pytest.mark.parametrize(
    ("fmt", "compression"), [("csv", None), ("jsonl", "gzip"), ("parquet", None)]
)
def test_written_file_and_row_count_equal_polars_own_scan(
    hour_file: Path, tmp_path: Path, fmt: str, compression: str | None
) -> None:
    rows = {}
    sources = {"scan": pl.scan_parquet(hour_file), "groups": scan_by_row_group(hour_file)}
    for name, source in sources.items():
        frame = source.filter(pl.col("tenant") == "acme").filter(pl.col("played_ms") > 5000)
        rows[name] = write_file(frame, fmt, compression, tmp_path / f"{name}.out")
    expected = sum(1 for i in range(2500) if i % 3 and i % 11 and i * 10 > 5000)
    assert rows == {"scan": expected, "groups": expected}
    if fmt == "parquet":
        assert pl.read_parquet(tmp_path / "groups.out").equals(
            pl.read_parquet(tmp_path / "scan.out")
        )
    else:
        assert (tmp_path / "groups.out").read_bytes() == (tmp_path / "scan.out").read_bytes()


def test_a_file_of_one_row_group_is_scanned_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "small.parquet"
    pl.DataFrame({"tenant": ["acme", "globex"]}).write_parquet(path)
    assert "PYTHON" not in scan_by_row_group(path).explain()
    many = tmp_path / "many.parquet"
    pq.write_table(
        pl.DataFrame({"tenant": ["acme", "globex"] * 5}).to_arrow(), many, row_group_size=3
    )
    assert "PYTHON" in scan_by_row_group(many).explain()
