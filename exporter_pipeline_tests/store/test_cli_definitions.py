"""`exporter-pipeline definitions apply | dump` as an operator runs them (a subprocess),
on the test's own SQLite store: counts, idempotence, the round trip, the ownership error
word for word, and the one-line note when no Dagster webserver answers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from exporter_pipeline_tests.servers import free_port
from exporter_pipeline_tests.store.conftest import export, two_tenants, write

SCRIPT = Path(sys.executable).parent / "exporter-pipeline"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "definitions", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "EXPORTER_DAGSTER_URL": f"http://127.0.0.1:{free_port()}"},
    )


@pytest.mark.servers  # runs the console script several times
def test_apply_dump_apply_changes_nothing(tmp_path: Path) -> None:
    write(tmp_path / "exports.yaml", two_tenants(tmp_path / "out"))
    first = run("apply", "exports.yaml", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == (
        "exports.yaml: outputs: 2 created, 0 updated, 0 unchanged, 0 removed; "
        "exports: 3 created, 0 updated, 0 unchanged, 0 removed"
    )
    assert lines[1].startswith("no Dagster webserver answered at http://127.0.0.1:")
    assert len(lines) == 2
    again = run("apply", "exports.yaml", cwd=tmp_path)
    assert again.stdout == (
        "exports.yaml: outputs: 0 created, 0 updated, 2 unchanged, 0 removed; "
        "exports: 0 created, 0 updated, 3 unchanged, 0 removed: no change\n"
    )
    dumped = run("dump", cwd=tmp_path)
    assert dumped.returncode == 0, dumped.stderr
    (tmp_path / "dump.yaml").write_text(dumped.stdout)
    validated = subprocess.run(
        [str(SCRIPT), "validate", "dump.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert validated.stdout == "dump.yaml: 2 outputs, 3 exports, valid\n"
    back = run("apply", "dump.yaml", "--prune", cwd=tmp_path)
    assert back.stdout.endswith(": no change\n"), back.stdout


@pytest.mark.servers  # runs the console script
def test_apply_refuses_another_tenants_output_naming_file_export_and_field(
    tmp_path: Path,
) -> None:
    document = two_tenants(tmp_path / "out")
    document["exports"].append(export("globex_s3", "globex", "acme_s3", "globex"))
    write(tmp_path / "exports.yaml", document)
    done = run("apply", "exports.yaml", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "exports.yaml: export 'globex_s3' (/exports/3/output/name): output 'acme_s3' belongs "
        "to tenant 'acme'; an export of tenant 'globex' may not use it\n"
    )
    assert run("dump", cwd=tmp_path).stdout.endswith("outputs: {}\nexports: []\n")
