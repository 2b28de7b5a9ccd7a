"""JSON Lines decoding: the fast path (polars reads a chunk of lines in one pass) must
stage exactly the rows the record-by-record reference path (orjson, in Python) stages,
for clean files and for every kind of broken, odd or borderline line."""

from __future__ import annotations

import gzip
import json
import random
import struct
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from exporter_pipeline.events import landing, landing_read
from exporter_pipeline.events.simulate import tenant_hour_records
from exporter_pipeline_tests.events.test_ingest import HOUR, event


def staged(path: Path, *, fast: bool) -> pl.DataFrame:
    frames = landing.jsonl_frames if fast else landing.jsonl_frames_one_by_one
    return pl.concat(frames(path, "f.jsonl"), how="vertical")


def assert_same_rows(path: Path) -> pl.DataFrame:
    reference = staged(path, fast=False)
    assert_frame_equal(staged(path, fast=True), reference)
    return reference


def random_double(rng: random.Random) -> float:
    while True:
        value: float = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if value == value and abs(value) != float("inf"):
            return value


def number_cases(rng: random.Random) -> list[Any]:
    cases: list[Any] = [0, -0.0, 1.0, 5.0, 1e3, 1e16, 1e22, 1.5e-7, 5e-324, 0.1, 12.345]
    cases += [2**63 - 1, -(2**63), 2**64 - 1, 123456789.123456789, 1.2345678901234567e20]
    cases += [rng.uniform(-1e6, 1e6) for _ in range(200)]
    cases += [rng.randint(-(2**40), 2**40) for _ in range(100)]
    cases += [random_double(rng) for _ in range(400)]
    return cases


def odd_lines(rng: random.Random) -> list[str]:
    """Every line shape we know of: each is staged by one path or the other."""
    lines: list[str] = []
    for number in number_cases(rng):
        lines.append(json.dumps(event("n", content_id=number, position_s=number)))
        lines.append(json.dumps(event("n", http_bytes=number, data={"v": number})))
    lines += [
        json.dumps(event("bool", http_bytes=True, city=False)),
        json.dumps(event("nulls", user_id=None, data=None)),
        json.dumps({"event_id": "missing-most"}),
        json.dumps({**event("extra"), "unknown": {"deep": [1, 2]}, "more": 1}),
        json.dumps(event("esc", city='Z\u00fcrich "quoted" \\ \t tab \u0001 \U0001f600')),
        json.dumps(event("ascii-escaped", city="Zürich 😀"), ensure_ascii=True),
        json.dumps(event("data-esc", data={"s": "é\n\t\u0001\U0001f600/", "n": [1.0, 2e5, None]})),
        json.dumps(event("nested-text", city={"name": "Berlin"})),
        json.dumps(event("nested-list", country=["DE"])),
        json.dumps(event("bracket-text", city="[not nested]", page="{x}")),
        json.dumps(event("data-string", data='{"k": 1}')),
        json.dumps(event("data-number", data=5)),
        json.dumps(event("data-list", data=[1])),
        json.dumps(event("data-empty", data={})),
        '{"event_id": "spaced" ,  "tenant" :"acme" , "data" : { "k" : 1 } }   ',
        "   " + json.dumps(event("leading-space")),
        json.dumps(event("crlf")) + "\r",
        "",
        "   ",
        "\t",
        "{}",
        "[1, 2]",
        "3",
        '"text"',
        "null",
        '{"event_id": "truncated", "tenant": ',
        '{"a": 1}{"b": 2}',
        '{"a": NaN}',
        '{"a": 1e400}',
        "{not json}",
        "{",
        "}",
        json.dumps(event("last")),
    ]
    return lines


def test_odd_lines_stage_the_same_rows_either_way(tmp_path: Path) -> None:
    lines = odd_lines(random.Random(7))
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(lines))  # and the last line has no newline

    rows = assert_same_rows(path)

    non_blank = [number for number, line in enumerate(lines, start=1) if line.strip()]
    assert rows["_record"].to_list() == non_blank
    assert rows["_raw"].to_list() == [lines[n - 1].rstrip("\r") for n in non_blank]
    reasons = dict(zip(rows["_raw"], rows["_decode_reason"], strict=True))
    assert reasons['{"a": 1}{"b": 2}'] == "malformed JSON"
    assert reasons['"text"'] == "record is not a JSON object"
    by_id = {r["event_id"]: r for r in rows.to_dicts() if r["event_id"]}
    assert by_id["data-string"]["_decode_reason"] == "data is not a JSON object"
    assert by_id["data-empty"]["data"] == "{}"
    assert by_id["nested-text"]["city"] == '{"name":"Berlin"}'
    assert by_id["ascii-escaped"]["city"] == "Zürich 😀"
    assert by_id["spaced"]["data"] == '{"k":1}'


# Small chunks: many chunk borders (600 records of ~300 bytes cross hundreds), and broken
# lines found by halving inside chunks; large chunks: more records, few borders.
@pytest.mark.parametrize(
    ("chunk_bytes", "count", "malformed"), [(512, 600, 0.1), (64 * 1024, 3000, 0.02)]
)
def test_simulated_hour_with_broken_lines_stages_the_same_rows_either_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int, count: int, malformed: float
) -> None:
    monkeypatch.setattr(landing_read, "DECODE_CHUNK_BYTES", chunk_bytes)
    records = [r for _, r in tenant_hour_records("acme", HOUR, count, 11, malformed, 0.01)]
    assert sum(isinstance(r, str) for r in records) >= 5  # broken lines to find
    path = tmp_path / "hour.jsonl.gz"
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
    path.write_bytes(gzip.compress(text.encode()))

    rows = assert_same_rows(path)

    assert rows.height == len(records)
    assert rows["_decode_reason"].drop_nulls().len() == sum(isinstance(r, str) for r in records)


def test_clean_lines_are_decoded_by_polars_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [r for _, r in tenant_hour_records("acme", HOUR, 2000, 3, 0.0, 0.0)]
    path = tmp_path / "clean.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    one_by_one_calls = []
    reference = landing._one_by_one

    def spy(lines: list[bytes], numbers: list[int], source: str) -> pl.DataFrame:
        one_by_one_calls.append(len(lines))
        return reference(lines, numbers, source)

    monkeypatch.setattr(landing, "_one_by_one", spy)
    rows = pl.concat(landing.jsonl_frames(path, "f.jsonl"))

    assert one_by_one_calls == []
    assert rows.height == len(records)
    assert rows["event_id"].to_list() == [r["event_id"] for r in records]


def test_a_line_that_is_not_utf8_is_quarantined_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    good = json.dumps(event("good"))
    path.write_bytes(good.encode() + b"\n" + b'{"event_id": "caf\xe9"}\n' + good.encode() + b"\n")

    rows = assert_same_rows(path)

    assert rows["_decode_reason"].to_list() == [None, "malformed JSON", None]
    assert rows["_raw"][1] == '{"event_id": "caf\ufffd"}'
