"""Partition definitions shared by the raw and derived hourly assets, and their backfills."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import dagster as dg

from exporter_pipeline.settings import Settings
from exporter_pipeline.windows import HOUR_KEY_FORMAT

# The one beta warning we accept knowingly: every partitioned asset passes a backfill
# policy (ranges run as one run), which Dagster 1.13 still marks as beta.
BACKFILL_POLICY_BETA = r"Parameter `backfill_policy` of function `asset` is currently in beta"


@contextlib.contextmanager
def backfill_policy_accepted() -> Iterator[None]:
    """Silence only the beta warning of `@dg.asset(backfill_policy=...)` inside the block.

    Any other warning, beta or not, still shows; so does this one raised elsewhere.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=BACKFILL_POLICY_BETA, category=dg.BetaWarning)
        yield


def hourly_partitions_def(settings: Settings | None = None) -> dg.HourlyPartitionsDefinition:
    """UTC hours from the configured start; keys look like `2026-10-01-05:00`."""
    settings = settings or Settings.from_env()
    return dg.HourlyPartitionsDefinition(
        start_date=settings.partitions_start.strftime(HOUR_KEY_FORMAT),
        timezone="UTC",
        fmt=HOUR_KEY_FORMAT,
    )
