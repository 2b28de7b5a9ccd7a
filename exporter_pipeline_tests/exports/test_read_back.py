"""Every data set, format and compression, written to a local output and read back with
independent readers (Python's csv/json, gzip, zstandard, pyarrow), compared with the same
selection computed by DuckDB SQL over the lake's Parquet files."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
import zstandard

from exporter_pipeline.destinations import destination_from_url
from exporter_pipeline.exports.execution import export_window
from exporter_pipeline.exports.formats import FILE_FORMATS, format_compression_pairs
from exporter_pipeline.exports.manifest import sha256_of
from exporter_pipeline_tests.exports.conftest import DAY, Lake, definition

START, END = DAY, DAY + timedelta(hours=2)
ENGAGEMENT = ("impression", "playStart", "watchProgress", "pause", "seek", "completion", "swipe")
QUALITY = ("rebuffer", "qualityChange", "error")
ADS = ("adImpression", "adCompletion", "adClick")
QUERY = (
    "select content_id, count(*) as n, sum(played_ms) as played, max(event_time) as last "
    "from events group by content_id"
)

DATASET_CASES: dict[str, dict[str, Any]] = {
    "raw": dict(
        columns=[
            "event_id",
            "event_time",
            "event_type",
            "tenant",
            "played_ms",
            "position_s",
            "data",
            "page",
        ],
        filters={"country": ["US", "DE", "GB"]},
    ),
    "events": {},
    "quality": {},
    "ads": {},
    "views": dict(content_type="recorded", list_unfinished_segments=False),
    "viewers": {},
    "metrics": dict(
        metrics=["http", "p2p", "played", "rebuffered", "sessions"],
        interval="30m",
        dimensions=["country.code", "browser.name"],
    ),
    "query": dict(query=QUERY),
}
KEYS = {
    "raw": ["event_id"],
    "events": ["event_id"],
    "quality": ["event_id"],
    "ads": ["event_id"],
    "views": ["view_id"],
    "viewers": ["viewer_identifier"],
    "metrics": ["timestamp", "country.code", "browser.name"],
    "query": ["content_id"],
}


def cases() -> list[Any]:
    found = []
    for dataset in DATASET_CASES:
        for fmt, compression in format_compression_pairs():
            if dataset == "query" and fmt != "jsonl":
                continue  # seed 004: query exports are NDJSON
            found.append(
                pytest.param(
                    dataset, fmt, compression, id=f"{dataset}-{fmt}-{compression or 'default'}"
                )
            )
    return found


def expected_rows(dataset: str, lake: Lake) -> list[dict[str, Any]]:
    """The selection, written independently as DuckDB SQL over the lake files."""
    raw, views = (
        f"read_parquet({lake.files(d)}, hive_partitioning=false)"
        for d in ("raw_events", "view_segments")
    )
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    window = f"event_time >= '{START:%Y-%m-%d %H:%M}+00' and event_time < '{END:%Y-%m-%d %H:%M}+00'"
    if dataset == "raw":
        sql = (
            f"select event_id, event_time, event_type, tenant, played_ms, position_s, data, page "
            f"from {raw} where tenant = 'acme' and country in ('US','DE','GB') "
            f"and {window}"
        )
    elif dataset in ("events", "quality", "ads"):
        types = {"events": ENGAGEMENT, "quality": QUALITY, "ads": ADS}[dataset]
        sql = f"select * from {raw} where tenant = 'acme' and event_type in {types} and {window}"
    elif dataset == "views":
        sql = (
            f"select view_id, client_id, content_id, content_type, country, city, started_at, "
            f'finished_at, "from", "to", is_mobile_view, view_session_id, view_type, '
            f"viewer_identifier from {views} where tenant = 'acme' "
            f"and content_type = 'recorded' and finished_at is not null"
        )
    elif dataset == "viewers":
        sql = (
            f"select viewer_identifier, greatest(max(finished_at), max(started_at)) as "
            f"last_activity, count(distinct content_id) as videos_watched, count(*) as segments "
            f"from {views} where tenant = 'acme' group by viewer_identifier"
        )
    elif dataset == "metrics":
        sql = f"""
            with e as (select * from {raw} where tenant = 'acme' and {window}),
            per_minute as (
                select time_bucket(interval 30 minute, event_time) as bucket,
                       date_trunc('minute', event_time) as minute, country, browser,
                       count(distinct session_id) as s
                from e group by all),
            sessions as (select bucket, country, browser, sum(s) / 30.0 as sessions
                         from per_minute group by all),
            sums as (
                select time_bucket(interval 30 minute, event_time) as bucket, country, browser,
                       sum(coalesce(http_bytes, 0)) as http, sum(coalesce(p2p_bytes, 0)) as p2p,
                       sum(coalesce(played_ms, 0)) as played,
                       sum(coalesce(rebuffered_ms, 0)) as rebuffered
                from e group by all)
            select epoch_ms(sums.bucket) as timestamp, sums.country as "country.code",
                   sums.browser as "browser.name", http, p2p, played, rebuffered, sessions
            from sums join sessions using (bucket, country, browser)"""
    else:
        con.execute(f"create view events as select * from {raw} where tenant = 'acme' and {window}")
        sql = QUERY
    frame = con.sql(sql)
    columns = frame.columns
    return [dict(zip(columns, row, strict=True)) for row in frame.fetchall()]


def decompress(data: bytes, compression: str | None, fmt: str) -> bytes:
    if fmt == "parquet" or compression is None:
        return data
    if compression == "gzip":
        return gzip.decompress(data)
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


def read_back(paths: list[Path], fmt: str, compression: str | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in paths:
        data = decompress(path.read_bytes(), compression, fmt)
        if fmt == "csv":
            rows += [
                {k: (v if v != "" else None) for k, v in r.items()}
                for r in csv.DictReader(io.StringIO(data.decode()))
            ]
        elif fmt == "jsonl":
            rows += [json.loads(line) for line in data.decode().splitlines()]
        else:
            rows += pq.read_table(io.BytesIO(data)).to_pylist()
    return rows


def canon(value: Any, like: Any) -> Any:
    """`value` as read back, turned into the type of the expected `like`."""
    if value is None:
        return None
    if isinstance(like, datetime):
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    if isinstance(like, bool):
        return value if isinstance(value, bool) else value == "true"
    if isinstance(like, int):
        return int(value)
    if isinstance(like, float):
        return round(float(value), 6)
    if isinstance(like, list):
        return value
    return str(value) if not isinstance(value, dict | list) else json.dumps(value)


def normalise_expected(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (
            v.astimezone(UTC)
            if isinstance(v, datetime)
            else round(float(v), 6)
            if isinstance(v, float)
            else v
        )
        for k, v in row.items()
    }


@pytest.mark.parametrize(("dataset", "fmt", "compression"), cases())
def test_export_reads_back_as_computed_independently(
    dataset: str, fmt: str, compression: str | None, lake: Lake, tmp_path: Path
) -> None:
    export = definition(
        dataset=dataset, format=fmt, compression=compression, **DATASET_CASES[dataset]
    )
    output = destination_from_url(str(tmp_path / "out"))

    result = export_window(export, START, END, lake.store, output, "run-test")

    # Files: exact keys, and the manifest's rows, bytes and checksums match them.
    suffix = FILE_FORMATS[fmt].extension
    if compression and FILE_FORMATS[fmt].compression_in_name:
        suffix += {"gzip": ".gz", "zstd": ".zst"}[compression]
    hours = ["2026-10-01-00-00", "2026-10-01-01-00"]
    names = hours if dataset in ("raw", "events", "quality", "ads", "views") else hours[:1]
    assert [f.key for f in result.files] == [f"exp/{n}.{suffix}" for n in names]
    manifest = json.loads((tmp_path / "out" / result.manifest_key).read_text())
    assert result.manifest_key == "exp/_manifests/2026-10-01-00-00_2026-10-01-02-00.json"
    assert manifest["window"] == {"start": "2026-10-01T00:00:00Z", "end": "2026-10-01T02:00:00Z"}
    local = [tmp_path / "out" / f["key"] for f in manifest["files"]]
    for entry, path in zip(manifest["files"], local, strict=True):
        assert entry["bytes"] == path.stat().st_size
        assert entry["sha256"] == sha256_of(path)
    got = read_back(local, fmt, compression)
    assert [len(read_back([p], fmt, compression)) for p in local] == [
        f["rows"] for f in manifest["files"]
    ]

    expected = [normalise_expected(r) for r in expected_rows(dataset, lake)]
    assert len(got) == len(expected) > 0
    if dataset == "viewers":
        for row in got:
            segments = row["segments"]
            row["segments"] = len(json.loads(segments) if isinstance(segments, str) else segments)
    like = expected[0]
    assert list(got[0]) == list(like) or (dataset == "viewers" and set(got[0]) == set(like))
    typed = [
        {
            k: canon(row.get(k), like[k] if like[k] is not None else _first(expected, k))
            for k in like
        }
        for row in got
    ]
    key = KEYS[dataset]
    assert sorted(typed, key=lambda r: [str(r[k]) for k in key]) == sorted(
        expected, key=lambda r: [str(r[k]) for k in key]
    )


def _first(rows: list[dict[str, Any]], column: str) -> Any:
    return next((r[column] for r in rows if r[column] is not None), "")
