"""Export definitions → Dagster: an asset `exports/<name>` and a job `export_<name>` each.

The asset's partitions follow the definition's cadence (UTC windows); it depends on the
lake data sets it reads, hour by hour, so re-materialising a raw hour marks the windows
holding it stale. A run of the job over one or more partitions is an *execution* per
window; its Dagster status is the execution status.
"""

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg

from exporter_pipeline.defs.late_data import INPUTS_AS_OF, inputs_as_of, late_data_condition
from exporter_pipeline.defs.partitions import backfill_policy_accepted
from exporter_pipeline.defs.progress import run_progress
from exporter_pipeline.defs.resources import LakeResource, OutputsResource
from exporter_pipeline.defs.run_limits import max_runtime_tags
from exporter_pipeline.destinations import Destination
from exporter_pipeline.exports.catalog import DATASETS
from exporter_pipeline.exports.execution import ExecutionResult, export_window
from exporter_pipeline.exports.reconcile import expected_event_rows
from exporter_pipeline.exports.run_progress import RunProgress
from exporter_pipeline.exports.spec import DefinitionsFile, ExportDefinition
from exporter_pipeline.lake import hourly_key
from exporter_pipeline.names import export_job_name, tenant_group_name
from exporter_pipeline.settings import Settings
from exporter_pipeline.windows import DAY_KEY_FORMAT, HOUR_KEY_FORMAT, hours_of

# An export job's executor and I/O manager: Dagster's in-process executor with its config
# set once, and an I/O manager with none (an export step returns no value to store). Every
# config field is part of each job's run-config schema, which Dagster builds, snapshots
# and hashes once per job: the executor's and the file I/O manager's were a third of it.
EXPORT_EXECUTOR = dg.in_process_executor.configured({}, name="in_process")
EXPORT_IO_MANAGER = dg.mem_io_manager

# Partitions per run when a range is backfilled: a 30-day daily backfill is 3 runs.
MAX_PARTITIONS_PER_RUN = {"hourly": 168, "daily": 10, "weekly": 4}

log = logging.getLogger(__name__)


def export_partitions_def(export: ExportDefinition) -> dg.TimeWindowPartitionsDefinition:
    start, end = export.start_at, export.end_at
    if export.cadence == "hourly":
        fmt = HOUR_KEY_FORMAT
        return dg.HourlyPartitionsDefinition(
            start_date=start.strftime(fmt), end_date=end.strftime(fmt) if end else None, fmt=fmt
        )
    day = DAY_KEY_FORMAT
    if export.cadence == "daily":
        return dg.DailyPartitionsDefinition(
            start_date=start.strftime(day), end_date=end.strftime(day) if end else None
        )
    # Weekly windows start on the weekday of `start` (Dagster counts Sunday as 0).
    return dg.WeeklyPartitionsDefinition(
        start_date=start.strftime(day),
        end_date=end.strftime(day) if end else None,
        day_offset=(start.weekday() + 1) % 7,
    )


def export_tags(export: ExportDefinition) -> dict[str, str]:
    return {"export": export.name, "tenant": export.tenant}


