"""An S3 (or S3-compatible) bucket prefix as a destination.

`upload_file` sends large files as a multipart upload that S3 commits only when every
part has arrived (and aborts on failure), so a final key never holds a partial object.
Passing faults (connection errors, 5xx, throttling) are retried by botocore's "standard"
retry mode, each request on its own (one part of a multipart upload, not the whole file).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import boto3
import botocore.loaders
import botocore.session
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from exporter_pipeline.destinations.base import DEFAULT_URL_TTL, Destination, ObjectInfo
from exporter_pipeline.errors import (
    DestinationError,
    PermanentDestinationError,
    RetryableDestinationError,
)
from exporter_pipeline.settings import Settings

T = TypeVar("T")
# botocore's data files (endpoints, the S3 service model), parsed once per process: a new
# session parses them again, a quarter of a second per client (the delivery sensor opens
# one per output with news). Only data is shared, never a session's credentials.
_DATA_LOADER = botocore.loaders.create_loader()
_CLIENTS = threading.Lock()


def new_session() -> boto3.session.Session:
    """A session of its own (its own credential chain) reading the shared data files."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _DATA_LOADER)
    return boto3.session.Session(botocore_session=core)


CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 10, 120

PERMANENT_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "NoSuchBucket",
    "AllAccessDisabled",
    "InvalidBucketName",
}


def classify_s3_error(error: Exception, action: str, uri: str) -> DestinationError:
    """Turn a botocore error into our retryable/permanent split, without echoing secrets."""
    # boto3's transfer manager wraps the service's answer; judge by the answer itself.
    if isinstance(error, S3UploadFailedError) and isinstance(error.__context__, ClientError):
        error = error.__context__
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = f"S3 {action} failed for {uri}: {code or status}"
        if code in PERMANENT_CODES or (400 <= status < 500 and status not in (408, 429)):
            return PermanentDestinationError(message)
        return RetryableDestinationError(message)
    if isinstance(error, EndpointConnectionError | BotoCoreError | ConnectionError):
        return RetryableDestinationError(f"S3 {action} failed for {uri}: {type(error).__name__}")
    return DestinationError(f"S3 {action} failed for {uri}: {type(error).__name__}")


# Above this size uploads go in parts (committed only when all parts arrived).
MULTIPART_THRESHOLD = 8 * 1024 * 1024


def client_config(attempts: int) -> Config:
    """botocore's own retries: "standard" mode (exponential backoff with jitter, a retry
    quota), `attempts` tries of each request in all (botocore's `max_attempts` would count
    the retries only). Signed URLs are Signature Version 4 (`X-Amz-Algorithm=AWS4-HMAC-SHA256`):
    AWS deprecated version 2, and newer regions refuse it."""
    return Config(
        signature_version="s3v4",
        retries={"mode": "standard", "total_max_attempts": attempts},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
    )


class S3Destination(Destination):
    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        attempts = (client.meta.config.retries or {}).get("total_max_attempts")
        self.retries_note = f"gave up after {attempts} attempts" if attempts else ""

    @classmethod
    def connect(
        cls,
        bucket: str,
        prefix: str = "",
        *,
        attempts: int,
        region: str | None = None,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> S3Destination:
        """A destination with its own client; keys left out come from the AWS environment."""
        with _CLIENTS:  # creating clients is not thread-safe; using them is
            client = new_session().client(
                "s3",
                region_name=region,
                endpoint_url=endpoint_url,
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key,
                config=client_config(attempts),
            )
        return cls(client, bucket, prefix)

    @classmethod
    def from_environment(cls, bucket: str, prefix: str = "") -> S3Destination:
        """Credentials and endpoint from the standard AWS environment variables."""
        return cls.connect(bucket, prefix, attempts=Settings.from_env().destination_attempts)

    def close(self) -> None:
        self.client.close()

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def _call(self, action: str, key: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise FileNotFoundError(f"no object at {self.uri(key)}") from None
            raise self._given_up(classify_s3_error(error, action, self.uri(key))) from None
        except OSError:
            raise  # a local file could not be read or written
        except Exception as error:
            raise self._given_up(classify_s3_error(error, action, self.uri(key))) from None

    def put_stream(self, stream: BinaryIO, size: int, key: str) -> None:
        config = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, use_threads=False)
        try:
            self.client.upload_fileobj(stream, self.bucket, self.object_key(key), Config=config)
        except OSError:
            raise  # reading the local stream failed; the upload was aborted
        except Exception as error:
            raise self._given_up(classify_s3_error(error, "upload", self.uri(key))) from None

    def download(self, key: str, local_path: Path) -> None:
        self._call(
            "download",
            key,
            lambda: self.client.download_file(self.bucket, self.object_key(key), str(local_path)),
        )

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        strip = len(self.prefix) + 1 if self.prefix else 0

        def listing() -> list[ObjectInfo]:
            found = []
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.object_key(prefix)):
                for item in page.get("Contents", []):
                    found.append(
                        ObjectInfo(item["Key"][strip:], item["Size"], item["LastModified"])
                    )
            return sorted(found, key=lambda o: o.key)

        return self._call("list", prefix, listing)

    def delete(self, key: str) -> None:
        self._call(
            "delete",
            key,
            lambda: self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key)),
        )

    def signed_url(self, key: str, expires: timedelta = DEFAULT_URL_TTL) -> str:
        return self._call(
            "sign",
            key,
            lambda: self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self.object_key(key)},
                ExpiresIn=int(expires.total_seconds()),
            ),
        )
