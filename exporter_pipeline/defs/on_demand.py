"""`export_on_demand`: seed 000's "create export task" as a job launched from the launchpad.

The run config is the request (name, tenant, start/end time, data set, columns,
filters, format, output, path, ...). It is checked by the same rules as a definition
file entry; the output must be one declared in the definitions file, so credentials
stay in the environment and never appear in run config.
"""

from datetime import datetime

import dagster as dg
from pydantic import Field, ValidationError

from exporter_pipeline.defs.resources import LakeResource, OutputsResource
from exporter_pipeline.defs.run_limits import max_runtime_tags
from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.exports.execution import export_window, throttled
from exporter_pipeline.exports.spec import DefinitionsFile, ExportDefinition, describe_errors
from exporter_pipeline.settings import Settings
from exporter_pipeline.windows import parse_utc


class OnDemandExportConfig(dg.Config):
    """One export task: a tenant's data set over [start_time, end_time) to an output."""

    name: str = "on_demand"
    tenant: str
    start_time: str
    end_time: str
    dataset: str = "raw"
    columns: list[str] | None = None
    filters: dict[str, list[str]] = Field(default_factory=dict)
    format: str = "csv"
    compression: str | None = None
    output: str
    path: str = "on-demand"
    max_file_bytes: int | None = None
    metrics: list[str] | None = None
    interval: str | None = None
    dimensions: list[str] | None = None
    content_type: str | None = None
    content_ids: list[str] | None = None
    inclusive_range: bool = True
    list_unfinished_segments: bool = True
    viewer_identifier: str | None = None
    query: str | None = None
    # A query task's own caps (memory_mb, timeout_s, max_rows, temp_mb); each only lowers
    # the operator's.
    limits: dict[str, float] | None = None


# Where a definition rule points, as the request's own config field.
CONFIG_POINTERS = {
    "/start": "/start_time",
    "/end": "/end_time",
    "/output/name": "/output",
    "/output/path": "/path",
}


def request_to_definition(
    config: OnDemandExportConfig,
) -> tuple[ExportDefinition, datetime, datetime]:
    """The request as an export definition plus its exact window; DefinitionError if invalid."""
    try:
        start, end = parse_utc(config.start_time), parse_utc(config.end_time)
    except ValueError as error:
        raise DefinitionError(
            f"export task {config.name!r}: start_time/end_time: {error}"
        ) from None
    body = {
        key: value
        for key, value in config.model_dump().items()
        if key not in ("start_time", "end_time", "output", "path")
        and value not in (None, {}, [])
        and not (key in ("inclusive_range", "list_unfinished_segments") and value is True)
    }
    body.update(
        cadence="hourly",
        start=start.replace(minute=0, second=0, microsecond=0),
        output={"name": config.output, "path": config.path},
    )
    try:
        export = ExportDefinition.model_validate(
            body, context={"window_end": end, "window_start": start}
        )
    except ValidationError as error:
        raise DefinitionError(
            "\n".join(
                f"export task {config.name!r} ({CONFIG_POINTERS.get(pointer, pointer)}): {message}"
                for pointer, message in describe_errors(error, ())
            )
        ) from None
    if end <= start:
        raise DefinitionError(
            f"export task {config.name!r} (/end_time): end_time {end:%Y-%m-%d %H:%M}"
            f" is before start_time {start:%Y-%m-%d %H:%M}"
        )
    return export, start, end


def build_on_demand_job(
    definitions: DefinitionsFile, settings: Settings | None = None
) -> dg.JobDefinition:
    limit = (settings or Settings.from_env()).export_max_runtime_s

    @dg.op(
        name="export_task",
        tags={"kind": "export"},
    )
    def export_task(
        context: dg.OpExecutionContext,
        config: OnDemandExportConfig,
        lake: LakeResource,
        outputs: OutputsResource,
    ) -> dg.Output[dict]:
        """Run one on-demand export task and publish its files and manifest."""
        export, start, end = request_to_definition(config)
        if export.output.name not in definitions.outputs:
            known = ", ".join(sorted(definitions.outputs)) or "none declared"
            raise DefinitionError(
                f"export task {config.name!r} (/output): unknown output "
                f"{export.output.name!r} (outputs: {known})"
            )
        destination = outputs.destination(export.output.name)

        def progress(done: int, total: int, label: str) -> None:
            context.log.info(f"{done}/{total} files ({done / total:.0%}), {label}")

        result = export_window(
            export, start, end, lake.lake(), destination, context.run_id, throttled(progress)
        )
        summary = {
            "manifest": result.manifest_key,
            "rows": result.rows,
            "bytes": result.bytes,
            "files": [f.key for f in result.files],
        }
        return dg.Output(
            summary,
            metadata={
                "rows": result.rows,
                "bytes": result.bytes,
                "files": len(result.files),
                "duration_s": round(result.seconds, 3),
                "manifest": result.manifest_key,
                "output_uri": dg.MetadataValue.path(destination.uri(export.output.path)),
            },
        )

    @dg.job(name="export_on_demand", description=__doc__, tags=max_runtime_tags(limit))
    def export_on_demand() -> None:
        export_task()

    return export_on_demand
