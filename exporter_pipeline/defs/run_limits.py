"""How long a run may take: Dagster's `dagster/max_runtime` run tag, per kind of job.

Run monitoring (dagster.yaml `run_monitoring`) stops a run that is STARTED for longer
than its tag's seconds and marks it FAILURE; the run-failure sensor then tells the
tenant. Only job tags become run tags: asset and op tags do not, so runs of UI backfills
(`__ASSET_JOB`) carry no such tag and fall under the instance-wide
`run_monitoring.max_runtime_seconds` instead (unless the person launching adds the tag).
"""

from __future__ import annotations

from typing import Final

MAX_RUNTIME_TAG: Final = "dagster/max_runtime"


def max_runtime_tags(seconds: int) -> dict[str, str]:
    """The run tag limiting a run to `seconds`; none when 0 (no limit of its own)."""
    return {MAX_RUNTIME_TAG: str(seconds)} if seconds > 0 else {}
