"""`reexport_late_data`: re-export a window once one of its raw hours was materialized again.

`late_data_condition` is evaluated by `reexport_late_data_sensor` (on from the start).
Dagster's own `since_last_handled` counts a change of input as handled by the window's
next materialization, even one by a run that read the hour before it changed, and the
window then stays stale for ever. Here a run that saw an hour change while it exported
tags itself (`flag_late_data`, run tag `LATE_DATA_TAG`) and its materialization handles
nothing, nor does one in the same tick as the change: the window is exported once more.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import dagster as dg

from exporter_pipeline.exports.spec import DefinitionsFile
from exporter_pipeline.windows import hours_of, partition_key_of

LATE_DATA_SENSOR = "reexport_late_data_sensor"
LATE_DATA_SENSOR_INTERVAL_S = 30
# Set on an export run during which an hour it exports was materialized again.
LATE_DATA_TAG = "exporter/input_changed_during_run"


def late_data_condition() -> dg.AutomationCondition:
    """True for a window exported before whose hours changed since it was last handled,
    once none of them and no run of the window is in progress.

    Handled means requested by this sensor, or materialized by a run that read the hours
    after they changed. Dagster sees the events of a tick's interval together, so a
    materialization of the window in the same tick as a change of one of its hours does
    not count as handling it (the change may have come after the run read the hour): the
    window is exported once more. Nor does one by a run that tagged itself as having
    read an hour before it changed (`flag_late_data`). A window's first materialization
    is no change of a window exported before.
    """
    read_before_change = dg.AutomationCondition.any_new_update_has_run_tags(
        tag_keys={LATE_DATA_TAG}
    )
    deps_updated = dg.AutomationCondition.any_deps_updated()
    exported = ~dg.AutomationCondition.missing()
    handled = (
        dg.AutomationCondition.newly_requested()
        | (dg.AutomationCondition.newly_updated() & ~read_before_change & ~deps_updated)
        | dg.AutomationCondition.initial_evaluation()
    ).with_label("handled")
    changed = deps_updated & exported & ~exported.newly_true()
    return (
        exported
        & changed.since(handled)
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("re-export on late data")


def flag_late_data(
    context: dg.AssetExecutionContext,
    sources: Sequence[str],
    windows: Sequence[tuple[datetime, datetime]],
    began: float,
) -> None:
    """Tag the run when an hour of its windows was materialized after `began` (the
    export's start): one query per data set, whatever the number of windows."""
    hours = sorted({partition_key_of(h) for start, end in windows for h in hours_of(start, end)})
    for source in sources:
        found = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(
                dg.AssetKey(source), asset_partitions=hours, after_timestamp=began
            ),
            limit=1,
        )
        if found.records:
            changed = found.records[0].partition_key
            context.instance.add_run_tags(context.run_id, {LATE_DATA_TAG: "true"})
            context.log.info(
                f"{source} {changed} was materialized again while this run exported it: "
                "the window is exported once more after this run"
            )
            return


def build_late_data_sensors(definitions: DefinitionsFile) -> list[dg.SensorDefinition]:
    """The sensor that evaluates `late_data_condition` for the exports that ask for it,
    running from the start (Dagster's own default sensor for automation conditions is
    created stopped); none when no export of the location asks."""
    keys = [
        dg.AssetKey(["exports", export.name])
        for export in definitions.exports
        if export.reexport_late_data
    ]
    if not keys:
        return []
    return [
        dg.AutomationConditionSensorDefinition(
            LATE_DATA_SENSOR,
            target=dg.AssetSelection.assets(*keys),
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=LATE_DATA_SENSOR_INTERVAL_S,
            description=(
                f"Re-exports a window of the {len(keys)} exports with reexport_late_data "
                "once one of its raw hours was materialized again."
            ),
        )
    ]
