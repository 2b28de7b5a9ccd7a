"""Schemathesis (its command line; its pytest plugin does not load under pytest 9) over
the whole OpenAPI document of the API of the end-to-end deployment, Dagster up, with a
valid key of a tenant of its own: no answer is a 5xx and every answer (status, media
type, headers, body) is one the document declares. Its time is bounded so it costs
about two minutes on two cores."""

from __future__ import annotations

import subprocess
from pathlib import Path

from exporter_pipeline_tests.servers import REPO

# Checks that say nothing true of this API, each with why.
EXCLUDED_CHECKS = {
    # "A request valid by the schema must succeed": most of the API needs things that
    # exist (the tenant's own output for an export, an export for an execution) or
    # rules no schema can carry (end after start, aligned metrics ranges, start or
    # date_time_from): such a request is rightly a 404 or 422.
    "positive_data_acceptance",
}
MAX_EXAMPLES = 12
MAX_SECONDS = 100


def run_schemathesis(url: str, key: str, out: Path) -> subprocess.CompletedProcess[str]:
    command = [
        str(REPO / ".venv" / "bin" / "st"),
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        "all",
        "--exclude-checks",
        ",".join(sorted(EXCLUDED_CHECKS)),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(MAX_SECONDS),
        # One worker: two cores already run Dagster and the API.
        "--workers",
        "1",
        # A change of an export reloads the code location first (seconds, on a busy box).
        "--request-timeout",
        "60",
        "--seed",
        "20261001",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(out),
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=MAX_SECONDS + 240, cwd=out.parent
    )


def check_schemathesis(url: str, key: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    finished = run_schemathesis(url, key, out)
    (out / "schemathesis.log").write_text(finished.stdout + finished.stderr)
    summary = finished.stdout[-6000:]
    print(summary)  # the phases, operations and any warning, for the test's log
    assert finished.returncode == 0, summary
