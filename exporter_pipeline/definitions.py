"""The one `Definitions` of the code location: assembles the pieces, decides nothing."""

from __future__ import annotations

import dagster as dg

from exporter_pipeline.derived.assets import build_derived_assets
from exporter_pipeline.events.assets import build_raw_events_asset
from exporter_pipeline.lake import LakeResource
from exporter_pipeline.partitions import hourly_partitions_def
from exporter_pipeline.settings import Settings


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.from_env()
    hours = hourly_partitions_def(settings)
    return dg.Definitions(
        assets=[build_raw_events_asset(hours), *build_derived_assets(hours)],
        resources={"lake": LakeResource.from_settings(settings)},
    )


defs = build_definitions()
