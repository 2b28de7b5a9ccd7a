"""The one `Definitions` of the code location: assembles the pieces, decides nothing."""

import dagster as dg

from exporter_pipeline.defs.delivery import build_delivery
from exporter_pipeline.defs.derived import build_derived_assets
from exporter_pipeline.defs.events import build_raw_events_asset
from exporter_pipeline.defs.exports import build_export_asset, build_export_job
from exporter_pipeline.defs.failures import build_failure_sensors
from exporter_pipeline.defs.late_data import build_late_data_sensors
from exporter_pipeline.defs.loading import build_export_objects
from exporter_pipeline.defs.on_demand import build_on_demand_job
from exporter_pipeline.defs.on_demand_location import on_demand_location
from exporter_pipeline.defs.partitions import hourly_partitions_def
from exporter_pipeline.defs.privacy import build_privacy_jobs
from exporter_pipeline.defs.resources import LakeResource, OutputsResource
from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.exports.definitions_file import DefinitionsFile
from exporter_pipeline.settings import Settings
from exporter_pipeline.shards import Shard, holds, holds_lake
from exporter_pipeline.store.location import load_definitions
from exporter_pipeline.store.store import DefinitionsStore


def lake_assets(
    hours: dg.HourlyPartitionsDefinition, shard: Shard | None
) -> list[dg.AssetsDefinition]:
    if not holds_lake(shard):
        return []
    return [build_raw_events_asset(hours), *build_derived_assets(hours)]


def location_definitions(settings: Settings) -> DefinitionsFile:
    """The definitions this location holds: the store's (the first load of an empty one
    applies the exports file), leniently (a bad entry is left out and reported), of its
    shard's tenants when sharded."""
    shard = Shard.parse(settings.shard)
    definitions = load_definitions(settings)
    if shard is not None:
        definitions = definitions.of_tenants(shard.holds, with_unowned=shard.holds_lake)
    return definitions


def export_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "lake": LakeResource.from_settings(settings),
        # No output in its config: a run reads its one output from the store.
        "outputs": OutputsResource.of(settings),
    }


def build_export_job_alone(name: str, settings: Settings) -> dg.JobDefinition | None:
    """Job `name` built from its export's definition alone (what a run worker needs),
    the export judged by every rule the whole location's load applies to it (against
    the entries those rules involve, read by query). None when `name` is no export's job
    of this location or the export does not build; a DefinitionError with the load's own
    messages when the load refuses the export (a run queued before a reload that
    refused it fails, saying why)."""
    shard = Shard.parse(settings.shard)
    store = DefinitionsStore.from_settings(settings)
    definitions = store.load_job(name)
    for export in definitions.exports:
        if not holds(shard, export.tenant):
            return None
        try:
            asset = build_export_asset(export, definitions)
            return build_export_job(export, asset, export_resources(settings), settings)
        # The whole location then leaves this export out and says why, as at load.
        except Exception:
            return None
    if definitions.rejected:
        raise DefinitionError("\n".join(definitions.rejected_problems))
    return None


def build_definitions(
    settings: Settings | None = None, loggers: dict[str, dg.LoggerDefinition] | None = None
) -> dg.Definitions:
    """The whole location; `loggers` replace Dagster's console logger of its jobs (the
    demo sends its runs' event logs to a file)."""
    settings = settings or Settings.from_env()
    hours = hourly_partitions_def(settings)
    shard = Shard.parse(settings.shard)
    definitions = location_definitions(settings)
    resources = export_resources(settings)
    exports = build_export_objects(definitions, resources, settings)
    delivery_job, delivery_sensors, delivery_resources = build_delivery(exports.loaded, settings)
    privacy_jobs, privacy_schedules = build_privacy_jobs(definitions, shard)
    return dg.Definitions(
        # The lake's assets are defined once in a deployment: in shard 0 when sharded.
        assets=[*lake_assets(hours, shard), *exports.assets],
        jobs=[
            *exports.jobs,
            build_on_demand_job(definitions, settings),
            delivery_job,
            *privacy_jobs,
        ],
        schedules=[*exports.schedules, *privacy_schedules],
        sensors=[
            *delivery_sensors,
            *build_failure_sensors(definitions),
            *build_late_data_sensors(exports.loaded),
        ],
        # Steps run inside the run worker, not in child processes: a killed worker then
        # takes its writing with it (a step child would go on and publish), and
        # partitions, not steps, are the unit of parallel work.
        executor=dg.in_process_executor,
        resources={**resources, **delivery_resources},
        loggers=loggers,
    )


def build_location(settings: Settings | None = None) -> dg.RepositoryDefinition:
    """The location Dagster loads: whole for code servers, one export's job for its runs."""
    settings = settings or Settings.from_env()
    return on_demand_location(
        lambda: build_definitions(settings), lambda name: build_export_job_alone(name, settings)
    )


defs = build_location()
