"""`raw_events`: one UTC hour of landing files, validated and typed, in the lake."""

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import polars as pl

from exporter_pipeline.defs.partitions import backfill_policy_accepted
from exporter_pipeline.defs.resources import LakeResource
from exporter_pipeline.events.ingest import IngestReport, ingest_hour
from exporter_pipeline.events.schema import EVENT_SCHEMA
from exporter_pipeline.lake import hourly_key
from exporter_pipeline.windows import hour_of, partition_key_of

# A backfill of raw hours runs a day of hours per run: few runs, yet days in parallel.
RAW_BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=24)

RAW_EVENTS_CHECKS = [
    dg.AssetCheckSpec(
        "unique_event_id",
        asset="raw_events",
        description="No event_id appears twice within an hour.",
    ),
    dg.AssetCheckSpec(
        "event_time_inside_hour",
        asset="raw_events",
        description="Every event_time lies inside its partition hour.",
    ),
    dg.AssetCheckSpec(
        "tenant_not_null", asset="raw_events", description="Every event belongs to a tenant."
    ),
    dg.AssetCheckSpec(
        "landing_files_readable",
        asset="raw_events",
        description="Every landing file of the hour was read whole (a warning: the rest was).",
    ),
]


def _hour_facts(frame: pl.LazyFrame, start: datetime, end: datetime) -> dict[str, int]:
    """Facts the checks judge, read back from the written file, not from the ingest report."""
    facts = frame.select(
        rows=pl.len(),
        unique_ids=pl.col("event_id").n_unique(),
        outside=((pl.col("event_time") < start) | (pl.col("event_time") >= end)).sum(),
        null_tenants=pl.col("tenant").null_count(),
    ).collect()
    return {name: int(facts[name][0]) for name in facts.columns}


def _summary_table(reports: list[IngestReport]) -> dg.TableMetadataValue:
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "hour": f"{r.hour:%Y-%m-%d %H:00}",
                    "rows_in": r.rows_in,
                    "rows_written": r.rows_written,
                    "duplicates": r.duplicates,
                    "quarantined": r.quarantined,
                    "files": len(r.landing_files),
                }
            )
            for r in reports
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("hour", "string"),
                dg.TableColumn("rows_in", "int"),
                dg.TableColumn("rows_written", "int"),
                dg.TableColumn("duplicates", "int"),
                dg.TableColumn("quarantined", "int"),
                dg.TableColumn("files", "int"),
            ]
        ),
    )


