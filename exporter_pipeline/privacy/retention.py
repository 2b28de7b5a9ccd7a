"""Retention (seed 002): raw data 90 days, aggregates 2 years, export files 7 days.

Lake data sets are judged by the hour they hold: raw events, their quarantine and view
segments (which name viewers) are raw data; delivery metrics are aggregates. Export
files in managed outputs are judged by when they were written. A dry run lists what
would go and removes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from exporter_pipeline.destinations import Destination
from exporter_pipeline.lake import hourly_key, lake_hours

RAW_DATASETS = ("raw_events", "raw_events_quarantine", "view_segments")
AGGREGATE_DATASETS = ("delivery_metrics",)


@dataclass(frozen=True)
class RetentionPolicy:
    raw: timedelta = timedelta(days=90)
    aggregates: timedelta = timedelta(days=730)
    export_files: timedelta = timedelta(days=7)


@dataclass
class RetentionPlan:
    lake_keys: list[str] = field(default_factory=list)
    export_keys: dict[str, list[str]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.lake_keys) + sum(len(v) for v in self.export_keys.values())


def plan_retention(
    lake: Destination,
    managed: dict[str, tuple[Destination, list[str]]],
    now: datetime,
    policy: RetentionPolicy,
    *,
    with_lake: bool = True,
) -> RetentionPlan:
    """What is past its age: lake hours by their hour's end, export files by write time.

    `managed` maps an output name to its destination and the export paths written there.
    Without `with_lake` only export files are planned: the lake is one shard's to keep.
    """
    plan = RetentionPlan()
    ages = ((RAW_DATASETS, policy.raw), (AGGREGATE_DATASETS, policy.aggregates))
    for datasets, age in ages if with_lake else ():
        for dataset in datasets:
            for hour in lake_hours(lake, dataset):
                if hour + timedelta(hours=1) <= now - age:
                    plan.lake_keys.append(hourly_key(dataset, hour))
    for name, (destination, paths) in sorted(managed.items()):
        expired = []
        for path in sorted(set(paths)):
            prefix = f"{path.strip('/')}/" if path.strip("/") else ""
            expired += [
                o.key for o in destination.list(prefix) if o.modified <= now - policy.export_files
            ]
        if expired:
            plan.export_keys[name] = sorted(set(expired))
    return plan


def apply_retention(
    plan: RetentionPlan, lake: Destination, managed: dict[str, tuple[Destination, list[str]]]
) -> None:
    for key in plan.lake_keys:
        lake.delete(key)
    for name, keys in plan.export_keys.items():
        destination = managed[name][0]
        # Manifests first: a manifest never lists a file that is already gone.
        for key in sorted(keys, key=lambda k: "_manifests/" not in k):
            destination.delete(key)
