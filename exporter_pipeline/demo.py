"""The README's first command: a day of events for two tenants, ingested and derived.

The terminal shows one progress bar per phase and the summary tables; Dagster's event
logs of the runs go to a file under DAGSTER_HOME (printed once), and the UI shows them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from exporter_pipeline.definitions import build_definitions
from exporter_pipeline.defs.resources import LakeResource
from exporter_pipeline.defs.run_log import RunLog
from exporter_pipeline.destinations import Destination
from exporter_pipeline.events.simulate import SimulationSummary, simulate
from exporter_pipeline.exports.spec import ExportDefinition
from exporter_pipeline.lake import hourly_key
from exporter_pipeline.names import export_job_name
from exporter_pipeline.progress import Advance, Progress
from exporter_pipeline.settings import Settings
from exporter_pipeline.windows import hours_of, partition_key_of

DEMO_TENANTS = ["acme", "globex"]
# The lake assets of the ingest run, each logging `[k/N]` once per hour it wrote.
LAKE_ASSETS = ("raw_events", "view_segments", "delivery_metrics")
HOUR_DONE = re.compile(r" - \[\d+/\d+\] ")


@dataclass(frozen=True)
class ExportLine:
    """One row of the exports table: what a run of the export wrote, or why it was not run."""

    name: str
    dataset: str
    text: str


def run_log_path() -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home")
    return home / "logs" / f"demo-{datetime.now():%Y%m%d-%H%M%S}.log"


def run_demo(day: datetime, events_per_hour: int) -> int:
    settings = Settings.from_env()
    start, end = day, day + timedelta(days=1)
    progress = Progress()
    run_log = RunLog(run_log_path())
    progress.print(f"Dagster's event logs of the demo's runs: {run_log.path}")
    try:
        with progress.phase("set up", 1) as advance:
            defs = build_definitions(settings, loggers=run_log.loggers())
            instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None
            instance = instance or dg.DagsterInstance.ephemeral()
            advance(1)
        with progress.phase("simulate", 24) as advance:
            simulated = _simulate_day(settings, start, end, events_per_hour, advance)
        with progress.phase("ingest the hours", 24 * len(LAKE_ASSETS)) as advance:
            run_log.listen = lambda message: advance(1) if HOUR_DONE.search(message) else None
            run_id = _ingest_day(defs, instance, start, end, run_log)
        if run_id is None:
            progress.print(f"the demo's ingest run failed; see {run_log.path}")
            return 1
        exported = _run_exports(defs, instance, start, progress, run_log)
    finally:
        run_log.close()
    _print_simulated(simulated, settings)
    _print_hours(LakeResource.from_settings(settings).lake(), start, end, run_id)
    _print_exports(exported, start)
    if any(line.text.startswith("FAILED") for line in exported):
        return 1
    _print_api_key(settings, start, end)
    print("\nOpen the UI:  DAGSTER_HOME=$PWD/.dagster_home .venv/bin/dagster dev -w workspace.yaml")
    return 0


def _print_api_key(settings: Settings, start: datetime, end: datetime) -> None:
    """A new API key of the first demo tenant, and a request for the day's metrics that
    works once `exporter-pipeline api` serves (it reads the lake; no Dagster needed)."""
    from exporter_pipeline.store.api_keys import create_key
    from exporter_pipeline.store.store import DefinitionsStore

    tenant = DEMO_TENANTS[0]
    _record, key = create_key(DefinitionsStore.from_settings(settings).engine, tenant)
    since, until = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    url = (
        f"{settings.api_url}/v1/metrics?metrics=played,rebuffered,sessions&interval=1h"
        f"&dimensions=country.code&from={since}&to={until}&format=csv"
    )
    print("\nThe HTTP API:  DAGSTER_HOME=$PWD/.dagster_home .venv/bin/exporter-pipeline api")
    print(f"API key of {tenant} (shown once): {key}")
    print(f"curl -sH 'Authorization: Bearer {key}' '{url}'")


def _simulate_day(
    settings: Settings, start: datetime, end: datetime, per_hour: int, advance: Advance
) -> SimulationSummary:
    return simulate(
        Path(settings.landing_url.removeprefix("file://")),
        DEMO_TENANTS,
        start,
        end,
        per_hour,
        seed=7,
        fmt="mixed",
        malformed_rate=0.002,
        duplicate_rate=0.002,
        on_hour=lambda _hour: advance(1),
    )


def _print_simulated(summary: SimulationSummary, settings: Settings) -> None:
    landing = Path(settings.landing_url.removeprefix("file://"))
    print(
        f"\nsimulated {summary.records} events in {len(summary.files)} landing files "
        f"({summary.malformed} malformed, {summary.duplicates} duplicates) under {landing}"
    )


def _ingest_day(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    start: datetime,
    end: datetime,
    run_log: RunLog,
) -> str | None:
    """One run over the day's hours of the raw and derived assets; its id, None if failed."""
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey(k) for k in LAKE_ASSETS}
    )
    result = job.execute_in_process(
        run_config=run_log.run_config(),
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": partition_key_of(start),
            "dagster/asset_partition_range_end": partition_key_of(end - timedelta(hours=1)),
        },
    )
    return result.run_id if result.success else None


