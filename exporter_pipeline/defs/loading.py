"""Every export definition as Dagster objects, one export at a time, leniently."""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from exporter_pipeline.defs.exports import build_export_asset, build_export_job
from exporter_pipeline.defs.schedules import build_export_schedule
from exporter_pipeline.exports.spec import DefinitionsFile, ExportDefinition
from exporter_pipeline.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ExportObjects:
    """What the export definitions became: the Dagster objects of every export that built,
    a placeholder asset per export that did not, and the definitions that built."""

    assets: list[dg.AssetsDefinition | dg.AssetSpec]
    jobs: list[dg.JobDefinition]
    schedules: list[dg.ScheduleDefinition]
    loaded: DefinitionsFile
    not_loaded: dict[str, str] = field(default_factory=dict)


def not_loaded_asset(key: list[str], label: str, reason: str) -> dg.AssetSpec:
    """Where a left-out export shows in the UI: its asset, saying why it has no job."""
    return dg.AssetSpec(
        key=key,
        description=f"Not loaded: {reason}",
        group_name="exports",
        metadata={"not_loaded": label, "reason": reason},
        tags={"not_loaded": "true"},
    )


def build_export_objects(
    definitions: DefinitionsFile, resources: Mapping[str, Any], settings: Settings
) -> ExportObjects:
    """Each export's asset, job and schedule, built one export at a time.

    An export whose definition was rejected (a lenient load) or whose Dagster objects fail
    to build is left out with its schedule, delivery and sensor entry, logged and shown as
    a placeholder asset: one bad entry must not keep the code location, and so every
    tenant's jobs, from loading. One pass, constant work per export: each job is resolved
    with `resources` (those its asset requires) against its own asset only.
    """
    assets: list[dg.AssetsDefinition | dg.AssetSpec] = []
    jobs: list[dg.JobDefinition] = []
    schedules: list[dg.ScheduleDefinition] = []
    loaded: list[ExportDefinition] = []
    not_loaded: dict[str, str] = {}
    keys: set[str] = set()
    # (name if usable, else how to call it and the placeholder's key; the reason)
    left_out: list[tuple[str | None, str, str, str]] = [
        (r.name, f"#{r.index}", f"export_{r.index}", "; ".join(r.problems))
        for r in definitions.rejected
    ]
    for export in definitions.exports:
        try:
            asset = build_export_asset(export, definitions)
            built = (
                asset,
                build_export_job(export, asset, resources, settings),
                build_export_schedule(export) if export.schedule else None,
            )
        # Whatever Dagster raises for this export leaves out this export only.
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            left_out.append((export.name, export.name, export.name, reason))
            continue
        assets.append(built[0])
        jobs.append(built[1])
        schedules += [built[2]] if built[2] else []
        loaded.append(export)
        keys.add(export.name)
    for problem in definitions.rejected_outputs:
        log.warning("output not loaded: %s", problem)
    for name, fallback, fallback_key, reason in left_out:
        label = name or fallback
        not_loaded[label] = reason
        log.warning("export %s is not loaded: %s", label, reason)
        # A rejected name may be unusable, or taken by a loaded export of the same name.
        if name is not None and name not in keys:
            keys.add(name)
            assets.append(not_loaded_asset(["exports", name], label, reason))
        else:
            assets.append(not_loaded_asset(["exports_not_loaded", fallback_key], label, reason))
    return ExportObjects(
        assets=assets,
        jobs=jobs,
        schedules=schedules,
        loaded=definitions.model_copy(update={"exports": loaded}),
        not_loaded=not_loaded,
    )
