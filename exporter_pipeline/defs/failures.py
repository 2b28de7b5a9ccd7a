"""Failure notices for export runs that died before they could send their own.

An execution that fails in Python writes its window's error file, and the delivery
sensor (hinted by the run's end) turns that file into one `export.failed` webhook or email. A run
whose worker is killed (out of memory, SIGKILL), stopped at its maximum runtime, never
started, or canceled writes nothing: Dagster (the code server, or run monitoring) marks
it FAILURE or CANCELED and the tenant would hear nothing. These sensors watch for those
ends and write, for each window of the run, the error file the run did not write, in the
same shape, and log an observation of the export naming it (the delivery sensor reads
those events, it lists no folder), so the existing delivery path sends exactly one notice.

A window is left alone when the output already holds this run's error file (the run
reported it) or manifest (the run published it), or a manifest or error file of a run
launched after this one (a re-run already answered for the window): writing there would
notify twice, or mark a good window failed.

Which export and windows a run covered comes from the run itself: the job
`export_<name>` (or the asset selection `exports/<name>` of a UI backfill, which runs as
`__ASSET_JOB`), with the partition tags `dagster/partition` or
`dagster/asset_partition_range_start`/`_end`; for `export_on_demand`, the request in the
run config.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import dagster as dg
import orjson
from pydantic import ValidationError

from exporter_pipeline.defs.exports import export_partitions_def
from exporter_pipeline.defs.on_demand import (
    REFUSED_TAG,
    OnDemandExportConfig,
    request_to_definition,
)
from exporter_pipeline.destinations import Destination
from exporter_pipeline.errors import ExporterError
from exporter_pipeline.exports.execution import error_record as window_error_record
from exporter_pipeline.exports.manifest import ErrorRecord, Manifest
from exporter_pipeline.exports.naming import (
    error_key,
    manifest_key,
    manifests_prefix,
)
from exporter_pipeline.exports.spec import DefinitionsFile, ExportDefinition
from exporter_pipeline.exports.task_request import TaskRequestError, refuse_export_location
from exporter_pipeline.names import export_job_name
from exporter_pipeline.store.store import DefinitionsStore

ON_DEMAND_JOB: Final = "export_on_demand"
# A dead run is noticed within this many seconds (plus the delivery sensor's interval).
FAILURE_SENSOR_INTERVAL_S: Final = 15
PARTITION_TAG: Final = "dagster/partition"
RANGE_START_TAG: Final = "dagster/asset_partition_range_start"
RANGE_END_TAG: Final = "dagster/asset_partition_range_end"

# The FAILURE and the CANCELED sensor can both see one run (a run stopped at its maximum
# runtime is CANCELING, may be reported CANCELED, then FAILURE) and are evaluated on
# threads of the same code server: "is there an error file? no: write one" must not
# interleave, or the tenant is told twice.
_REPORTING = threading.Lock()

Window = tuple[datetime, datetime]


@dataclass(frozen=True)
class WindowState:
    """Whose manifest and whose error file the output holds for a window (run ids)."""

    manifest_run: str | None = None
    error_run: str | None = None


def export_names_of_run(
    job_name: str, asset_paths: Iterable[Sequence[str]], known: Iterable[str]
) -> list[str]:
    """The exports a run of `job_name` over the assets `asset_paths` materialized."""
    names = set(known)
    # The job of an export is named after its Dagster name (`acme-daily`: export_acme_daily).
    by_job = {export_job_name(name): name for name in names}
    if job_name in by_job:
        return [by_job[job_name]]
    found = {path[1] for path in asset_paths if len(path) == 2 and path[0] == "exports"}
    return sorted(found & names)


def failure_reason(status: str, messages: Sequence[str]) -> str:
    """Why the run ended, for the tenant, from Dagster's own messages about the run.

    Only our fixed texts and numbers from Dagster's messages go out: never the messages
    themselves, which may name hosts, paths or another tenant's run.
    """
    text = "\n".join(messages)
    if found := re.search(r"maximum runtime of (\d+) seconds", text):
        return f"the run exceeded its maximum runtime of {found[1]} s and was stopped"
    if found := re.search(r"longer than (\d+) seconds to start", text):
        return f"the run did not start within {found[1]} s"
    if found := re.search(r"terminated by signal (\d+) \((SIG[A-Z0-9]+)\)", text):
        return (
            f"the run worker died (killed by signal {found[1]}, {found[2]}); "
            "Dagster marked the run failed"
        )
    if re.search(r"unexpectedly exited with code|terminated unexpectedly|run worker status", text):
        return "the run worker died; Dagster marked the run failed"
    if status == "CANCELED":
        return "the run was canceled before this window was published"
    return "the run ended before this window was published"


def windows_to_report(
    run_id: str, windows: Sequence[Window], states: Mapping[Window, WindowState], later: set[str]
) -> list[Window]:
    """The windows of a failed run that nobody has reported or published yet."""
    answered = {run_id, *later}
    return [
        window
        for window in windows
        if states.get(window, WindowState()).manifest_run not in answered
        and states.get(window, WindowState()).error_run not in answered
    ]


def error_record(
    export: ExportDefinition,
    run_id: str,
    window: Window,
    reason: str,
    published: bool,
    now: datetime,
) -> dict[str, Any]:
    """The error file's content, as `export_window` writes it."""
    return window_error_record(export, run_id, window[0], window[1], reason, published, now)


