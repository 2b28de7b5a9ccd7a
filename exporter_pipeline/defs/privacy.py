"""Privacy jobs for the launchpad (user data export, erasure) and the daily retention job."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from exporter_pipeline.defs.exports import export_partitions_def
from exporter_pipeline.defs.resources import LakeResource, OutputsResource
from exporter_pipeline.destinations import Destination
from exporter_pipeline.destinations.outputs import named
from exporter_pipeline.errors import reason_of
from exporter_pipeline.exports.spec import DefinitionsFile, ExportDefinition
from exporter_pipeline.privacy.erasure import erase_user
from exporter_pipeline.privacy.published import PublishedIn
from exporter_pipeline.privacy.retention import (
    RetentionPolicy,
    apply_retention,
    plan_retention,
)
from exporter_pipeline.privacy.user_export import export_user
from exporter_pipeline.settings import Settings
from exporter_pipeline.shards import Shard, holds, holds_lake, wrong_location


class UserDataExportConfig(dg.Config):
    """Everything held about one user of one tenant, as JSON Lines to an output."""

    tenant: str
    user_id: str
    output: str
    path: str = ""


class ErasureConfig(dg.Config):
    """Erase one user of one tenant from the lake and the managed outputs."""

    tenant: str
    user_id: str


class RetentionConfig(dg.Config):
    """Remove data past its retention; `dry_run` only lists it. `now` (ISO) is for tests."""

    dry_run: bool = False
    now: str | None = None


def retention_policy(settings: Settings) -> RetentionPolicy:
    return RetentionPolicy(
        raw=timedelta(days=settings.retention_raw_days),
        aggregates=timedelta(days=settings.retention_aggregate_days),
        export_files=timedelta(days=settings.retention_export_days),
    )


@dg.op
def export_user_data(
    context: dg.OpExecutionContext,
    config: UserDataExportConfig,
    lake: LakeResource,
    outputs: OutputsResource,
) -> dg.Output[dict]:
    """Write the user's profile, events and views, then a manifest."""
    named("tenant", config.tenant)  # it names a folder below
    outputs.owned_output(config.output, config.tenant)
    path = config.path or f"user-data/{config.tenant}/{context.run_id}"
    result = export_user(
        lake.lake(),
        outputs.destination(config.output),
        config.tenant,
        config.user_id,
        path,
        context.run_id,
    )
    return dg.Output(
        {"manifest": result.manifest_key},
        metadata={
            "events": result.events,
            "files": len(result.files),
            "manifest": result.manifest_key,
        },
    )


@dg.job(
    name="user_data_export",
    tags={"privacy": "export"},
    description="GDPR/CCPA: export everything held about one user.",
)
def user_data_export() -> None:
    export_user_data()


def build_erase_job(
    exports: list[ExportDefinition], shard: Shard | None = None
) -> dg.JobDefinition:
    @dg.op
    def erase(
        context: dg.OpExecutionContext,
        config: ErasureConfig,
        lake: LakeResource,
        outputs: OutputsResource,
    ) -> dg.Output[dict]:
        """Remove the user everywhere we manage, tombstone them, and audit the erasure."""
        # Another shard's tenant: its exports are not here to regenerate. Refused before
        # anything is touched, rather than erased from the lake but left in its exports.
        if reason := wrong_location(shard, config.tenant):
            raise dg.Failure(f"erase_user not run: {reason}", allow_retries=False)

        def output_of(export: ExportDefinition) -> Destination | None:
            # An output we do not manage is never opened: its keys may not even be set here.
            name = export.output.name
            return outputs.destination(name) if outputs.output(name).managed else None

        report = erase_user(
            lake.lake(),
            config.tenant,
            config.user_id,
            requested_by=context.run.tags.get("user", f"run {context.run_id}"),
            exports=exports,
            outputs=output_of,
            run_id=context.run_id,
            log=context.log.info,
            published=tenant_outputs(outputs, config.tenant),
            busy=lambda export: export_in_progress(context.instance, export),
        )
        observe_regenerated(context, report.regenerated, exports)
        # Metadata names no personal data: partitions, counts and the audit entry only.
        return dg.Output(
            {"audit": report.audit_key},
            metadata={
                "partitions": len(report.hours),
                "rows_removed": dg.MetadataValue.json(report.rows_removed),
                "exports_regenerated": dg.MetadataValue.json(report.exports_regenerated),
                "exports_rewritten": dg.MetadataValue.json(report.exports_rewritten),
                "user_exports_removed": dg.MetadataValue.json(report.user_exports_removed),
                "not_reached": dg.MetadataValue.json(report.not_reached),
                "audit": report.audit_key,
            },
        )

    @dg.job(
        name="erase_user",
        tags={"privacy": "erasure"},
        description="Right to erasure: remove one user from the lake and managed outputs.",
    )
    def erase_user_job() -> None:
        erase()

    return erase_user_job


