"""`reexport_late_data`: re-export a window once one of its raw hours was materialized again.

`late_data_condition` is evaluated by `reexport_late_data_sensor` (on from the start).
Dagster's own `since_last_handled` counts a change of input as handled by the window's
next materialization, even one by a run that read the hour before it changed, and the
window then stays stale for ever. Whether a run read an hour before it changed is not
something a tick can tell from the order in which it sees events (the change may be seen
before the materialization of a run that read the hour earlier), nor something the run
can tell before its materialization is recorded (the change may land in between). So
each export records in its materialization where the event log stood when it began to
read (`inputs_as_of`), and every tick that sees a window or one of its hours updated
compares that with the hours' latest materializations (`ReadBeforeChange`): a window
whose latest export began before one of its hours was materialized again is exported
once more, whatever the order of the events and of the ticks.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Set

import dagster as dg

from exporter_pipeline.exports.spec import DefinitionsFile

LATE_DATA_SENSOR = "reexport_late_data_sensor"
LATE_DATA_SENSOR_INTERVAL_S = 30
# Dagster evaluates at most 500 assets per sensor in the code server; more exports with
# reexport_late_data get more sensors (`reexport_late_data_sensor_2`, ...).
LATE_DATA_SENSOR_MAX_EXPORTS = 500
# An export's materialization metadata: the event log's newest storage id when the run
# began to read the lake. An input materialized later has a greater id.
INPUTS_AS_OF = "inputs_as_of_storage_id"
# Evaluating `ReadBeforeChange` needs the sensor in the code server, a parameter Dagster
# 1.13 still marks as beta; the one such warning silenced.
USER_CODE_SERVER_BETA = r"Parameter `use_user_code_server` of initializer"


def inputs_as_of(instance: dg.DagsterInstance) -> int:
    """Where the event log stands, taken by an export before it reads the lake."""
    return instance.event_log_storage.get_maximum_record_id() or 0


class ReadBeforeChange(dg.AutomationCondition[dg.AssetKey]):
    """True for a window whose latest materialization came from a run that began to read
    before one of the window's hours was last materialized."""

    @property
    def name(self) -> str:
        return "read_before_change"

    @property
    def description(self) -> str:
        return "latest export began to read before an hour of the window was materialized"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        candidates = context.candidate_subset
        windows = candidates.expensively_compute_partition_keys()
        parents = context.asset_graph.get(context.key).parent_keys
        hours = {
            window: {
                parent: candidates.compute_intersection_with_partition_keys({window})
                .compute_parent_subset(parent)
                .expensively_compute_partition_keys()
                for parent in parents
            }
            for window in windows
        }
        instance = context.asset_graph_view.instance
        as_of = _windows_as_of(instance, context.key, windows)
        newest = {
            parent: _latest_ids(instance, parent, {h for w in hours.values() for h in w[parent]})
            for parent in parents
        }
        stale = read_before_change(as_of, hours, newest)
        return dg.AutomationResult(
            context, candidates.compute_intersection_with_partition_keys(stale)
        )


def read_before_change(
    as_of: Mapping[str, int],
    hours: Mapping[str, Mapping[dg.AssetKey, Iterable[str]]],
    newest: Mapping[dg.AssetKey, Mapping[str, int]],
) -> set[str]:
    """The windows exported (`as_of`: where the event log stood when their latest export
    began to read) one of whose hours was materialized after that."""
    return {
        window
        for window, began in as_of.items()
        if any(
            newest[parent].get(hour, 0) > began
            for parent, keys in hours[window].items()
            for hour in keys
        )
    }


def _latest_ids(instance: dg.DagsterInstance, key: dg.AssetKey, keys: set[str]) -> dict[str, int]:
    """The storage id of each partition's latest materialization: one query."""
    if not keys:
        return {}
    return dict(
        instance.event_log_storage.get_latest_storage_id_by_partition(
            key, dg.DagsterEventType.ASSET_MATERIALIZATION, partitions=keys
        )
    )


def _windows_as_of(
    instance: dg.DagsterInstance, key: dg.AssetKey, windows: Set[str]
) -> dict[str, int]:
    """`INPUTS_AS_OF` of each window's latest materialization, two queries whatever the
    number of windows. One without it (reported without a run, or older) read its inputs
    when it was recorded."""
    latest = _latest_ids(instance, key, set(windows))
    if not latest:
        return {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(key, storage_ids=list(latest.values())), limit=len(latest)
    ).records
    as_of: dict[str, int] = {}
    for record in records:
        materialization = record.asset_materialization
        marked = materialization.metadata.get(INPUTS_AS_OF) if materialization else None
        began = marked.value if isinstance(marked, dg.IntMetadataValue) else None
        if record.partition_key is not None:
            as_of[record.partition_key] = began if began is not None else record.storage_id
    return as_of


def late_data_condition() -> dg.AutomationCondition:
    """True for a window exported before whose latest export began to read before one of
    its hours was materialized again, until this sensor requests it; once none of its
    hours and no run of it is in progress.

    Checked at every tick that sees the window or one of its hours updated, so the
    answer does not depend on which tick sees which event: a change seen while a run of
    the window is in progress is judged again when that run's materialization is seen.
    A window's first export is judged the same way (re-exported if an hour changed after
    it began); a request of this sensor handles the change whatever the run then does.
    """
    touched = (
        dg.AutomationCondition.any_deps_updated() | dg.AutomationCondition.newly_updated()
    ).with_label("window or an hour updated")
    handled = (
        dg.AutomationCondition.newly_requested()
        | (touched & ~ReadBeforeChange())
        | dg.AutomationCondition.initial_evaluation()
    ).with_label("handled")
    changed = (touched & ReadBeforeChange()).with_label("read before change")
    return (
        ~dg.AutomationCondition.missing()
        & changed.since(handled)
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("re-export on late data")


def build_late_data_sensors(definitions: DefinitionsFile) -> list[dg.SensorDefinition]:
    """The sensors that evaluate `late_data_condition` for the exports that ask for it,
    running from the start (Dagster's own default sensor for automation conditions is
    created stopped), in the code server (`ReadBeforeChange` is our code): one per 500
    exports, none when no export of the location asks."""
    keys = [
        dg.AssetKey(["exports", export.name])
        for export in definitions.exports
        if export.reexport_late_data
    ]
    size = LATE_DATA_SENSOR_MAX_EXPORTS
    chunks = [keys[start : start + size] for start in range(0, len(keys), size)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=USER_CODE_SERVER_BETA, category=dg.BetaWarning)
        return [
            dg.AutomationConditionSensorDefinition(
                LATE_DATA_SENSOR if number == 1 else f"{LATE_DATA_SENSOR}_{number}",
                target=dg.AssetSelection.assets(*chunk),
                default_status=dg.DefaultSensorStatus.RUNNING,
                minimum_interval_seconds=LATE_DATA_SENSOR_INTERVAL_S,
                use_user_code_server=True,
                description=(
                    f"Re-exports a window of the {len(chunk)} exports with "
                    "reexport_late_data once one of its raw hours was materialized again."
                ),
            )
            for number, chunk in enumerate(chunks, start=1)
        ]
