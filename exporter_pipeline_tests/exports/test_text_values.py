"""What text files print, on a local output over the shared small lake: `sessions` of a
metrics export without float noise (checked against exact decimals), and one timestamp
format in views and viewers files, nested segments included (issue 20, point 10)."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from exporter_pipeline.destinations import destination_from_url
from exporter_pipeline.exports.execution import export_window
from exporter_pipeline_tests.exports.conftest import DAY, Lake, definition

START, END = DAY, DAY + timedelta(hours=2)
# The one documented text format: ISO 8601 UTC, microseconds, `Z`.
TEXT_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.mark.parametrize("interval", ["5m", "10m", "30m"])
def test_sessions_print_exact_decimals(lake: Lake, tmp_path: Path, interval: str) -> None:
    export = definition(
        dataset="metrics", metrics=["sessions"], interval=interval, format="csv", cadence="hourly"
    )
    result = export_window(export, START, END, lake.store, destination_from_url(str(tmp_path)), "m")
    with (tmp_path / result.files[0].key).open() as file:
        rows = list(csv.DictReader(file))
    # Independently: the minutes' distinct sessions summed per interval, as exact decimals.
    minutes = int(interval[:-1])
    sums: dict[int, int] = defaultdict(int)
    source = pl.concat([pl.read_parquet(f) for f in lake.files("delivery_metrics")])
    for row in source.filter(pl.col("tenant") == "acme").iter_rows(named=True):
        stamp = int(row["minute"].timestamp()) * 1000
        sums[stamp - stamp % (minutes * 60_000)] += row["sessions"]
    want = {
        str(stamp): (Decimal(total) / minutes).quantize(Decimal("0.000001"))
        for stamp, total in sums.items()
    }
    assert len(rows) == len(want) >= 4  # 2 hours: at least four 30m intervals
    for row in rows:
        printed = row["sessions"]
        assert len(printed.partition(".")[2]) <= 6, printed
        assert Decimal(printed) == want[row["timestamp"]]


def _times(value: object) -> list[str]:
    """Every string in `value` (nested too) that looks like a timestamp of any format."""
    if isinstance(value, dict):
        return [t for v in value.values() for t in _times(v)]
    if isinstance(value, list):
        return [t for v in value for t in _times(v)]
    return [value] if isinstance(value, str) and re.match(r"^\d{4}-\d\d-\d\dT", value) else []


@pytest.mark.parametrize("dataset", ["views", "viewers"])
@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_one_time_format_everywhere(
    lake: Lake, tmp_path: Path, dataset: str, file_format: str
) -> None:
    export = definition(dataset=dataset, format=file_format)
    result = export_window(export, START, END, lake.store, destination_from_url(str(tmp_path)), "t")
    records: list[dict[str, object]] = []
    for file in result.files:
        text = (tmp_path / file.key).read_text()
        if file_format == "jsonl":
            records += [json.loads(line) for line in text.splitlines()]
        else:
            records += [
                {k: json.loads(v) if v.startswith("[") else v for k, v in row.items()}
                for row in csv.DictReader(text.splitlines())
            ]
    times = _times(records)
    # views: started_at and finished_at (or null) per row; viewers: last_activity and
    # each segment's started_at and finished_at.
    assert len(records) > 10 and len(times) > len(records)
    assert [t for t in times if not TEXT_TIME.match(t)] == []
