"""Schedules for recurring exports (seed 002: daily or weekly).

A definition's `schedule` gives the local time (and, weekly, the day) the export runs;
each tick requests the job's partition for the last complete window before that moment
(windows are UTC days or weeks). The run key is the partition key, so a window is never
run twice by its schedule, even if a tick is evaluated again.
"""

from datetime import UTC, datetime

import dagster as dg

from exporter_pipeline.defs.exports import export_partitions_def, export_tags
from exporter_pipeline.exports.spec import ExportDefinition
from exporter_pipeline.names import export_job_name, export_schedule_name
from exporter_pipeline.windows import WEEKDAYS


def cron_weekday(day: str) -> int:
    """Cron counts Sunday as 0; WEEKDAYS starts on Monday."""
    return (WEEKDAYS.index(day) + 1) % 7


def cron_of(export: ExportDefinition) -> str:
    assert export.schedule is not None
    minute, hour = export.schedule.minute, export.schedule.hour
    if export.cadence == "hourly":
        return f"{minute} * * * *"
    if export.cadence == "daily":
        return f"{minute} {hour} * * *"
    return f"{minute} {hour} * * {cron_weekday(export.schedule.day_of_week or 'monday')}"


def last_complete_window(export: ExportDefinition, moment: datetime) -> str | None:
    """The key of the newest partition that ended at or before `moment`."""
    keys = export_partitions_def(export).get_partition_keys(current_time=moment.astimezone(UTC))
    return keys[-1] if keys else None


def build_export_schedule(export: ExportDefinition) -> dg.ScheduleDefinition:
    assert export.schedule is not None
    timezone = export.schedule.timezone

    @dg.schedule(
        name=export_schedule_name(export.name),
        cron_schedule=cron_of(export),
        execution_timezone=timezone,
        job_name=export_job_name(export.name),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Runs export {export.name} for the last complete {export.cadence} window "
        f"({cron_of(export)}, {timezone}).",
    )
    def export_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        moment = context.scheduled_execution_time or datetime.now(UTC)
        key = last_complete_window(export, moment)
        if key is None:
            return dg.SkipReason(f"no complete {export.cadence} window before {moment}")
        return dg.RunRequest(
            run_key=key, partition_key=key, tags={**export_tags(export), "trigger": "schedule"}
        )

    return export_schedule
