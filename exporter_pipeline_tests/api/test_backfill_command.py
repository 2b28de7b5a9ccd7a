"""`exporter-pipeline backfill EXPORT --from --to` as an operator runs it (a subprocess) on
the test's own SQLite store, up to the launch: the range is checked as the API checks it
(the same messages), an unknown export and an unreachable Dagster are one clear line
each. The launch itself runs against `dagster dev` in e2e/test_dagster_dev.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from exporter_pipeline.store.store import DefinitionsStore
from exporter_pipeline_tests.servers import free_port
from exporter_pipeline_tests.store.conftest import export, write

SCRIPT = Path(sys.executable).parent / "exporter-pipeline"


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    document = {
        "outputs": {"local": {"type": "local", "path": str(tmp_path / "out")}},
        "exports": [export("acme_daily", "acme", "local", "daily")],
    }
    DefinitionsStore.open(url).apply_file(write(tmp_path / "exports.yaml", document))
    return url


def backfill(store_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "EXPORTER_DATABASE_URL": store_url,
        "EXPORTER_DAGSTER_URL": f"http://127.0.0.1:{free_port()}",
    }
    return subprocess.run(
        [str(SCRIPT), "backfill", *args], capture_output=True, text=True, timeout=120, env=env
    )


@pytest.mark.servers  # runs the console script several times
def test_backfill_checks_the_range_and_names_what_is_wrong(store_url: str) -> None:
    misaligned = backfill(
        store_url, "acme_daily", "--from", "2026-10-02T05:00", "--to", "2026-10-03"
    )
    assert misaligned.returncode == 2
    assert misaligned.stderr.splitlines() == [
        "start 2026-10-02T05:00:00Z is not the start of a window: the daily windows of "
        "acme_daily around it start 2026-10-02T00:00:00Z and 2026-10-03T00:00:00Z"
    ]
    early = backfill(store_url, "acme_daily", "--from", "2026-09-01", "--to", "2026-09-01")
    assert early.returncode == 2
    assert early.stderr.splitlines() == [
        "start 2026-09-01T00:00:00Z is before the export's first window, 2026-10-01T00:00:00Z",
        "end 2026-09-01T00:00:00Z must be after start 2026-09-01T00:00:00Z: the range holds "
        "no window",
    ]
    too_long = backfill(store_url, "acme_daily", "--from", "2026-10-01", "--to", "2026-11-15")
    assert too_long.returncode == 2
    assert too_long.stderr.splitlines()[-1] == (
        "end 2026-11-15T00:00:00Z is more than 30 days after start 2026-10-01T00:00:00Z: "
        "an execution covers at most 30 days; start several"
    )
    beyond = backfill(store_url, "acme_daily", "--from", "2026-10-01", "--to", "9999-12-31")
    assert (beyond.returncode, beyond.stderr.strip()) == (
        2,
        "end 9999-12-31T00:00:00 is not between 2000-01-01 and 2100-12-31 (UTC)",
    )
    unknown = backfill(store_url, "nope", "--from", "2026-10-01", "--to", "2026-10-02")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "no export 'nope' in the definitions store"
    down = backfill(store_url, "acme_daily", "--from", "2026-10-01", "--to", "2026-10-04")
    assert down.returncode == 1
    assert down.stderr.startswith("the Dagster webserver at http://127.0.0.1:")
    bad = backfill(store_url, "acme_daily", "--from", "yesterday", "--to", "2026-10-04")
    assert bad.returncode == 2 and bad.stderr.startswith("--from/--to: Invalid isoformat")
