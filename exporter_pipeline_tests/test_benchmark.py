"""The benchmark command runs end to end and prints its whole table (a small, quick run).

Its numbers are not checked here: performance is measured by the benchmark, not by tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEPS = [
    "ingest (product)",
    "ingest (bare polars)",
    "export csv ",
    "export parquet",
    "export jsonl",
    "export csv.gz",
    "export csv 3 columns",
    "export csv filtered",
    "metrics 1m x 2 dims",
]


@pytest.mark.servers  # about 30 fresh processes, each loading Dagster: slow, not a unit
def test_benchmark_command_prints_every_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--events",
            "4000",
            "--rounds",
            "1",
            "--span-hours",
            "1,2",
            "--backfill-events",
            "50",
            "--work",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for step in STEPS:
        line = next((row for row in out.splitlines() if row.startswith(step)), None)
        assert line is not None, f"no line for {step!r} in:\n{out}"
        assert re.search(r"\d+\.\d\d", line), line
    # Exports carry the product's and bare polars' peak RSS (MB), then both ratios:
    # product / bare polars and product / DuckDB.
    csv = next(row for row in out.splitlines() if row.startswith("export csv "))
    assert re.search(r"\s\d+\s+\d+\s+\d+\.\d\d\s+\d+\.\d\d$", csv), csv
    assert re.search(r"CSV\.gz: [\d.]+ MB/s of CSV vs two-core gzip [\d.]+ MB/s", out), out
    assert re.search(r"1 hour \(2,000 rows\): \d+ MB; 2 hours \(4,000 rows\): \d+ MB", out), out
    assert re.search(
        r"30-day daily backfill, 50 events/hour: 3 runs, [\d.]+ s wall, export work [\d.]+ s, "
        r"orchestration \d+%",
        out,
    ), out


@pytest.mark.servers  # fresh processes loading the code location: slow, not a unit
def test_load_benchmark_prints_its_table(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "load.py"),
            "--sizes",
            "4,8",
            "--shards",
            "2",
            "--work",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if re.match(r"\| \d", line)]
    assert [row.split("|")[1:3] for row in rows] == [[" 4 ", " 1 "], [" 8 ", " 2 "]], done.stdout
    for row in rows:  # apply, load, RSS, shard, run start-up and Dagster's floor: measured
        assert re.fullmatch(r"(\| [\d.,]+ ){8}\|", row), row
    assert re.search(
        r"load 8 / 4 definitions: [\d.]+x the time for 2x .*Dagster's floor [\d.]+x", done.stdout
    )


@pytest.mark.servers  # a Dagster instance and a sensor evaluated as the daemon does
def test_sensor_tick_benchmark_prints_every_tick(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "sensor_tick.py"),
            *("--outputs", "3", "--days", "1", "--work", str(tmp_path / "work")),
            *("--listings-per-tick", "2"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "BENCH_HOOK_SECRET": "x"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "history: 72 manifests" in out, out
    # Two listings a tick: each burst of three is delivered over two ticks.
    for case in ("burst", "re-runs"):
        assert re.search(rf"{case} tick 1: [\d.]+ s, 2 run requests", out), out
        assert re.search(rf"{case} tick 2: [\d.]+ s, 1 run requests", out), out
        assert re.search(rf"{case} drained: 2 ticks, 3 run requests", out), out
    assert len(re.findall(r"the tick after: [\d.]+ s, 0 run requests", out)) == 2, out
