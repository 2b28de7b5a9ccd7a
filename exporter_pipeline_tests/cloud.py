"""Real storage servers for the tests, one object per kind, able to stop and start again.

Each `CloudServer` runs its server process on a fixed free port of 127.0.0.1, so a test
can stop it in the middle of an export and bring it back at the same address.
"""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from exporter_pipeline.defs.outputs import OutputResource
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


class CloudServer:
    kind = ""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self._stack: ExitStack | None = None

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
        raise NotImplementedError

    def resource(self, bucket: str, **extra: Any) -> OutputResource:
        fields = {
            "name": f"{self.kind}_out",
            "type": self.kind,
            "bucket": bucket,
            "retry_attempts": 3,
            "retry_base_seconds": 0.05,
            **self.output_fields(bucket),
            **extra,
        }
        return OutputResource(**fields)

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
            "endpoint_url": self.url,
            "access_key_id": ACCESS_KEY_ID,
            "secret_access_key": SECRET_ACCESS_KEY,
            "region": "us-east-1",
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
        return {"credentials_json": signing_key_json(), "project": "test"}

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
        return {"account_url": self.url, "account_key": AZURITE_KEY}

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