def build_export_asset(
    export: ExportDefinition, definitions: DefinitionsFile
) -> dg.AssetsDefinition:
    partitions_def = export_partitions_def(export)
    output = definitions.outputs[export.output.name]
    dataset = DATASETS[export.dataset]
    check_name = "rows_match_raw" if dataset.reconciled else "files_published"
    description = export.description or (
        f"{export.dataset} export of tenant {export.tenant} as {export.format}"
        f"{'.' + export.compression if export.compression else ''}, {export.cadence} windows, "
        f"to {export.output.name}:{export.output.path or '/'}"
    )

    with backfill_policy_accepted():
        decorate = dg.asset(
            key=["exports", export.name],
            description=description,
            partitions_def=partitions_def,
            deps=[
                dg.AssetDep(source, partition_mapping=dg.TimeWindowPartitionMapping())
                for source in dataset.sources
            ],
            backfill_policy=dg.BackfillPolicy.multi_run(MAX_PARTITIONS_PER_RUN[export.cadence]),
            # One group per tenant: at thousands of exports the catalog is browsed by tenant.
            group_name=tenant_group_name(export.tenant),
            kinds={export.format, output.type},
            tags={**export_tags(export), "dataset": export.dataset, "cadence": export.cadence},
            owners=[f"team:{export.tenant}"],
            op_tags=export_tags(export),
            pool=f"tenant_{export.tenant}",
            automation_condition=late_data_condition() if export.reexport_late_data else None,
            check_specs=[dg.AssetCheckSpec(check_name, asset=["exports", export.name])],
            code_version="1",
            metadata={
                "dataset": export.dataset,
                "tenant": export.tenant,
                "format": export.format,
                "output": f"{export.output.name}:{export.output.path}",
            },
        )

    @decorate
    def export_asset(
        context: dg.AssetExecutionContext, lake: LakeResource, outputs: OutputsResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        as_of = inputs_as_of(context.instance)  # before the first read of the lake
        store = lake.lake()
        destination = outputs.destination(export.output.name)
        meter = run_progress(context, len(context.partition_keys))
        results = [
            _export_one_window(context, export, partitions_def, key, store, destination, meter)
            for key in context.partition_keys
        ]
        yield dg.MaterializeResult(metadata=_run_metadata(results, destination, as_of))
        yield _check(export, check_name, results, store, destination)

    return export_asset


def _export_one_window(
    context: dg.AssetExecutionContext,
    export: ExportDefinition,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    key: str,
    store: Destination,
    destination: Destination,
    meter: RunProgress,
) -> ExecutionResult:
    """Export the window of partition `key`, reporting progress and one observation."""
    number = context.partition_keys.index(key) + 1
    window = partitions_def.time_window_for_partition_key(key)
    progress = meter.of_window(number, key)
    result = export_window(
        export, window.start, window.end, store, destination, context.run_id, progress
    )
    meter.published(number, key)
    # One observation per partition, so the UI plots rows per window even when a run
    # covers a range (a materialization's metadata is shared by the range).
    context.log_event(
        dg.AssetObservation(
            asset_key=context.asset_key,
            partition=key,
            metadata={
                "rows": result.rows,
                "dagster/row_count": result.rows,
                "bytes": result.bytes,
                "files": len(result.files),
                "manifest": result.manifest_key,
                "manifest_uri": manifest_link(destination.uri(result.manifest_key)),
            },
        )
    )
    context.log.info(
        f"window {key}: {result.rows} rows in {len(result.files)} files, "
        f"{result.bytes} bytes, manifest {result.manifest_key}"
        + (f", removed stale {result.removed}" if result.removed else "")
    )
    if result.left:  # the window is published; only the clean-up after the switch failed
        context.log.warning(
            f"window {key}: could not remove old files {result.left}; no manifest lists "
            "them and the next run of the window removes them"
        )
    return result


def manifest_link(uri: str) -> dg.MetadataValue:
    """A manifest's address as a link the UI opens: a URL (`s3://`, `gs://`...) or a path."""
    return dg.MetadataValue.url(uri) if "://" in uri else dg.MetadataValue.path(uri)


def _run_metadata(
    results: list[ExecutionResult], destination: Destination, as_of: int
) -> dict[str, Any]:
    """A run's metadata. A range run's materialization is recorded for every window of the
    range, so it carries no `dagster/row_count` (Dagster reads it per partition): each
    window's own count is on its observation; `rows` is the range's. `as_of`: where the
    event log stood when the run began to read (an hour materialized later may not be in
    what it exported, late_data.py)."""
    rows = sum(r.rows for r in results)
    metadata: dict[str, Any] = {
        "rows": rows,
        "bytes": sum(r.bytes for r in results),
        "files": sum(len(r.files) for r in results),
        "windows": len(results),
        # The run's progress (its `progress` tag moved with every file): done.
        "progress": 100,
        "duration_s": round(sum(r.seconds for r in results), 3),
        "output_uri": dg.MetadataValue.path(destination.uri()),
        INPUTS_AS_OF: as_of,
    }
    if len(results) == 1:
        metadata["dagster/row_count"] = rows
        metadata["manifest"] = results[0].manifest_key
        metadata["manifest_uri"] = manifest_link(destination.uri(results[0].manifest_key))
        metadata["file_keys"] = dg.MetadataValue.json([f.key for f in results[0].files])
    return metadata


def _check(
    export: ExportDefinition,
    name: str,
    results: list[ExecutionResult],
    store: object,
    destination: object,
) -> dg.AssetCheckResult:

    assert isinstance(store, Destination) and isinstance(destination, Destination)
    if name == "files_published":
        present = {o.key: o.size for o in destination.list(export.output.path)}
        missing = [f.key for r in results for f in r.files if present.get(f.key) != f.bytes]
        return dg.AssetCheckResult(
            check_name=name,
            passed=not missing,
            metadata={"missing_or_changed": dg.MetadataValue.json(missing)},
        )
    expected = exported = 0
    with contextlib.ExitStack() as stack:
        for result in results:
            files = [
                stack.enter_context(store.local_copy(hourly_key("raw_events", hour)))
                for hour in hours_of(result.start, result.end)
            ]
            expected += expected_event_rows(export, files, result.start, result.end)
            exported += result.rows
    return dg.AssetCheckResult(
        check_name=name,
        passed=expected == exported,
        metadata={"expected_rows": expected, "exported_rows": exported},
    )


def build_export_job(
    export: ExportDefinition,
    asset: dg.AssetsDefinition,
    resources: Mapping[str, Any],
    settings: Settings | None = None,
) -> dg.JobDefinition:
    """The job `export_<name>`, resolved against a `Definitions` holding only its asset.

    Dagster resolves an asset job by walking every asset of the `Definitions` it is given,
    so N export jobs resolved together cost N² (4,000 exports: 69 s). Resolved alone, a job
    costs the same whatever the number of other exports; the code location then takes it
    as a finished job beside the same asset.
    """
    limit = (settings or Settings.from_env()).export_max_runtime_s
    job = dg.define_asset_job(
        name=export_job_name(export.name),
        selection=dg.AssetSelection.assets(["exports", export.name]),
        tags={**export_tags(export), **max_runtime_tags(limit)},
        description=f"Executions of export {export.name} (tenant {export.tenant}).",
    )
    alone = dg.Definitions(
        assets=[asset],
        jobs=[job],
        resources={**resources, "io_manager": EXPORT_IO_MANAGER},
        executor=EXPORT_EXECUTOR,
    )
    return alone.resolve_job_def(job.name)
