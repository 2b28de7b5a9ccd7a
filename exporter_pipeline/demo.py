"""The README's first command: a day of events for two tenants, ingested and derived."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from exporter_pipeline.definitions import build_definitions
from exporter_pipeline.events.simulate import simulate
from exporter_pipeline.lake import LakeResource, hourly_key
from exporter_pipeline.partitions import partition_key_of
from exporter_pipeline.settings import Settings

DEMO_TENANTS = ["acme", "globex"]


def run_demo(day: datetime, events_per_hour: int) -> int:
    settings = Settings.from_env()
    start, end = day, day + timedelta(days=1)
    landing = Path(settings.landing_url.removeprefix("file://"))
    summary = simulate(
        landing,
        DEMO_TENANTS,
        start,
        end,
        events_per_hour,
        seed=7,
        fmt="mixed",
        malformed_rate=0.002,
        duplicate_rate=0.002,
    )
    print(
        f"simulated {summary.records} events in {len(summary.files)} landing files "
        f"({summary.malformed} malformed, {summary.duplicates} duplicates) under {landing}"
    )

    defs = build_definitions(settings)
    job = defs.resolve_implicit_global_asset_job_def()
    last_hour = end - timedelta(hours=1)
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None
    result = job.execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(),
        tags={
            "dagster/asset_partition_range_start": partition_key_of(start),
            "dagster/asset_partition_range_end": partition_key_of(last_hour),
        },
    )
    if not result.success:
        print("the demo run failed; see the log above")
        return 1

    lake = LakeResource.from_settings(settings).lake()
    print(f"\nraw hours written to {lake.uri('raw_events')} (run {result.run_id}):")
    print(
        f"{'hour (UTC)':<17} {'rows':>7} {'acme':>7} {'globex':>7} {'segments':>9} {'metrics':>8}"
    )
    total = 0
    hour = start
    while hour < end:
        with lake.local_copy(hourly_key("raw_events", hour)) as path:
            raw = pl.scan_parquet(path).group_by("tenant").len().collect()
        by_tenant = dict(zip(raw["tenant"], raw["len"], strict=True))
        derived = {}
        for dataset in ("view_segments", "delivery_metrics"):
            with lake.local_copy(hourly_key(dataset, hour)) as path:
                derived[dataset] = pl.scan_parquet(path).select(pl.len()).collect().item()
        rows = sum(by_tenant.values())
        total += rows
        print(
            f"{hour:%Y-%m-%d %H:00} {rows:>7} {by_tenant.get('acme', 0):>7} "
            f"{by_tenant.get('globex', 0):>7} {derived['view_segments']:>9} "
            f"{derived['delivery_metrics']:>8}"
        )
        hour += timedelta(hours=1)
    print(f"{'total':<17} {total:>7}")
    print("\nOpen the UI:  DAGSTER_HOME=$PWD/.dagster_home .venv/bin/dagster dev -w workspace.yaml")
    return 0
