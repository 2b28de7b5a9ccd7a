"""The delivery job and the sensors that launch it, one sensor per output.

A sensor lists the `_manifests/` folders of the exports that write to its output and
have delivery targets, and launches one `deliver_export` run per new manifest (or
error file) with run key `<key>#<modification time>`: Dagster never launches two runs
with one run key, so each manifest is delivered once, whichever job or backfill wrote
it. A run of `deliver_export` reads the manifest, signs a URL per file, POSTs the
webhook and sends the email; its outcome is the run's metadata.
"""

from datetime import UTC, datetime
from typing import Any

import dagster as dg
import orjson

from exporter_pipeline.defs.resources import OutputsResource, SmtpResource
from exporter_pipeline.defs.run_limits import max_runtime_tags
from exporter_pipeline.delivery.addresses import redact_url
from exporter_pipeline.delivery.cursor import ManifestCursor, new_objects
from exporter_pipeline.delivery.email import failed_message, ready_message
from exporter_pipeline.delivery.webhook import WebhookPolicy, message_id, post
from exporter_pipeline.destinations import Destination
from exporter_pipeline.exports.naming import ERROR_SUFFIX, MANIFEST_FOLDER
from exporter_pipeline.exports.spec import DefinitionsFile, ExportDefinition
from exporter_pipeline.names import dagster_name, delivery_sensor_name
from exporter_pipeline.settings import Settings

DELIVERY_JOB = "deliver_export"


class WebhookResource(dg.ConfigurableResource):
    """One export's webhook: the signing secret from the environment, and its limits.

    The URL itself stays in the export definition: a resource's configuration is shown in
    the UI, and the URL's query string may be a token. `shown_url` is its redacted form.
    """

    shown_url: str
    secret: str
    attempts: int = 6
    backoff_seconds: float = 1.0
    attempt_timeout_s: float = 15.0
    total_timeout_s: float = 300.0
    max_response_bytes: int = 65536
    allow_private: bool = False

    def policy(self) -> WebhookPolicy:
        return WebhookPolicy(
            attempts=self.attempts,
            base_seconds=self.backoff_seconds,
            timeout_seconds=self.attempt_timeout_s,
            total_seconds=self.total_timeout_s,
            max_response_bytes=self.max_response_bytes,
            allow_private=self.allow_private,
        )


def webhook_resource_key(export: str) -> str:
    return f"webhook_{dagster_name(export)}"


def has_delivery(export: ExportDefinition) -> bool:
    return export.delivery is not None and bool(export.delivery.webhook or export.delivery.email)


class DeliveryConfig(dg.Config):
    """Which manifest (or error file) of which export to deliver."""

    export: str
    key: str


def ready_payload(manifest: dict[str, Any], key: str, destination: Destination) -> dict[str, Any]:
    """The webhook body of DESIGN.md: every file with a signed URL valid 7 days."""
    return {
        "type": "export.ready",
        "export": manifest["export"],
        "tenant": manifest["tenant"],
        "window": manifest["window"],
        "manifest": key,
        "files": [
            {
                "key": f["key"],
                "url": destination.signed_url(f["key"]),
                "rows": f["rows"],
                "bytes": f["bytes"],
                "sha256": f["sha256"],
            }
            for f in manifest["files"]
        ],
    }


def failed_payload(error: dict[str, Any], key: str) -> dict[str, Any]:
    return {
        "type": "export.failed",
        "export": error["export"],
        "tenant": error["tenant"],
        "window": error["window"],
        "error_file": key,
        "error": error["error"],
        "run_id": error["run_id"],
    }


def build_delivery_job(
    definitions: DefinitionsFile, settings: Settings | None = None
) -> dg.JobDefinition:
    webhooks = [e for e in definitions.exports if e.delivery and e.delivery.webhook]
    keys = {
        "smtp",
        "outputs",
        *(webhook_resource_key(e.name) for e in webhooks),
    }

    @dg.op(name="deliver", required_resource_keys=keys)
    def deliver(context: dg.OpExecutionContext, config: DeliveryConfig) -> dg.Output[dict]:
        """Deliver one manifest (or failure) by signed webhook and email."""
        export = definitions.export(config.export)
        outputs: OutputsResource = context.resources.outputs
        destination = outputs.destination(export.output.name)
        document = orjson.loads(destination.get_bytes(config.key))
        failed = config.key.endswith(ERROR_SUFFIX)
        payload = (
            failed_payload(document, config.key)
            if failed
            else ready_payload(document, config.key, destination)
        )
        # Stable per manifest and run: a retried delivery carries the same id.
        msg = message_id(export.name, config.key, document.get("run_id", ""))
        metadata: dict[str, Any] = {
            "type": payload["type"],
            "webhook_id": msg,
            "source": config.key,
        }
        assert export.delivery is not None
        if export.delivery.webhook:
            hook: WebhookResource = getattr(context.resources, webhook_resource_key(export.name))
            outcome = post(
                export.delivery.webhook.url,
                payload,
                hook.secret,
                msg,
                hook.policy(),
                log=context.log.info,
            )
            metadata.update(
                webhook_status=outcome.status,
                webhook_attempts=outcome.attempts,
                webhook_url=redact_url(export.delivery.webhook.url),
            )
        if export.delivery.email:
            smtp: SmtpResource = context.resources.smtp
            build = failed_message if failed else ready_message
            smtp.send(build(payload, smtp.sender, export.delivery.email))
            metadata["emailed"] = dg.MetadataValue.json(export.delivery.email)
            context.log.info(f"emailed {', '.join(export.delivery.email)}")
        return dg.Output({"type": payload["type"], "key": config.key}, metadata=metadata)

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
            folder = f"{export.output.path.strip('/')}/" if export.output.path.strip("/") else ""
            for info in destination.list(f"{folder}{MANIFEST_FOLDER}/"):
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
    resources: dict[str, dg.ConfigurableResource] = {"smtp": smtp_resource(settings)}
    for export in definitions.exports:
        if not has_delivery(export):
            continue
        by_output.setdefault(export.output.name, []).append(export)
        assert export.delivery is not None
        if export.delivery.webhook:
            hook = export.delivery.webhook
            resources[webhook_resource_key(export.name)] = WebhookResource(
                shown_url=redact_url(hook.url),
                secret=dg.EnvVar(hook.secret_env),
                attempts=hook.attempts,
                backoff_seconds=hook.backoff_seconds,
                attempt_timeout_s=settings.webhook_attempt_timeout_s,
                total_timeout_s=settings.webhook_total_timeout_s,
                max_response_bytes=settings.webhook_max_response_bytes,
                allow_private=settings.webhook_allow_private,
            )
    sensors = [build_delivery_sensor(o, e) for o, e in sorted(by_output.items())]
    return build_delivery_job(definitions, settings), sensors, resources


def smtp_resource(settings: Settings) -> SmtpResource:
    import os

    password = (
        dg.EnvVar("EXPORTER_SMTP_PASSWORD") if os.environ.get("EXPORTER_SMTP_PASSWORD") else None
    )
    return SmtpResource(
        host=settings.smtp_host,
        port=settings.smtp_port,
        starttls=settings.smtp_starttls,
        username=settings.smtp_user or None,
        password=password,
        sender=settings.smtp_from,
    )
