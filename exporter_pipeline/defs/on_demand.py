"""`export_on_demand`: seed 000's "create export task" as a job launched from the launchpad.

The run config is the request (name, tenant, start/end time, data set, columns,
filters, format, output, path, ...). It is checked by the same rules as a definition
file entry; the output must be one declared in the definitions file, so credentials
stay in the environment and never appear in run config.
"""

from datetime import datetime
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

import dagster as dg
from pydantic import BaseModel, create_model

from exporter_pipeline.defs.progress import run_progress
from exporter_pipeline.defs.resources import LakeResource, OutputsResource
from exporter_pipeline.defs.run_limits import max_runtime_tags
from exporter_pipeline.errors import DefinitionError, ExporterError
from exporter_pipeline.exports.execution import export_window
from exporter_pipeline.exports.manifest import iso
from exporter_pipeline.exports.spec import DefinitionsFile, ExportDefinition
from exporter_pipeline.exports.task_request import (
    NOT_REQUESTED,
    PER_DATASET_DEFAULT,
    definition_of_request,
    refuse_export_location,
)
from exporter_pipeline.exports.tenant_data import tenant_has_events
from exporter_pipeline.exports.validation import AnyExport
from exporter_pipeline.settings import Settings
from exporter_pipeline.shards import Shard, wrong_location
from exporter_pipeline.store.tenants import knows_tenant

# The run tag of a task refused on its request, before it wrote anything.
REFUSED_TAG = "exporter/refused"


class OnDemandRequest(dg.Config):
    """One export task: a tenant's data set over [start_time, end_time) to an output."""

    name: str = "on_demand"
    tenant: str
    start_time: str
    end_time: str
    dataset: str = "raw"
    output: str
    path: str = "on-demand"


def _loose(annotation: Any) -> Any:
    """A definition key's type as launchpad config: the shape only; the values are checked
    by the definition model, so a request gets the same messages as a file."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _loose(args[0])
    if origin is Literal:
        return type(args[0])
    if origin in (Union, UnionType):
        loose = [_loose(a) for a in args]
        return Union[tuple(loose)]  # noqa: UP007  # built from a list of types
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        # A nested key (limits) is a mapping of numbers in config.
        return dict[str, float]
    return annotation


def _request_fields() -> dict[str, Any]:
    """Every definition key of every data set a request may set, with its default."""
    fields: dict[str, Any] = {}
    for key, info in AnyExport.model_fields.items():
        if key in OnDemandRequest.model_fields or key in NOT_REQUESTED:
            continue
        if key in PER_DATASET_DEFAULT:
            fields[key] = (_loose(info.annotation) | None, None)
            continue
        default = info.get_default(call_default_factory=True)
        fields[key] = (_loose(info.annotation), default)
    return fields


if TYPE_CHECKING:
    OnDemandExportConfig = OnDemandRequest
else:
    # The request's keys plus every key of the definition model, derived from it.
    OnDemandExportConfig = create_model(
        "OnDemandExportConfig", __base__=OnDemandRequest, **_request_fields()
    )


def request_to_definition(
    config: OnDemandRequest,
) -> tuple[ExportDefinition, datetime, datetime]:
    """The request as an export definition plus its exact window; DefinitionError if invalid."""
    return definition_of_request(config.model_dump())


def _no_data(export: ExportDefinition, start: datetime, end: datetime) -> str:
    return f"no data for tenant {export.tenant!r} from {iso(start)} to {iso(end)}"


def _refuse_unusable(
    name: str,
    export: ExportDefinition,
    start: datetime,
    end: datetime,
    definitions: DefinitionsFile,
    lake: LakeResource,
    outputs: OutputsResource,
) -> None:
    """DefinitionError for an output the task may not use (or a path where a definition
    export writes), or for a tenant that neither
    the definitions store nor the lake's window knows (a typo would otherwise succeed with
    header-only files)."""
    if export.output.name not in definitions.outputs:
        known = ", ".join(sorted(definitions.outputs)) or "none declared"
        raise DefinitionError(
            f"export task {name!r} (/output): unknown output "
            f"{export.output.name!r} (outputs: {known})"
        )
    outputs.owned_output(export.output.name, export.tenant)
    refuse_export_location(export, definitions.outputs, definitions.exports)
    if not knows_tenant(outputs.store().engine, export.tenant) and not tenant_has_events(
        lake.lake(), export.tenant, start, end
    ):
        raise DefinitionError(
            f"export task {name!r} (/tenant): unknown tenant {export.tenant!r}: "
            "the definitions store has no export, output or API key of it and the lake "
            f"holds no event of it from {iso(start)} to {iso(end)}"
        )


def _checked(
    context: dg.OpExecutionContext,
    config: OnDemandRequest,
    definitions: DefinitionsFile,
    lake: LakeResource,
    outputs: OutputsResource,
    shard: Shard | None,
) -> tuple[ExportDefinition, datetime, datetime]:
    """The task's export and window; a refused request tags the run `REFUSED_TAG`. A
    tenant of another shard is refused: only its own shard knows its exports' paths."""
    try:
        export, start, end = request_to_definition(config)
        if reason := wrong_location(shard, export.tenant):
            raise DefinitionError(f"export task {config.name!r} (/tenant): {reason}")
        _refuse_unusable(config.name, export, start, end, definitions, lake, outputs)
    except (ExporterError, ValueError):
        # Refused before writing anything: the failure sensor writes no error file for
        # it (it would land at the refused output and path).
        context.instance.add_run_tags(context.run_id, {REFUSED_TAG: "request"})
        raise
    return export, start, end


def build_on_demand_job(
    definitions: DefinitionsFile, settings: Settings | None = None
) -> dg.JobDefinition:
    settings = settings or Settings.from_env()
    limit, shard = settings.export_max_runtime_s, Shard.parse(settings.shard)

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
        export, start, end = _checked(context, config, definitions, lake, outputs, shard)
        destination = outputs.destination(export.output.name)

        meter = run_progress(context, 1)
        result = export_window(
            export, start, end, lake.lake(), destination, context.run_id, meter.of_window(1)
        )
        meter.published(1)
        if not result.rows:
            context.log.warning(_no_data(export, start, end))
        if result.left:  # published; only the clean-up after the switch failed
            context.log.warning(
                f"could not remove old files {result.left}; no manifest lists them and the "
                "next run of the window removes them"
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
                "progress": 100,
                "duration_s": round(result.seconds, 3),
                "manifest": result.manifest_key,
                "output_uri": dg.MetadataValue.path(destination.uri(export.output.path)),
                **({} if result.rows else {"note": _no_data(export, start, end)}),
            },
        )

    @dg.job(name="export_on_demand", description=__doc__, tags=max_runtime_tags(limit))
    def export_on_demand() -> None:
        export_task()

    return export_on_demand
