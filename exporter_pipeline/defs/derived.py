"""Hourly derived assets: each reads its raw hour from the lake and writes its own file."""

import tempfile
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import polars as pl

from exporter_pipeline.defs.events import RAW_BACKFILL_POLICY, column_schema, content_version
from exporter_pipeline.defs.partitions import backfill_policy_accepted
from exporter_pipeline.defs.resources import LakeResource
from exporter_pipeline.derived.delivery_metrics import DELIVERY_METRICS_SCHEMA, delivery_metrics
from exporter_pipeline.derived.view_segments import VIEW_SEGMENT_SCHEMA, view_segments
from exporter_pipeline.lake import hourly_key, write_hourly
from exporter_pipeline.windows import hour_of

Transform = Callable[[pl.LazyFrame], pl.LazyFrame]


def build_hourly_derived_asset(
    name: str,
    transform: Transform,
    schema: pl.Schema,
    description: str,
    partitions_def: dg.HourlyPartitionsDefinition,
) -> dg.AssetsDefinition:
    with backfill_policy_accepted():
        decorate = dg.asset(
            name=name,
            description=description,
            deps=["raw_events"],
            partitions_def=partitions_def,
            backfill_policy=RAW_BACKFILL_POLICY,
            group_name="derived",
            kinds={"parquet", "polars"},
            code_version="1",
            metadata={"dagster/column_schema": column_schema(schema)},
        )

    @decorate
    def hourly_derived(
        context: dg.AssetExecutionContext, lake: LakeResource
    ) -> dg.MaterializeResult:
        store = lake.lake()
        rows = size = 0
        hashes = []
        keys = context.partition_keys
        for number, partition_key in enumerate(keys, start=1):
            hour = hour_of(partition_key)
            with (
                tempfile.TemporaryDirectory(prefix=f"exporter-{name}-") as tmp,
                store.local_copy(hourly_key("raw_events", hour)) as raw,
            ):
                key, hour_rows, hour_bytes, digest = write_hourly(
                    store, name, hour, transform(pl.scan_parquet(raw)), Path(tmp)
                )
            rows += hour_rows
            hashes.append(digest)
            size += hour_bytes
            context.log.info(f"[{number}/{len(keys)}] {partition_key}: {hour_rows} rows → {key}")
        return dg.MaterializeResult(
            data_version=content_version(hashes),
            metadata={
                "rows": rows,
                "bytes": size,
                "hours": len(keys),
                "lake_uri": dg.MetadataValue.path(store.uri(name)),
            },
        )

    return hourly_derived


def build_derived_assets(
    partitions_def: dg.HourlyPartitionsDefinition,
) -> list[dg.AssetsDefinition]:
    return [
        build_hourly_derived_asset(
            "view_segments",
            view_segments,
            VIEW_SEGMENT_SCHEMA,
            "View segments of one hour (seed 003 views): one row per continuous viewing.",
            partitions_def,
        ),
        build_hourly_derived_asset(
            "delivery_metrics",
            delivery_metrics,
            DELIVERY_METRICS_SCHEMA,
            "Per-minute delivery counters and sessions by tenant and dimensions (seed 001).",
            partitions_def,
        ),
    ]