def _run_id_at(
    destination: Destination, key: str, model: type[Manifest] | type[ErrorRecord]
) -> str | None:
    """The run that wrote the manifest (or error file) at `key`, read with its model."""
    if not destination.exists(key):
        return None
    try:
        return model.from_bytes(destination.get_bytes(key)).run_id or None
    except (FileNotFoundError, ValidationError):
        return None  # removed meanwhile, or not ours to read: nobody's


@dataclass(frozen=True)
class RunTarget:
    """One export of a run and the windows the run was to write."""

    export: ExportDefinition
    windows: list[Window]


def _usable(definitions: DefinitionsFile, export: ExportDefinition) -> bool:
    """Whether the task's output is one its tenant may use and its path meets no export's
    (the task's own checks that need no lake; a refused task wrote nothing)."""
    output = definitions.outputs.get(export.output.name)
    if output is None or not output.usable_by(export.tenant):
        return False
    try:
        refuse_export_location(export, definitions.outputs, definitions.exports)
    except TaskRequestError:
        return False
    return True


def run_targets(definitions: DefinitionsFile, run: dg.DagsterRun) -> list[RunTarget]:
    """What `run` was exporting; empty for runs that are not exports."""
    if run.job_name == ON_DEMAND_JOB:
        ops: Any = (run.run_config or {}).get("ops") or {}
        config = (ops.get("export_task") or {}).get("config")
        if not isinstance(config, dict):
            return []
        try:
            export, start, end = request_to_definition(OnDemandExportConfig(**config))
        except (ExporterError, ValueError):  # the run failed on its request: no window
            return []
        if not _usable(definitions, export) or REFUSED_TAG in run.tags:
            return []  # refused before it wrote: the tenant's answer is the run's error
        return [RunTarget(export, [(start, end)])]
    paths = [key.path for key in run.asset_selection or ()]
    targets = []
    known = [e.name for e in definitions.exports]
    for name in export_names_of_run(run.job_name, paths, known):
        export = definitions.export(name)
        partitions_def = export_partitions_def(export)
        tags = run.tags
        try:
            if PARTITION_TAG in tags:
                keys = [tags[PARTITION_TAG]]
            elif RANGE_START_TAG in tags and RANGE_END_TAG in tags:
                keys = list(
                    partitions_def.get_partition_keys_in_range(
                        dg.PartitionKeyRange(tags[RANGE_START_TAG], tags[RANGE_END_TAG])
                    )
                )
            else:
                keys = []
            windows = [partitions_def.time_window_for_partition_key(k) for k in keys]
        except Exception:  # a key outside this export's partitions: not its window
            continue
        if windows:
            targets.append(RunTarget(export, [(w.start, w.end) for w in windows]))
    return targets


