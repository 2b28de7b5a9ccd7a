"""`deliver_manifests_sensor`: one sensor for every delivering export of the code location.

Each tick reads, after its cursor, the events that say a manifest or error file may have
been written (see `delivery/cursor.py`): observations of `exports/<name>` naming one (an
export run logs one per window, whichever job or UI backfill ran it; the failure sensors
log one per error file they write) and the ends of runs (the windows `run_targets` finds,
by partition tags or asset selection, never by job name alone). It then lists only the
hinted keys, a day of names per request, and launches one `deliver_export` run per new
object with run key `<key>#<modification time>#<export>`.

A tick's work is bounded whatever the burst: at most `EVENTS_PER_TICK` events of each
kind, no further event while the cursor's backlog is full, at most
`EXPORTER_DELIVERY_LISTINGS_PER_TICK` listings (oldest news first, `plan_listings`), made
`EXPORTER_DELIVERY_SENSOR_THREADS` outputs at a time (opening a client and listing wait on
the network), and no output started once the tick has run `TICK_SECONDS`. What is left
waits in the cursor for the next ticks. An output still listing `TICK_LIMIT_SECONDS` into
the tick counts as down, and no later tick lists it again until that listing has ended
(`delivery/listing.py`).

A run key already used by any delivery run (of this sensor or of the per-output sensors
that came before it) is not requested again, so renaming or re-sharding never delivers
twice. An output that cannot be read keeps its hints for the next tick; the other
outputs deliver on.
"""

from __future__ import annotations

import os
import time
import warnings
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
    Listing,
    fresh_objects,
    legacy_run_key,
    plan_listings,
    run_key,
)
from exporter_pipeline.delivery.listing import OutputListings
from exporter_pipeline.destinations import ObjectInfo
from exporter_pipeline.errors import reason_of
from exporter_pipeline.exports.naming import ERROR_SUFFIX, error_key, manifest_key, manifests_prefix
from exporter_pipeline.exports.spec import DefinitionsFile, ExportDefinition
from exporter_pipeline.settings import Settings

DELIVERY_JOB = "deliver_export"
DELIVERY_SENSOR = "deliver_manifests_sensor"
DELIVERY_SENSOR_INTERVAL_S = 30
# Events read per kind and tick.
EVENTS_PER_TICK = 1_000
# Seconds into a tick after which it opens no further output (the oldest one always is):
# a slow bucket or a busy host makes a tick do less, never last longer than its interval.
TICK_SECONDS = 4.0
# Seconds into a tick after which an output still listing counts as down: a bucket that
# never answers (its client's timeouts and retries take minutes) never holds the tick,
# whose evaluation Dagster ends after 60 s (`DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS`; when an
# operator sets that lower, half of it).
TICK_LIMIT_SECONDS = 20.0

RUN_KEY_TAG = "dagster/run_key"
OBSERVED, OBSERVATION = "observed", dg.DagsterEventType.ASSET_OBSERVATION
RUN_ENDS = {
    "success": dg.DagsterEventType.RUN_SUCCESS,
    "failure": dg.DagsterEventType.RUN_FAILURE,
    "canceled": dg.DagsterEventType.RUN_CANCELED,
}
KINDS = {OBSERVED: OBSERVATION, **RUN_ENDS}
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
) -> dict[str, list[Hint]]:
    """By run id: the manifest and error keys of every window of each ended run, new
    since it began."""
    hints: dict[str, list[Hint]] = {}
    run_ids = list(dict.fromkeys(r.run_id for r in records))
    # One query for every run of the tick (a query each cost 9 ms on SQLite).
    for found in instance.get_run_records(dg.RunsFilter(run_ids=run_ids)) if run_ids else []:
        created = found.create_timestamp.replace(tzinfo=found.create_timestamp.tzinfo or UTC)
        since = (_when(found.start_time) if found.start_time else created) - SKEW
        its = hints.setdefault(found.dagster_run.run_id, [])
        for target in run_targets(definitions, found.dagster_run):
            export = exports.get(target.export.name)
            if export is None or export.output != target.export.output:
                continue  # not delivered (an on-demand task), or another location's export
            path = export.output.path
            for window in target.windows:
                its.append(Hint(export.name, manifest_key(path, *window), since))
                its.append(Hint(export.name, error_key(path, *window), since))
    return hints


