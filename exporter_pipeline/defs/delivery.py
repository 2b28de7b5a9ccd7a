"""The delivery job and the sensors that launch it, one sensor per output.

A sensor lists the `_manifests/` folders of the exports that write to its output and
have delivery targets, and launches one `deliver_export` run per new manifest (or
error file) with run key `<key>#<modification time>`: Dagster never launches two runs
with one run key, so each manifest is delivered once, whichever job or backfill wrote
it. A run of `deliver_export` reads the manifest, signs a URL per file, POSTs the
webhook and then sends the email; its outcome is the run's metadata. Each webhook attempt
is a Dagster retry of the `deliver` step (see `defs/webhooks.py`).
"""

from datetime import UTC, datetime
from typing import Any

import dagster as dg

from exporter_pipeline.defs.resources import OutputsResource, SmtpResource
from exporter_pipeline.defs.run_limits import max_runtime_tags
from exporter_pipeline.defs.webhooks import WebhooksResource, send_webhook
from exporter_pipeline.delivery.cursor import ManifestCursor, new_objects
from exporter_pipeline.delivery.email import failed_message, ready_message
from exporter_pipeline.delivery.notices import (
    FailedNotice,
    Notice,
    failed_notice,
    ready_notice,
)
from exporter_pipeline.delivery.webhook import message_id
from exporter_pipeline.destinations import Destination
from exporter_pipeline.exports.manifest import ErrorRecord, Manifest
from exporter_pipeline.exports.naming import ERROR_SUFFIX, manifests_prefix
from exporter_pipeline.exports.spec import DefinitionsFile, ExportDefinition
from exporter_pipeline.names import delivery_sensor_name
from exporter_pipeline.settings import Settings

DELIVERY_JOB = "deliver_export"


def has_delivery(export: ExportDefinition) -> bool:
    return export.delivery is not None and bool(export.delivery.webhook or export.delivery.email)


class DeliveryConfig(dg.Config):
    """Which manifest (or error file) of which export to deliver."""

    export: str
    key: str


def read_notice(destination: Destination, key: str) -> tuple[Notice, str]:
    """The notice of the manifest (or error file) at `key`, and the run that wrote it."""
    data = destination.get_bytes(key)
    if key.endswith(ERROR_SUFFIX):
        record = ErrorRecord.from_bytes(data)
        return failed_notice(record, key), record.run_id
    manifest = Manifest.from_bytes(data)
    return ready_notice(manifest, key, destination.signed_url), manifest.run_id


def read_own_notice(
    export: ExportDefinition, destination: Destination, key: str
) -> tuple[Notice, str]:
    """The notice of `key`, refused unless it is a manifest or error file of `export`
    itself: a delivery never sends one export's files to another export's receivers."""
    if not key.startswith(manifests_prefix(export.output.path)):
        raise dg.Failure(
            f"{key} is not a manifest of export {export.name!r}: not delivered",
            allow_retries=False,
        )
    notice, run_id = read_notice(destination, key)
    if (notice.export, notice.tenant) != (export.name, export.tenant):
        raise dg.Failure(
            f"{key} belongs to export {notice.export!r} of tenant {notice.tenant!r}, "
            f"not to export {export.name!r}: not delivered",
            allow_retries=False,
        )
    return notice, run_id


