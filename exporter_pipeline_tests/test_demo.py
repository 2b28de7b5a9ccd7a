"""`exporter-pipeline demo` as the README's first command runs it (a subprocess, in a
fresh folder): it ends with an API key and a `curl` line, and that line, run by curl
against `exporter-pipeline api` started with the same settings, answers the demo day's
metrics of the tenant, equal to DuckDB's sums over the lake's delivery_metrics. The same
run (non-interactive: plain progress lines) shows no warning and no Dagster event line,
only the phases, the tables and where the runs' event logs went."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from exporter_pipeline_tests.servers import REPO, free_port, stop_group, wait_for_port

SCRIPT = Path(sys.executable).parent / "exporter-pipeline"


@pytest.mark.servers  # the demo's Dagster runs, then the API as a server
def test_the_demo_prints_a_key_and_a_curl_line_that_works(tmp_path: Path) -> None:
    shutil.copy(REPO / "exports.yaml", tmp_path / "exports.yaml")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EXPORTER_")},
        "DAGSTER_HOME": str(tmp_path / ".dagster_home"),
        "EXPORTER_API_URL": f"http://127.0.0.1:{port}",
    }
    (tmp_path / ".dagster_home").mkdir()
    shutil.copy(REPO / "dagster.yaml", tmp_path / ".dagster_home" / "dagster.yaml")
    demo = subprocess.run(
        # The default day, yesterday: seed 001 answers 1h only for the last 14 days.
        [str(SCRIPT), "demo", "--events-per-hour", "300"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    _assert_clean_output(demo.stdout + demo.stderr, tmp_path / ".dagster_home")
    last = demo.stdout.strip().splitlines()
    key_line = next(line for line in last if line.startswith("API key of acme (shown once): "))
    curl_line = next(line for line in last if line.startswith("curl "))
    key = key_line.rsplit(" ", 1)[1]
    assert key.startswith("ep_") and key in curl_line

    api = subprocess.Popen(
        [str(SCRIPT), "api", "--port", str(port), "--log-level", "warning"],
        cwd=tmp_path,
        env=env,
        start_new_session=True,
    )
    try:
        wait_for_port(port, api, timeout=60)
        answer = subprocess.run(
            ["bash", "-c", curl_line + " -f"], capture_output=True, text=True, timeout=60
        )
    finally:
        stop_group(api)
    assert answer.returncode == 0, answer.stderr
    rows = list(csv.DictReader(io.StringIO(answer.stdout)))
    assert list(rows[0]) == ["timestamp", "country.code", "played", "rebuffered", "sessions"]
    played = sum(int(r["played"]) for r in rows)
    lake = tmp_path / "data" / "lake" / "delivery_metrics"
    ((expected,),) = duckdb.sql(
        f"SELECT sum(played_ms) FROM read_parquet('{lake}/**/*.parquet') WHERE tenant = 'acme'"
    ).fetchall()
    assert played == expected > 0
    assert len({r["timestamp"] for r in rows}) == 24


def _assert_clean_output(output: str, home: Path) -> None:
    """Progress, tables and last lines only; Dagster's event lines went to the log file."""
    lines = output.splitlines()
    assert not [line for line in lines if "Warning" in line or " - DEBUG - " in line]
    assert not [line for line in lines if " - dagster - " in line]
    for phase in ("set up", "simulate", "ingest the hours", "run the exports"):
        assert f"{phase} …" in lines
    assert "ingest the hours: 72/72" in output
    header = next(i for i, line in enumerate(lines) if line.startswith("hour (UTC) "))
    assert lines[header + 25].startswith("total ")
    assert any(line.startswith("export ") and line.endswith("manifest") for line in lines)
    assert lines[-1].startswith("Open the UI:")
    (log,) = (home / "logs").glob("demo-*.log")
    assert f"Dagster's event logs of the demo's runs: {log}" in lines
    assert " - DEBUG - " in log.read_text()