def read_news(
    instance: dg.DagsterInstance,
    cursor: DeliveryCursor,
    now: datetime,
    definitions: DefinitionsFile,
    exports: Mapping[str, ExportDefinition],
) -> None:
    """The hints of the events after the cursor into its backlog, event by event, until
    the backlog is full: the cursor then stays at the last event taken, and the events
    after it are read next tick (at most one batch read twice, never the history)."""
    for kind, event_type in KINDS.items():
        if cursor.backlog_full:
            return
        records = read_events(instance, kind, event_type, cursor, now)
        if kind == OBSERVED:
            by_record = {r.storage_id: observation_hints([r], exports) for r in records}
        else:
            by_run = run_end_hints(instance, records, definitions, exports)
            by_record = {r.storage_id: by_run.get(r.run_id, []) for r in records}
        for record in records:  # the first is always taken: the backlog was not full
            if cursor.backlog_full:
                break
            cursor.backlog += by_record[record.storage_id]
            cursor.after[kind] = record.storage_id


def tick_limit_seconds() -> float:
    evaluation_limit = float(os.environ.get("DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS") or 60)
    return min(TICK_LIMIT_SECONDS, evaluation_limit / 2)


def _list_outputs(
    outputs: OutputsResource,
    by_output: dict[str, list[Listing]],
    listings: OutputListings,
    threads: int,
    began: float,
) -> dict[str, list[ObjectInfo] | Exception | None]:
    """By output: what its listings found, what it raised, or None when it was not
    started (`TICK_SECONDS` after the tick `began`, monotonic, or while too many
    listings hang). `threads` at a time, oldest news first; one still listing
    `TICK_LIMIT_SECONDS` into the tick counts as down."""

    def list_one(output: str) -> list[ObjectInfo]:
        # Its own client, closed here: a listing may outlive the tick, and with it the
        # resource's cache of clients, which is closed when the tick ends.
        destination = outputs.store().open_output(output)
        try:
            return [info for item in by_output[output] for info in destination.list(item.prefix)]
        finally:
            destination.close()

    return listings.list(
        list_one, list(by_output), threads, began + TICK_SECONDS, began + tick_limit_seconds()
    )


def look_up(
    context: dg.SensorEvaluationContext,
    outputs: OutputsResource,
    listings: list[Listing],
    cursor: DeliveryCursor,
    threads: int,
    began: float,
    running: OutputListings,
) -> list[tuple[str, ObjectInfo]]:
    """(export, object) of each new object the listings find, oldest news first. An
    output that could not be read keeps its hints in the cursor's `pending`, one not
    reached in time keeps them where they were: both are looked at next tick."""
    by_output: dict[str, list[Listing]] = {}
    for listing in listings:
        by_output.setdefault(listing.output, []).append(listing)
    results = _list_outputs(outputs, by_output, running, threads, began)
    if len(hanging := running.still_running()) >= running.max_running:
        named = ", ".join(sorted(hanging)[:5]) + (", ..." if len(hanging) > 5 else "")
        context.log.warning(
            f"{len(hanging)} listings wait on outputs that do not answer ({named}): no "
            "further listing starts until some end, and the other outputs' manifests wait"
        )
    now, fresh = datetime.now(UTC), []
    for output, found in results.items():
        hints = [hint for listing in by_output[output] for hint in listing.hints]
        if found is None:
            cursor.carry(by_output[output])
        # Whatever one output raises (a refused connection, an SDK's ValueError for a
        # malformed endpoint, no answer in time) stops only that output's deliveries.
        elif isinstance(found, Exception):
            context.log.warning(
                f"output {output}: {reason_of(found)}; its manifests are looked for again"
            )
            cursor.pending += hints
        else:
            fresh += fresh_objects(found, hints, cursor, now)
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


def build_delivery_sensor(
    definitions: DefinitionsFile, settings: Settings | None = None
) -> dg.SensorDefinition:
    settings = settings or Settings.from_env()
    budget, threads = settings.delivery_listings_per_tick, settings.delivery_sensor_threads
    exports = {e.name: e for e in definitions.exports if has_delivery(e)}
    output_of = {name: export.output.name for name, export in exports.items()}
    running = OutputListings()  # across this sensor's ticks in the code server

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
        now, began = datetime.now(UTC), time.monotonic()
        cursor = DeliveryCursor.parse(context.cursor)
        cursor.forget_before(now)
        read_news(context.instance, cursor, now, definitions, exports)
        listings = plan_listings(  # a kept hint's export may be gone since
            (h for h in cursor.backlog if h.export in exports),
            (h for h in cursor.pending if h.export in exports),
            output_of,
        )
        cursor.backlog, cursor.pending = [], []
        cursor.carry(listings[budget:])
        fresh = look_up(context, outputs, listings[:budget], cursor, threads, began, running)
        requests = new_requests(context.instance, fresh, exports)
        return dg.SensorResult(run_requests=requests, cursor=cursor.serialize())

    return deliver_manifests_sensor