def build_delivery_job(
    definitions: DefinitionsFile, settings: Settings | None = None
) -> dg.JobDefinition:
    @dg.op(name="deliver")
    def deliver(
        context: dg.OpExecutionContext,
        config: DeliveryConfig,
        outputs: OutputsResource,
        webhooks: WebhooksResource,
        smtp: SmtpResource,
    ) -> dg.Output[dict]:
        """Deliver one manifest (or failure) by signed webhook, then by email."""
        export = definitions.export(config.export)
        assert export.delivery is not None
        destination = outputs.destination(export.output.name)
        notice, run_id = read_own_notice(export, destination, config.key)
        # Stable per manifest and run: every attempt of one delivery carries the same id.
        msg = message_id(export.name, config.key, run_id)
        metadata: dict[str, Any] = {"type": notice.type, "webhook_id": msg, "source": config.key}
        hook = export.delivery.webhook
        if hook:
            # First: a failed attempt raises (a Dagster retry of this step) before any
            # email is sent, so the email goes out once, after the webhook was accepted.
            metadata |= send_webhook(context, webhooks, export.name, hook, notice, msg)
        if export.delivery.email:
            if isinstance(notice, FailedNotice):
                message = failed_message(notice, smtp.sender, export.delivery.email)
            else:
                message = ready_message(notice, smtp.sender, export.delivery.email)
            smtp.send(message)
            metadata["emailed"] = dg.MetadataValue.json(export.delivery.email)
            context.log.info(f"emailed {', '.join(export.delivery.email)}")
        return dg.Output({"type": notice.type, "key": config.key}, metadata=metadata)

    @dg.job(
        name=DELIVERY_JOB,
        description="Deliver one export manifest by webhook and email.",
        tags=max_runtime_tags((settings or Settings.from_env()).delivery_max_runtime_s),
    )
    def deliver_export() -> None:
        deliver()

    return deliver_export


def build_delivery_sensor(output: str, exports: list[ExportDefinition]) -> dg.SensorDefinition:
    @dg.sensor(
        name=delivery_sensor_name(output),
        job_name=DELIVERY_JOB,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Launches a delivery for each new manifest in output {output}.",
    )
    def manifests_sensor(
        context: dg.SensorEvaluationContext, outputs: OutputsResource
    ) -> dg.SensorResult:
        destination = outputs.destination(output)
        cursor = ManifestCursor.parse(context.cursor)
        listing, owner = [], {}
        for export in exports:
            for info in destination.list(manifests_prefix(export.output.path)):
                if info.key.endswith(".json"):
                    listing.append(info)
                    owner[info.key] = export
        fresh, cursor = new_objects(listing, cursor, datetime.now(UTC))
        requests = [
            dg.RunRequest(
                run_key=f"{info.key}#{info.modified.astimezone(UTC).isoformat()}",
                run_config={
                    "ops": {
                        "deliver": {"config": {"export": owner[info.key].name, "key": info.key}}
                    }
                },
                tags={
                    "export": owner[info.key].name,
                    "tenant": owner[info.key].tenant,
                    "delivery": "failed" if info.key.endswith(ERROR_SUFFIX) else "ready",
                },
            )
            for info in fresh
        ]
        return dg.SensorResult(run_requests=requests, cursor=cursor.serialize())

    return manifests_sensor


def build_delivery(
    definitions: DefinitionsFile, settings: Settings
) -> tuple[dg.JobDefinition, list[dg.SensorDefinition], dict[str, dg.ConfigurableResource]]:
    """The delivery job, a sensor per output with delivering exports, and their resources."""
    by_output: dict[str, list[ExportDefinition]] = {}
    for export in definitions.exports:
        if has_delivery(export):
            by_output.setdefault(export.output.name, []).append(export)
    sensors = [build_delivery_sensor(o, e) for o, e in sorted(by_output.items())]
    resources: dict[str, dg.ConfigurableResource] = {
        "smtp": smtp_resource(settings),
        # One resource for every export's webhook: no secret is read until a webhook is sent.
        "webhooks": WebhooksResource.from_settings(settings),
    }
    return build_delivery_job(definitions, settings), sensors, resources


def smtp_resource(settings: Settings) -> SmtpResource:
    password = dg.EnvVar("EXPORTER_SMTP_PASSWORD") if settings.smtp_password_set else None
    return SmtpResource(
        host=settings.smtp_host,
        port=settings.smtp_port,
        starttls=settings.smtp_starttls,
        username=settings.smtp_user or None,
        password=password,
        sender=settings.smtp_from,
    )
