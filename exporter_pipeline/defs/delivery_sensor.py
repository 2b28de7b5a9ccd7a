"""`deliver_manifests_sensor`: one sensor for every delivering export of the code location.

Each tick reads, after its cursor, the events that say a manifest or error file may have
been written (see `delivery/cursor.py`): observations of `exports/<name>` naming one (an
export run logs one per window, whichever job or UI backfill ran it; the failure sensors
log one per error file they write) and the ends of runs (the windows `run_targets` finds,
by partition tags or asset selection, never by job name alone). It then lists only the
hinted keys, a day of names per request, and launches one `deliver_export` run per new
object with run key `<key>#<modification time>`. Work per tick is bounded by
`EVENTS_PER_TICK` events of each kind; a backlog is read over the next ticks.

A run key already used by any delivery run (of this sensor or of the per-output sensors
that came before it) is not requested again, so renaming or re-sharding never delivers
twice. An output that cannot be read keeps its hints for the next tick; the other
outputs deliver on.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import dagster as dg

from exporter_pipeline.defs.failures import run_targets
from exporter_pipeline.defs.resources import OutputsResource
from exporter_pipeline.delivery.cursor import (
    MAX_AGE,
    SKEW,
    DeliveryCursor,
    Hint,
    fresh_objects,
    legacy_run_key,
    listing_prefixes,
    merge_hints,
    run_key,
)
from exporter_pipeline.destinations import ObjectInfo
from exporter_pipeline.errors import reason_of
from exporter_pipeline.exports.naming import ERROR_SUFFIX, error_key, manifest_key, manifests_prefix
from exporter_pipeline.exports.spec import DefinitionsFile, ExportDefinition

DELIVERY_JOB = "deliver_export"
DELIVERY_SENSOR = "deliver_manifests_sensor"
DELIVERY_SENSOR_INTERVAL_S = 30
# Events read per kind and tick: the bound of one tick's work.
EVENTS_PER_TICK = 1_000
RUN_KEY_TAG = "dagster/run_key"
OBSERVED, OBSERVATION = "observed", dg.DagsterEventType.ASSET_OBSERVATION
RUN_ENDS = {
    "success": dg.DagsterEventType.RUN_SUCCESS,
    "failure": dg.DagsterEventType.RUN_FAILURE,
    "canceled": dg.DagsterEventType.RUN_CANCELED,
}
# Metadata of an `exports/<name>` observation that names a key to deliver.
HINT_METADATA = ("manifest", "error_file")


def has_delivery(export: ExportDefinition) -> bool:
    return export.delivery is not None and bool(export.delivery.webhook or export.delivery.email)


def _when(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _fetch(
    instance: dg.DagsterInstance,
    event_type: dg.DagsterEventType,
    after: int | None,
    since: datetime | None,
    limit: int,
    ascending: bool = True,
) -> Sequence[dg.EventLogRecord]:
    """Events of one type after storage id `after` (and `since`), from the instance's index:
    run ends through `fetch_run_status_changes` (SQLite keeps the events of each run in a
    file of its own and mirrors only run ends and asset events into its index)."""
    after_timestamp = since.timestamp() if since else None
    if event_type != OBSERVATION:
        records_filter = dg.RunStatusChangeRecordsFilter(
            event_type,  # type: ignore[arg-type]  # one of RUN_ENDS: run status changes
            after_storage_id=after,
            after_timestamp=after_timestamp,
        )
        return instance.fetch_run_status_changes(records_filter, limit, ascending=ascending).records
    with warnings.catch_warnings():
        # Dagster points to fetch_observations, which reads one asset key at a time.
        warnings.simplefilter("ignore", UserWarning)
        return instance.get_event_records(
            dg.EventRecordsFilter(event_type, after_cursor=after, after_timestamp=after_timestamp),
            limit=limit,
            ascending=ascending,
        )


def read_events(
    instance: dg.DagsterInstance,
    kind: str,
    event_type: dg.DagsterEventType,
    cursor: DeliveryCursor,
    now: datetime,
) -> Sequence[dg.EventLogRecord]:
    """The next events of one kind after the cursor (on a first tick: of the last
    MAX_AGE), at most EVENTS_PER_TICK; moves the cursor past them."""
    after = cursor.after.get(kind)
    since = now - MAX_AGE if after is None else None
    records = _fetch(instance, event_type, after, since, EVENTS_PER_TICK)
    if records:
        cursor.after[kind] = records[-1].storage_id
    elif after is None:  # nothing recent: start after the newest event of the kind
        latest = _fetch(instance, event_type, None, None, 1, ascending=False)
        cursor.after[kind] = latest[0].storage_id if latest else 0
    return records


def observation_hints(
    records: Sequence[dg.EventLogRecord], exports: Mapping[str, ExportDefinition]
) -> list[Hint]:
    """The manifests and error files named by observations of delivering exports."""
    hints = []
    for record in records:
        observation = record.asset_observation
        path = observation.asset_key.path if observation else []
        if observation is None or len(path) != 2 or path[0] != "exports":
            continue
        export = exports.get(path[1])
        if export is None:
            continue
        for name in HINT_METADATA:
            value = observation.metadata.get(name)
            key = getattr(value, "value", value)
            # Only keys in the export's own folder: an observation cannot point elsewhere.
            if isinstance(key, str) and key.startswith(manifests_prefix(export.output.path)):
                hints.append(Hint(export.name, key, _when(record.timestamp) - SKEW))
    return hints


def run_end_hints(
    instance: dg.DagsterInstance,
    records: Sequence[dg.EventLogRecord],
    definitions: DefinitionsFile,
    exports: Mapping[str, ExportDefinition],
) -> list[Hint]:
    """The manifest and error keys of every window of each ended run, new since it began."""
    hints = []
    run_ids = list(dict.fromkeys(r.run_id for r in records))
    # One query for every run of the tick (a query each cost 9 ms on SQLite).
    for found in instance.get_run_records(dg.RunsFilter(run_ids=run_ids)) if run_ids else []:
        created = found.create_timestamp.replace(tzinfo=found.create_timestamp.tzinfo or UTC)
        since = (_when(found.start_time) if found.start_time else created) - SKEW
        for target in run_targets(definitions, found.dagster_run):
            export = exports.get(target.export.name)
            if export is None or export.output != target.export.output:
                continue  # not delivered (an on-demand task), or another location's export
            path = export.output.path
            for window in target.windows:
                hints.append(Hint(export.name, manifest_key(path, *window), since))
                hints.append(Hint(export.name, error_key(path, *window), since))
    return hints


def look_up(
    context: dg.SensorEvaluationContext,
    outputs: OutputsResource,
    hints: list[Hint],
    cursor: DeliveryCursor,
    exports: Mapping[str, ExportDefinition],
) -> list[tuple[str, ObjectInfo]]:
    """(export, object) of each new hinted object; the hints of an output that could not
    be read are kept in the cursor for the next tick."""
    by_output: dict[str, list[Hint]] = defaultdict(list)
    for hint in hints:
        by_output[exports[hint.export].output.name].append(hint)
    now, fresh, cursor.pending = datetime.now(UTC), [], []
    for output, its_hints in sorted(by_output.items()):
        found: list[ObjectInfo] = []
        try:
            destination = outputs.destination(output)
            for prefix in listing_prefixes(h.key for h in its_hints):
                found += destination.list(prefix)
        # Whatever one output raises (a refused connection, an SDK's ValueError for a
        # malformed endpoint) stops only that output's deliveries, never the tick.
        except Exception as error:
            context.log.warning(
                f"output {output}: {reason_of(error)}; its manifests are looked for again"
            )
            cursor.pending += its_hints
            continue
        fresh += fresh_objects(found, its_hints, cursor, now)
    return fresh


def new_requests(
    instance: dg.DagsterInstance,
    fresh: list[tuple[str, ObjectInfo]],
    exports: Mapping[str, ExportDefinition],
) -> list[dg.RunRequest]:
    """A delivery per object, unless a delivery run already has its run key (or the
    per-output sensors' key for it, on a run of the same export)."""
    keys = [run_key(name, info) for name, info in fresh]
    legacy = [legacy_run_key(info) for _, info in fresh]
    used: set[tuple[str | None, str | None]] = set()
    asked = [*keys, *legacy]
    for start in range(0, len(asked), 500):
        runs = instance.get_run_records(
            dg.RunsFilter(job_name=DELIVERY_JOB, tags={RUN_KEY_TAG: asked[start : start + 500]})
        )
        used |= {
            (r.dagster_run.tags.get(RUN_KEY_TAG), r.dagster_run.tags.get("export")) for r in runs
        }
    used_keys = {key for key, _ in used}
    return [
        dg.RunRequest(
            run_key=key,
            run_config={"ops": {"deliver": {"config": {"export": name, "key": info.key}}}},
            tags={
                "export": name,
                "tenant": exports[name].tenant,
                "delivery": "failed" if info.key.endswith(ERROR_SUFFIX) else "ready",
            },
        )
        for key, old, (name, info) in zip(keys, legacy, fresh, strict=True)
        if key not in used_keys and (old, name) not in used
    ]


def build_delivery_sensor(definitions: DefinitionsFile) -> dg.SensorDefinition:
    exports = {e.name: e for e in definitions.exports if has_delivery(e)}

    @dg.sensor(
        name=DELIVERY_SENSOR,
        job_name=DELIVERY_JOB,
        minimum_interval_seconds=DELIVERY_SENSOR_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Launches a delivery for each new manifest or error file of the {len(exports)} "
            "delivering exports, found from the runs and observations since the last tick."
        ),
    )
    def deliver_manifests_sensor(
        context: dg.SensorEvaluationContext, outputs: OutputsResource
    ) -> dg.SensorResult:
        now = datetime.now(UTC)
        cursor = DeliveryCursor.parse(context.cursor)
        cursor.forget_before(now)
        instance = context.instance
        observed = read_events(
            instance, OBSERVED, dg.DagsterEventType.ASSET_OBSERVATION, cursor, now
        )
        hints = [*cursor.pending, *observation_hints(observed, exports)]
        for kind, event_type in RUN_ENDS.items():
            ended = read_events(instance, kind, event_type, cursor, now)
            hints += run_end_hints(instance, ended, definitions, exports)
        hints = merge_hints(h for h in hints if h.export in exports)  # a pending one may be gone
        fresh = look_up(context, outputs, hints, cursor, exports)
        requests = new_requests(instance, fresh, exports)
        return dg.SensorResult(run_requests=requests, cursor=cursor.serialize())

    return deliver_manifests_sensor