def report_failed_run(
    definitions: DefinitionsFile,
    run: dg.DagsterRun,
    reason: str,
    is_later_run: Callable[[str], bool],
    destination_for: Callable[[str], Destination],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[str]:
    """Write the error file of each window of `run` nobody answered for; their keys."""
    written = []
    for target in run_targets(definitions, run):
        # Each output is opened for its own windows and closed after them.
        with destination_for(target.export.output.name) as destination:
            written += _report_target(target, destination, run, reason, is_later_run, now)
    return written


def _report_target(
    target: RunTarget,
    destination: Destination,
    run: dg.DagsterRun,
    reason: str,
    is_later_run: Callable[[str], bool],
    now: Callable[[], datetime],
) -> list[str]:
    export, path, written = target.export, target.export.output.path, []
    with _REPORTING:
        states = {
            window: WindowState(
                manifest_run=_run_id_at(destination, manifest_key(path, *window), Manifest),
                error_run=_run_id_at(destination, error_key(path, *window), ErrorRecord),
            )
            for window in target.windows
        }
        answered = {r for s in states.values() for r in (s.manifest_run, s.error_run) if r}
        later = {r for r in answered - {run.run_id} if is_later_run(r)}
        for window in windows_to_report(run.run_id, target.windows, states, later):
            # A window is published by its manifest only, and this run's is not there:
            # files it put before dying are at names no manifest lists (the next run of
            # the window removes them), so nothing of it was published.
            record = error_record(export, run.run_id, window, reason, False, now())
            key = error_key(path, *window)
            destination.put_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2), key)
            written.append(key)
    return written


# Where Dagster says why a run ended: the code server's crash explanation is an engine
# event; run monitoring's timeouts are the canceling and failure messages.
_MESSAGE_EVENTS = {
    dg.DagsterEventType.ENGINE_EVENT,
    dg.DagsterEventType.RUN_CANCELING,
    dg.DagsterEventType.RUN_CANCELED,
    dg.DagsterEventType.RUN_FAILURE,
}


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=moment.tzinfo or UTC)  # storages may give naive UTC


def observe_error_files(
    instance: dg.DagsterInstance, definitions: DefinitionsFile, run: dg.DagsterRun, keys: list[str]
) -> None:
    """Log an observation of `exports/<name>` per error file written, after writing it:
    the delivery sensor reads these to find the files (it lists no folder)."""
    known = {e.name for e in definitions.exports}
    for target in run_targets(definitions, run):
        if target.export.name not in known:
            continue  # an on-demand task has no asset (and no delivery) to observe
        folder = manifests_prefix(target.export.output.path)
        for key in (k for k in keys if k.startswith(folder)):
            instance.report_runless_asset_event(
                dg.AssetObservation(
                    asset_key=["exports", target.export.name],
                    metadata={"error_file": key, "failed_run": run.run_id},
                )
            )


def _build_sensor(definitions: DefinitionsFile, status: dg.DagsterRunStatus) -> dg.SensorDefinition:
    def report(context: dg.RunStatusSensorContext) -> None:
        run = context.dagster_run
        if not run_targets(definitions, run):
            return
        instance = context.instance
        messages = [e.message or "" for e in instance.all_logs(run.run_id, of_type=_MESSAGE_EVENTS)]
        record = instance.get_run_record_by_id(run.run_id)
        created = _aware(record.create_timestamp) if record else datetime.now(UTC)

        def is_later_run(other: str) -> bool:
            found = instance.get_run_record_by_id(other)
            return found is not None and _aware(found.create_timestamp) > created

        def destination_of(output: str) -> Destination:
            # Opened here, one output at a time: one output's missing variable must not
            # stop the notices of every other output.
            return DefinitionsStore.from_settings().open_output(output)

        reason = failure_reason(status.value, messages)
        written = report_failed_run(definitions, run, reason, is_later_run, destination_of)
        observe_error_files(instance, definitions, run, written)
        context.log.info(
            f"run {run.run_id} ended {status.value}: "
            + (f"wrote {', '.join(written)} ({reason})" if written else "nothing to report")
        )

    name = f"export_{status.value.lower()}_notice_sensor"
    return dg.RunStatusSensorDefinition(
        name=name,
        run_status=status,
        run_status_sensor_fn=report,
        minimum_interval_seconds=FAILURE_SENSOR_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Writes the error file of each window of an export run that ended "
            f"{status.value} without writing one (worker killed, out of memory, max "
            "runtime, canceled), so its tenant gets one failure notice."
        ),
    )


def build_failure_sensors(definitions: DefinitionsFile) -> list[dg.SensorDefinition]:
    """One sensor per end that can leave a window unreported: FAILURE and CANCELED."""
    return [
        _build_sensor(definitions, status)
        for status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
    ]
