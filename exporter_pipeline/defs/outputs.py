"""Named outputs of the definitions file as Dagster resources, and their destinations.

Each output becomes a resource `output_<name>`. Its secret fields are `dg.EnvVar`s
naming the environment variables the definitions file gives, so Dagster resolves them
inside the run: the values never appear in run config, tags, the UI or logs. Clients are
built through the Dagster integrations (dagster-aws `S3Resource`, dagster-gcp
`GCSResource`, dagster-azure `AzureBlobStorageResource`) and the official SDKs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg

from exporter_pipeline.destinations.base import Destination
from exporter_pipeline.destinations.outputs import (
    AzureOutput,
    GCSOutput,
    LocalOutput,
    Output,
    S3Output,
)
from exporter_pipeline.destinations.retry import RetryPolicy
from exporter_pipeline.errors import PermanentDestinationError
from exporter_pipeline.names import dagster_name

# Output fields that hold the *name* of an environment variable → the resource field
# that receives its value.
ENV_FIELDS = {
    "endpoint_url_env": "endpoint_url",
    "access_key_id_env": "access_key_id",
    "secret_access_key_env": "secret_access_key",
    "credentials_json_env": "credentials_json",
    "account_url_env": "account_url",
    "account_key_env": "account_key",
    "connection_string_env": "connection_string",
}


def resource_key(output_name: str) -> str:
    # A resource key is a Python identifier: `acme-s3` is the resource `output_acme_s3`.
    return f"output_{dagster_name(output_name)}"


class OutputResource(dg.ConfigurableResource):
    """One named output: where files go, with credentials resolved from the environment."""

    name: str
    type: str
    path: str = ""
    bucket: str = ""
    prefix: str = ""
    region: str | None = None
    project: str | None = None
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    credentials_json: str | None = None
    account_url: str | None = None
    account_key: str | None = None
    connection_string: str | None = None
    retry_attempts: int = 5
    retry_base_seconds: float = 0.5

    def destination(self) -> Destination:
        policy = RetryPolicy(attempts=self.retry_attempts, base_seconds=self.retry_base_seconds)
        if self.type == "local":
            from exporter_pipeline.destinations.local import LocalDestination

            return LocalDestination(Path(self.path))
        if self.type == "s3":
            return self._s3(policy)
        if self.type == "gcs":
            return self._gcs(policy)
        if self.type == "azure":
            return self._azure(policy)
        raise PermanentDestinationError(f"output {self.name!r}: unknown type {self.type!r}")

    def _s3(self, policy: RetryPolicy) -> Destination:
        from dagster_aws.s3 import S3Resource

        from exporter_pipeline.destinations.s3 import S3Destination

        client = S3Resource(
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            max_attempts=1,  # our policy retries, with backoff and jitter
        ).get_client()
        return S3Destination(client, self.bucket, self.prefix, policy)

    def _gcs(self, policy: RetryPolicy) -> Destination:
        from dagster_gcp import GCSResource
        from google.cloud import storage
        from google.oauth2 import service_account

        from exporter_pipeline.destinations.gcs import GCSDestination

        signer = None
        if self.credentials_json:
            try:
                info = json.loads(self.credentials_json)
                signer = service_account.Credentials.from_service_account_info(info)
            except (ValueError, KeyError):
                raise PermanentDestinationError(
                    f"output {self.name!r}: credentials_json is not a service account key"
                ) from None
        client: Any
        if signer is not None and not os.environ.get("STORAGE_EMULATOR_HOST"):
            client = storage.Client(project=self.project or signer.project_id, credentials=signer)
        else:
            # The emulator takes anonymous calls; the key, if any, still signs URLs.
            client = GCSResource(project=self.project or "exporter-pipeline").get_client()
        return GCSDestination(client, self.bucket, self.prefix, signer, policy)

    def _azure(self, policy: RetryPolicy) -> Destination:
        from azure.storage.blob import BlobServiceClient
        from dagster_azure.blob import AzureBlobStorageKeyCredential, AzureBlobStorageResource

        from exporter_pipeline.destinations.azure import AzureBlobDestination

        if self.connection_string:
            service = BlobServiceClient.from_connection_string(self.connection_string)
            key = service.credential.account_key if service.credential else None
            return AzureBlobDestination(service, self.bucket, self.prefix, key, policy)
        if not (self.account_url and self.account_key):
            raise PermanentDestinationError(
                f"output {self.name!r}: an Azure output needs account_url and account_key_env, "
                "or connection_string_env"
            )
        resource = AzureBlobStorageResource(
            account_url=self.account_url,
            credential=AzureBlobStorageKeyCredential(key=self.account_key),
        )
        # The resource's client is a context manager; the destination lives for the run.
        service = resource.get_client().__enter__()
        return AzureBlobDestination(service, self.bucket, self.prefix, self.account_key, policy)


def output_resource(name: str, output: Output, resolve_now: bool = False) -> OutputResource:
    """The resource for one output. With `resolve_now` (command line, not a run) the
    environment variables are read here, and a missing one is a clear error."""
    fields: dict[str, Any] = {"name": name, "type": output.type}
    if isinstance(output, LocalOutput):
        fields["path"] = output.path
    elif isinstance(output, S3Output | GCSOutput):
        fields.update(bucket=output.bucket, prefix=output.prefix)
    elif isinstance(output, AzureOutput):
        fields.update(bucket=output.container, prefix=output.prefix)
        if output.account_url:
            fields["account_url"] = output.account_url
    if isinstance(output, S3Output):
        fields["region"] = output.region
    if isinstance(output, GCSOutput):
        fields["project"] = output.project
    for env_field, target in ENV_FIELDS.items():
        env_name = getattr(output, env_field, None)
        if env_name is None:
            continue
        if resolve_now:
            value = os.environ.get(env_name)
            if not value:
                raise PermanentDestinationError(
                    f"output {name!r}: environment variable {env_name} is not set"
                )
            fields[target] = value
        else:
            fields[target] = dg.EnvVar(env_name)
    return OutputResource(**fields)


def destination_for(name: str, output: Output) -> Destination:
    """A destination built now from the environment (for the command line and tests)."""
    return output_resource(name, output, resolve_now=True).destination()
