"""Retention (seed 002): raw data 90 days, aggregates 2 years, export files 7 days.

Lake data sets are judged by the hour they hold: raw events, their quarantine and view
segments (which name viewers) are raw data; delivery metrics are aggregates. Files the
product wrote into managed outputs (definition exports, on-demand tasks, user data
exports, their manifests and error files) are judged by when they were written. A dry
run lists what would go and removes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from exporter_pipeline.destinations import Destination
from exporter_pipeline.errors import reason_of
from exporter_pipeline.lake import hourly_key, lake_hours
from exporter_pipeline.privacy.published import OutputContents, read_output

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
    # Outputs that could not be read (why): the others are planned all the same.
    unreachable: dict[str, str] = field(default_factory=dict)

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
    holds: Callable[[str], bool] = lambda _: True,
) -> RetentionPlan:
    """What is past its age: lake hours by their hour's end, export files by write time.

    `managed` maps an output name to its destination and the definition export paths
    written there. Every file under those paths is judged, and so is everything the
    product published anywhere else in the output (on-demand tasks, user data exports):
    each manifest and error file of a tenant `holds` accepts, and the files a manifest
    lists. A manifest is judged by its own write time and takes the files it lists
    when no other manifest still lists them, so none lists a file already gone.
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
        try:
            contents = read_output(destination)
        # One tenant's output down (or its credentials gone) never stops the others'.
        except Exception as error:
            plan.unreachable[name] = reason_of(error)
            continue
        expired = _expired_in_output(contents, paths, now - policy.export_files, holds)
        if expired:
            plan.export_keys[name] = sorted(expired)
    return plan


def _expired_in_output(
    contents: OutputContents, paths: list[str], cutoff: datetime, holds: Callable[[str], bool]
) -> set[str]:
    """Manifests and error files of held tenants by their own write time; an expired
    manifest takes the files it lists once every manifest listing them has expired (a
    re-run keeps an unchanged file under its old name and write time: the new manifest
    keeps it); other files under a definition's path by their own write time."""
    written = {o.key: o.modified for o in contents.objects}

    def past(key: str) -> bool:
        return key in written and written[key] <= cutoff

    # Every manifest counts as keeping its files, another location's tenant's too.
    listers: dict[str, list[str]] = {}
    for item in contents.manifests:
        for listed in item.manifest.files:
            listers.setdefault(listed.key, []).append(item.key)
    expired = {key for key, tenant in contents.errors if holds(tenant) and past(key)}
    for item in contents.manifests:
        if holds(item.manifest.tenant) and past(item.key):
            expired.add(item.key)
            expired |= {f.key for f in item.manifest.files if all(past(m) for m in listers[f.key])}
    prefixes = tuple(f"{p.strip('/')}/" if p.strip("/") else "" for p in set(paths))
    if prefixes:
        manifests = {item.key for item in contents.manifests}
        expired |= {
            key
            for key in written
            if key.startswith(prefixes)
            and key not in listers
            and key not in manifests
            and past(key)
        }
    return {key for key in expired if key in written}


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