def _merge_tenants(reports: list[IngestReport]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for report in reports:
        for tenant, rows in report.rows_by_tenant.items():
            merged[tenant] = merged.get(tenant, 0) + rows
    return dict(sorted(merged.items()))


def content_version(hashes: list[str]) -> dg.DataVersion:
    """A data version from the written files' contents: unchanged data, unchanged version.

    Re-ingesting an hour to the same bytes leaves downstream exports fresh; late data
    changes the hash and marks them stale. (A range run shares one version for its hours.)
    """
    return dg.DataVersion(hashlib.sha256("".join(hashes).encode()).hexdigest()[:24])


def column_schema(schema: pl.Schema) -> dg.TableSchema:
    """A polars schema as the column table the Dagster UI shows on an asset."""
    return dg.TableSchema(columns=[dg.TableColumn(n, str(t)) for n, t in schema.items()])


def build_raw_events_asset(partitions_def: dg.HourlyPartitionsDefinition) -> dg.AssetsDefinition:
    with backfill_policy_accepted():
        decorate = dg.asset(
            name="raw_events",
            partitions_def=partitions_def,
            backfill_policy=RAW_BACKFILL_POLICY,
            group_name="events",
            kinds={"parquet", "polars"},
            check_specs=RAW_EVENTS_CHECKS,
            code_version="1",
            metadata={"dagster/column_schema": column_schema(EVENT_SCHEMA)},
        )

    @decorate
    def raw_events(
        context: dg.AssetExecutionContext, lake: LakeResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        """Player and CDN events of one UTC hour: validated, typed, deduplicated by event_id."""
        landing, store = lake.landing(), lake.lake()
        reports: list[IngestReport] = []
        facts = {"rows": 0, "unique_ids": 0, "outside": 0, "null_tenants": 0}
        keys = context.partition_keys
        for number, partition_key in enumerate(keys, start=1):
            hour = hour_of(partition_key)
            report = ingest_hour(hour, landing, store)
            reports.append(report)
            context.log.info(
                f"[{number}/{len(keys)}] {partition_key}: {report.rows_in} in, "
                f"{report.rows_written} written, {report.duplicates} duplicates, "
                f"{report.quarantined} quarantined {report.reasons or ''}"
                if report.landing_files
                else f"[{number}/{len(keys)}] {partition_key}: no landing files, "
                "materialized as an empty hour"
            )
            for fault in report.unreadable_files:
                context.log.warning(f"{partition_key}: {fault.name} not read whole: {fault.reason}")
            with store.local_copy(hourly_key("raw_events", hour)) as path:
                hour_facts = _hour_facts(pl.scan_parquet(path), hour, hour + timedelta(hours=1))
            for name, value in hour_facts.items():
                facts[name] += value

        yield dg.MaterializeResult(
            data_version=content_version([r.sha256 for r in reports]),
            metadata=_run_metadata(reports, store.uri("raw_events")),
        )
        yield from _checks(facts)
        yield _readable_check(reports)

    return raw_events


def _run_metadata(reports: list[IngestReport], lake_uri: str) -> dict[str, Any]:
    empty = [partition_key_of(r.hour) for r in reports if not r.landing_files]
    reasons: dict[str, int] = {}
    for report in reports:
        for reason, count in report.reasons.items():
            reasons[reason] = reasons.get(reason, 0) + count
    return {
        "rows_in": sum(r.rows_in for r in reports),
        "rows_written": sum(r.rows_written for r in reports),
        "duplicates": sum(r.duplicates for r in reports),
        "quarantined": sum(r.quarantined for r in reports),
        "unreadable": sum(r.unreadable for r in reports),
        "unreadable_files": dg.MetadataValue.json(
            [f.as_dict() for r in reports for f in r.unreadable_files]
        ),
        "bytes_written": sum(r.bytes_written for r in reports),
        "landing_files": sum(len(r.landing_files) for r in reports),
        "hours": len(reports),
        # An hour without landing files is written as an empty hour (0 rows), so the
        # windows holding it can be exported; these say which hours were empty.
        "empty_hours": len(empty),
        "empty_hour_keys": dg.MetadataValue.json(empty),
        "quarantine_reasons": dg.MetadataValue.json(reasons),
        "rows_by_tenant": dg.MetadataValue.json(_merge_tenants(reports)),
        "per_hour": _summary_table(reports),
        "lake_uri": dg.MetadataValue.path(lake_uri),
    }


def _checks(facts: dict[str, int]) -> Iterator[dg.AssetCheckResult]:
    duplicates_left = facts["rows"] - facts["unique_ids"]
    yield dg.AssetCheckResult(
        check_name="unique_event_id",
        passed=duplicates_left == 0,
        metadata={"repeated_event_ids": duplicates_left},
    )
    yield dg.AssetCheckResult(
        check_name="event_time_inside_hour",
        passed=facts["outside"] == 0,
        metadata={"rows_outside": facts["outside"]},
    )
    yield dg.AssetCheckResult(
        check_name="tenant_not_null",
        passed=facts["null_tenants"] == 0,
        metadata={"rows_without_tenant": facts["null_tenants"]},
    )


def _readable_check(reports: list[IngestReport]) -> dg.AssetCheckResult:
    """Fails, as a warning, naming each landing file that could not be read whole."""
    names = [f.name for r in reports for f in r.unreadable_files]
    return dg.AssetCheckResult(
        check_name="landing_files_readable",
        passed=not names,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"not read whole: {', '.join(names)}" if names else None,
        metadata={"unreadable_files": dg.MetadataValue.json(names)},
    )
