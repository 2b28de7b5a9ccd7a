"""Real storage servers for the tests, one object per kind, able to stop and start again.

Each `CloudServer` runs its server process on a fixed free port of 127.0.0.1, so a test
can stop it in the middle of an export and bring it back at the same address. Its
destinations are opened as a run opens them: an output model naming environment
variables, opened with an environment holding their values.
"""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from exporter_pipeline.destinations import Destination
from exporter_pipeline.destinations.outputs import Output
from exporter_pipeline_tests.servers import (
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    azurite_command,
    free_port,
    gcs_emulator_command,
    moto_command,
    server_process,
)

ACCESS_KEY_ID = "test-access-key"
SECRET_ACCESS_KEY = "test-secret-key"
# Few, quick SDK retries: a stopped server fails a test in seconds, not minutes.
RETRIES = {"EXPORTER_DESTINATION_ATTEMPTS": "3", "EXPORTER_DESTINATION_RETRY_S": "3"}
_OUTPUT: TypeAdapter[Output] = TypeAdapter(Output)


class CloudServer:
    kind = ""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self._stack: ExitStack | None = None

    @property
    def url(self) -> str:
        """The server's base URL on 127.0.0.1."""
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return {}

    def start(self) -> None:
        self._stack = ExitStack()
        log = self.workdir / f"{self.kind}-{self.port}.log"
        self._stack.enter_context(server_process(self.command(), self.port, log))

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def output_fields(self, bucket: str) -> dict[str, Any]:
        """The output's fields in a definitions file (secrets named by `*_env`)."""
        raise NotImplementedError

    def secrets(self) -> dict[str, str]:
        """The values of the variables `output_fields` names."""
        raise NotImplementedError

    def output(self, bucket: str, prefix: str = "") -> Output:
        return _OUTPUT.validate_python(
            {"type": self.kind, "prefix": prefix, **self.output_fields(bucket)}
        )

    def destination(self, bucket: str, prefix: str = "", **environ: str) -> Destination:
        """The destination of an output on this server; `environ` overrides variables."""
        env = {**self.environment(), **RETRIES, **self.secrets(), **environ}
        return self.output(bucket, prefix).open(f"{self.kind}_out", env)

    def new_bucket(self) -> str:
        name = f"b{uuid.uuid4().hex[:16]}"
        self.create_bucket(name)
        return name

    def create_bucket(self, name: str) -> None:
        raise NotImplementedError


class S3CloudServer(CloudServer):
    kind = "s3"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return moto_command(self.port)

    def output_fields(self, bucket: str) -> dict[str, Any]:
        return {
            "bucket": bucket,
            "region": "us-east-1",
            "endpoint_url_env": "TEST_S3_ENDPOINT",
            "access_key_id_env": "TEST_S3_KEY",
            "secret_access_key_env": "TEST_S3_SECRET",
        }

    def secrets(self) -> dict[str, str]:
        return {
            "TEST_S3_ENDPOINT": self.url,
            "TEST_S3_KEY": ACCESS_KEY_ID,
            "TEST_S3_SECRET": SECRET_ACCESS_KEY,
        }

    def create_bucket(self, name: str) -> None:
        import boto3

        boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name="us-east-1",
        ).create_bucket(Bucket=name)


class GCSCloudServer(CloudServer):
    kind = "gcs"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return gcs_emulator_command(self.port)

    def environment(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.url}

    def output_fields(self, bucket: str) -> dict[str, Any]:
        return {"bucket": bucket, "project": "test", "credentials_json_env": "TEST_GCS_KEY"}

    def secrets(self) -> dict[str, str]:
        return {"TEST_GCS_KEY": signing_key_json()}

    def create_bucket(self, name: str) -> None:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(
            project="test",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.url},
        )
        client.create_bucket(name)


class AzureCloudServer(CloudServer):
    kind = "azure"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    def command(self) -> list[str]:
        return azurite_command(self.port)

    def output_fields(self, bucket: str) -> dict[str, Any]:
        return {
            "container": bucket,
            "account_url_env": "TEST_AZ_URL",
            "account_key_env": "TEST_AZ_KEY",
        }

    def secrets(self) -> dict[str, str]:
        return {"TEST_AZ_URL": self.url, "TEST_AZ_KEY": AZURITE_KEY}

    def create_bucket(self, name: str) -> None:
        from azure.storage.blob import BlobServiceClient

        BlobServiceClient(self.url, credential=AZURITE_KEY).create_container(name)


CLOUD_SERVERS: dict[str, type[CloudServer]] = {
    "s3": S3CloudServer,
    "gcs": GCSCloudServer,
    "azure": AzureCloudServer,
}

_SIGNING_KEY: str | None = None


def signing_key_json() -> str:
    """A throwaway service-account key, made once per test session, for V4 signing."""
    global _SIGNING_KEY
    if _SIGNING_KEY is None:
        import json

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        _SIGNING_KEY = json.dumps(
            {
                "type": "service_account",
                "project_id": "test",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "exporter@test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    return _SIGNING_KEY
