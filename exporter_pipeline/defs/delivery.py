"""The delivery job, and the sensor that launches it (`defs/delivery_sensor.py`).

The sensor launches one `deliver_export` run per new manifest (or error file) with run
key `<key>#<modification time>`: Dagster never launches two runs with one run key, so
each manifest is delivered once, whichever job or backfill wrote it. A run of
`deliver_export` reads the manifest, signs a URL per file, POSTs the webhook and then
sends the email; its outcome is the run's metadata. Each webhook attempt is a Dagster
retry of the `deliver` step (see `defs/webhooks.py`).
"""

from typing import Any

import dagster as dg

from exporter_pipeline.defs.delivery_sensor import (
    DELIVERY_JOB,
    build_delivery_sensor,
    has_delivery,
)
from exporter_pipeline.defs.resources import OutputsResource, SmtpResource
from exporter_pipeline.defs.run_limits import max_runtime_tags
from exporter_pipeline.defs.webhooks import WebhooksResource, send_webhook
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
from exporter_pipeline.settings import Settings

__all__ = ["DELIVERY_JOB", "build_delivery", "has_delivery"]


class DeliveryConfig(dg.Config):
    """Which manifest (or error file) of which export to deliver."""

    export: str
    key: str


def read_notice(destination: Destination, key: str) -> tuple[Notice, str]:
    """The notice of the manifest (or error file) at `key`, and the run that wrote it."""
    data = destination.get_bytes(key)
    if key.endswith(ERROR_SUFFIX):
        record = ErrorRecord.from_bytes(data)
        return failed_notice(record, key, destination), record.run_id
    manifest = Manifest.from_bytes(data)
    return ready_notice(manifest, key, destination), manifest.run_id


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


def build_delivery(
    definitions: DefinitionsFile, settings: Settings
) -> tuple[dg.JobDefinition, list[dg.SensorDefinition], dict[str, dg.ConfigurableResource]]:
    """The delivery job, one sensor for every delivering export (none when there is no
    such export), and their resources."""
    delivering = any(has_delivery(export) for export in definitions.exports)
    sensors = [build_delivery_sensor(definitions, settings)] if delivering else []
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