def observe_regenerated(
    context: dg.OpExecutionContext,
    regenerated: list[tuple[str, datetime, str]],
    exports: list[ExportDefinition],
) -> None:
    """An observation of each regenerated window, as the export asset logs one: the
    delivery sensor takes the manifest from it and delivers the window again."""
    by_name = {e.name: e for e in exports}
    for name, start, manifest in regenerated:
        partitions_def = export_partitions_def(by_name[name])
        context.log_event(
            dg.AssetObservation(
                asset_key=["exports", name],
                partition=partitions_def.get_partition_key_for_timestamp(start.timestamp()),
                metadata={"manifest": manifest},
            )
        )


# A run in one of these has started or may start at any moment.
_IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def export_in_progress(instance: dg.DagsterInstance, export: ExportDefinition) -> bool:
    """Whether a run of `export` (its runs carry the tag `export`) is queued or running."""
    runs = dg.RunsFilter(statuses=_IN_PROGRESS, tags={"export": export.name})
    return bool(instance.get_run_records(runs, limit=1))


def tenant_outputs(outputs: OutputsResource, tenant: str) -> PublishedIn:
    """The outputs `tenant` may use (its own and the operator's): managed ones opened."""
    usable = {n: o for n, o in outputs.outputs().items() if o.usable_by(tenant)}
    return PublishedIn(
        managed={n: outputs.destination(n) for n, o in sorted(usable.items()) if o.managed},
        unmanaged=sorted(n for n, o in usable.items() if not o.managed),
    )


def managed_outputs(
    outputs: OutputsResource, exports: list[ExportDefinition], shard: Shard | None
) -> tuple[dict[str, tuple[Destination, list[str]]], dict[str, str]]:
    """Every managed output this location's tenants may use, with the paths its
    definition exports write there (on-demand tasks and user exports may be anywhere),
    and the outputs that could not be opened, with why."""
    managed: dict[str, tuple[Destination, list[str]]] = {}
    unreachable: dict[str, str] = {}
    for name, output in sorted(outputs.outputs().items()):
        if output.managed and (output.tenant is None or holds(shard, output.tenant)):
            paths = [e.output.path for e in exports if e.output.name == name]
            try:
                managed[name] = (outputs.destination(name), paths)
            except Exception as error:
                unreachable[name] = reason_of(error)
    return managed, unreachable


def build_retention_job(
    exports: list[ExportDefinition], shard: Shard | None = None
) -> dg.JobDefinition:
    @dg.op
    def apply_retention_op(
        context: dg.OpExecutionContext,
        config: RetentionConfig,
        lake: LakeResource,
        outputs: OutputsResource,
    ) -> dg.Output[dict]:
        """Delete lake hours and managed export files past their retention."""
        now = datetime.fromisoformat(config.now) if config.now else datetime.now(UTC)
        managed, unreachable = managed_outputs(outputs, exports, shard)
        policy = retention_policy(Settings.from_env())
        # The lake's hours are removed by the location holding the lake only (shard 0);
        # in an operator's output each location removes its own tenants' exports.
        plan = plan_retention(
            lake.lake(),
            managed,
            now,
            policy,
            with_lake=holds_lake(shard),
            holds=lambda tenant: holds(shard, tenant),
        )
        verb = "would remove" if config.dry_run else "removing"
        for key in plan.lake_keys:
            context.log.info(f"{verb} lake {key}")
        for output, keys in plan.export_keys.items():
            for key in keys:
                context.log.info(f"{verb} {output}:{key}")
        if not config.dry_run:
            apply_retention(plan, lake.lake(), managed)
        unreachable |= plan.unreachable
        if unreachable:
            # After the others were done: the run fails so the operator sees what is left.
            done = "planned" if config.dry_run else "done"
            left = "; ".join(f"output {name}: {why}" for name, why in sorted(unreachable.items()))
            raise dg.Failure(
                f"retention could not read {left} (the other outputs and the lake were {done})",
                allow_retries=False,
            )
        return dg.Output(
            {"lake": plan.lake_keys, "exports": plan.export_keys},
            metadata={
                "dry_run": config.dry_run,
                "lake_files": len(plan.lake_keys),
                "export_files": sum(len(v) for v in plan.export_keys.values()),
            },
        )

    @dg.job(
        name="retention",
        tags={"privacy": "retention"},
        description="Delete raw data (90 d), aggregates (2 y), export files (7 d).",
    )
    def retention_job() -> None:
        apply_retention_op()

    return retention_job


def build_privacy_jobs(
    definitions: DefinitionsFile, shard: Shard | None = None
) -> tuple[list[dg.JobDefinition], list[dg.ScheduleDefinition]]:
    """Every location has them, for its own tenants' exports; the lake is shard 0's."""
    retention_job = build_retention_job(definitions.exports, shard)
    retention_schedule = dg.ScheduleDefinition(
        name="retention_schedule",
        job=retention_job,
        cron_schedule="30 3 * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Daily retention at 03:30 UTC.",
    )
    jobs = [user_data_export, build_erase_job(definitions.exports, shard), retention_job]
    return jobs, [retention_schedule]
