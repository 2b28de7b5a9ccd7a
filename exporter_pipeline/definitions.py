"""The one `Definitions` of the code location: assembles the pieces, decides nothing."""

import dagster as dg

from exporter_pipeline.defs.delivery import build_delivery
from exporter_pipeline.defs.derived import build_derived_assets
from exporter_pipeline.defs.events import build_raw_events_asset
from exporter_pipeline.defs.failures import build_failure_sensors
from exporter_pipeline.defs.loading import build_export_objects
from exporter_pipeline.defs.on_demand import build_on_demand_job
from exporter_pipeline.defs.partitions import hourly_partitions_def
from exporter_pipeline.defs.privacy import build_privacy_jobs
from exporter_pipeline.defs.resources import LakeResource, OutputsResource
from exporter_pipeline.settings import Settings
from exporter_pipeline.shards import Shard, holds_lake
from exporter_pipeline.store.location import load_definitions


def lake_assets(
    hours: dg.HourlyPartitionsDefinition, shard: Shard | None
) -> list[dg.AssetsDefinition]:
    if not holds_lake(shard):
        return []
    return [build_raw_events_asset(hours), *build_derived_assets(hours)]


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.from_env()
    hours = hourly_partitions_def(settings)
    shard = Shard.parse(settings.shard)
    # From the definitions store (the first load of an empty one applies the exports
    # file). Lenient: a bad entry is left out and reported, the rest loads.
    definitions = load_definitions(settings)
    if shard is not None:
        definitions = definitions.of_tenants(shard.holds, with_unowned=shard.holds_lake)
    resources = {
        "lake": LakeResource.from_settings(settings),
        # No output in its config: a run reads its one output from the store.
        "outputs": OutputsResource.of(settings),
    }
    exports = build_export_objects(definitions, resources, settings)
    delivery_job, delivery_sensors, delivery_resources = build_delivery(exports.loaded, settings)
    privacy_jobs, privacy_schedules = build_privacy_jobs(definitions, shard)
    return dg.Definitions(
        # The lake's assets are defined once in a deployment: in shard 1 when sharded.
        assets=[*lake_assets(hours, shard), *exports.assets],
        jobs=[*exports.jobs, build_on_demand_job(definitions), delivery_job, *privacy_jobs],
        schedules=[*exports.schedules, *privacy_schedules],
        sensors=[*delivery_sensors, *build_failure_sensors(definitions)],
        # Steps run inside the run worker, not in child processes: a killed worker then
        # takes its writing with it (a step child would go on and publish), and
        # partitions, not steps, are the unit of parallel work.
        executor=dg.in_process_executor,
        resources={**resources, **delivery_resources},
    )


defs = build_definitions()