def _print_hours(lake: Destination, start: datetime, end: datetime, run_id: str) -> None:
    print(f"\nraw hours written to {lake.uri('raw_events')} (run {run_id}):")
    print(
        f"{'hour (UTC)':<17} {'rows':>7} {'acme':>7} {'globex':>7} {'segments':>9} {'metrics':>8}"
    )
    total = 0
    for hour in hours_of(start, end):
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
    print(f"{'total':<17} {total:>7}")


def _run_exports(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    day: datetime,
    progress: Progress,
    run_log: RunLog,
) -> list[ExportLine]:
    """Run every daily and hourly export of the definitions store for the demo day; stop
    at the first that fails."""
    from exporter_pipeline.store.location import load_definitions

    # The store the code location loaded (its first load applied EXPORTER_EXPORTS_FILE).
    exports = load_definitions(Settings.from_env()).exports
    lines: list[ExportLine] = []
    with progress.phase("run the exports", len(exports)) as advance:
        run_log.listen = lambda _message: None
        for export in exports:
            line = _run_export(defs, instance, day, export, run_log)
            lines.append(ExportLine(export.name, export.dataset, line))
            advance(1)
            if line.startswith("FAILED"):
                lines[-1] = ExportLine(export.name, "", f"FAILED: see {run_log.path}")
                break
    return lines


def _run_export(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    day: datetime,
    export: ExportDefinition,
    run_log: RunLog,
) -> str:
    """One export's run over the demo day: its files, rows and manifest, as a table cell."""
    if export.cadence == "weekly" or export.start_at > day:
        return f" (skipped: {export.cadence} window needs more than the demo day)"
    job = defs.resolve_job_def(export_job_name(export.name))
    if export.cadence == "daily":
        tags = {"dagster/partition": f"{day:%Y-%m-%d}"}
    else:
        tags = {
            "dagster/asset_partition_range_start": partition_key_of(day),
            "dagster/asset_partition_range_end": partition_key_of(day + timedelta(hours=23)),
        }
    result = job.execute_in_process(
        run_config=run_log.run_config(), instance=instance, tags=tags, raise_on_error=False
    )
    if not result.success:
        return "FAILED"
    materialization = result.get_asset_materialization_events()[0].materialization
    meta = {k: v.value for k, v in materialization.metadata.items()}
    manifest = meta.get("manifest", f"{meta['windows']} windows")
    return f"{meta['files']:>5} {meta['rows']:>7}  {manifest}"


def _print_exports(lines: list[ExportLine], day: datetime) -> None:
    print(f"\nexports of the definitions store for {day:%Y-%m-%d}:")
    print(f"{'export':<22} {'dataset':<8} {'files':>5} {'rows':>7}  manifest")
    for line in lines:
        print(f"{line.name:<22} {line.dataset:<8} {line.text}")
