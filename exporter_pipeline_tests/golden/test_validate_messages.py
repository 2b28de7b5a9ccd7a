"""`validate` says the same thing for the same file: every bad-definition case under
definitions/ is loaded strictly and leniently, and the messages (file path replaced by
`<file>`) must match validate_messages.txt byte for byte. No server is involved.

Regenerate the golden file only for an intended message change:
`GOLDEN_UPDATE=1 .venv/bin/pytest exporter_pipeline_tests/golden`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.exports.spec import load_definitions_file

HERE = Path(__file__).parent
CASES = sorted((HERE / "definitions").glob("*.yaml"))
GOLDEN = HERE / "validate_messages.txt"
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
SCRIPT = Path(sys.executable).parent / "exporter-pipeline"
# Cases whose messages do not depend on the time of day, run through the real CLI.
CLI_CASES = ("extra_key_metrics_on_raw", "extra_output_bad_entries", "extra_top_level_scalar")


def _messages(path: Path, lenient: bool) -> str:
    try:
        loaded = load_definitions_file(path, now=NOW, lenient=lenient)
    except DefinitionError as error:
        text = f"error:\n{error}"
    else:
        lines = [f"valid: {[e.name for e in loaded.exports]}"]
        lines += [f"rejected output: {p}" for p in loaded.rejected_outputs]
        for rejected in loaded.rejected:
            lines.append(f"rejected #{rejected.index} {rejected.name!r}:")
            lines += [f"  {p}" for p in rejected.problems]
        text = "\n".join(lines)
    return text.replace(str(path), "<file>")


def _report() -> str:
    parts = []
    for path in CASES:
        parts.append(f"=== {path.stem}\n--- strict\n{_messages(path, False)}")
        parts.append(f"--- lenient\n{_messages(path, True)}")
    return "\n".join(parts) + "\n"


def test_validate_messages_match_the_golden_file() -> None:
    report = _report()
    if os.environ.get("GOLDEN_UPDATE"):
        GOLDEN.write_text(report, encoding="utf-8")
    assert report == GOLDEN.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_validate_prints_the_golden_messages(case: str) -> None:
    path = HERE / "definitions" / f"{case}.yaml"
    done = subprocess.run(
        [str(SCRIPT), "validate", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    strict = _messages(path, False).removeprefix("error:\n")
    assert done.stderr.replace(str(path), "<file>") == strict + "\n"
