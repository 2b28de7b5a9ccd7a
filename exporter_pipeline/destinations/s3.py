"""An S3 (or S3-compatible) bucket prefix as a destination.

`upload_file` sends large files as a multipart upload that S3 commits only when every
part has arrived (and aborts on failure), so a final key never holds a partial object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from exporter_pipeline.destinations.base import Destination, ObjectInfo
from exporter_pipeline.errors import (
    DestinationError,
    PermanentDestinationError,
    RetryableDestinationError,
)

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
    if isinstance(error, EndpointConnectionError | BotoCoreError):
        return RetryableDestinationError(f"S3 {action} failed for {uri}: {type(error).__name__}")
    return DestinationError(f"S3 {action} failed for {uri}: {type(error).__name__}")


class S3Destination(Destination):
    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @classmethod
    def from_environment(cls, bucket: str, prefix: str = "") -> S3Destination:
        return cls(boto3.session.Session().client("s3"), bucket, prefix)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def put_file(self, local_path: Path, key: str) -> None:
        try:
            self.client.upload_file(str(local_path), self.bucket, self._key(key))
        except Exception as error:
            raise classify_s3_error(error, "upload", self.uri(key)) from None

    def download(self, key: str, local_path: Path) -> None:
        try:
            self.client.download_file(self.bucket, self._key(key), str(local_path))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise FileNotFoundError(f"no object at {self.uri(key)}") from None
            raise classify_s3_error(error, "download", self.uri(key)) from None
        except Exception as error:
            raise classify_s3_error(error, "download", self.uri(key)) from None

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        found = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                for item in page.get("Contents", []):
                    found.append(
                        ObjectInfo(item["Key"][strip:], item["Size"], item["LastModified"])
                    )
        except Exception as error:
            raise classify_s3_error(error, "list", self.uri(prefix)) from None
        return sorted(found, key=lambda o: o.key)

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as error:
            raise classify_s3_error(error, "delete", self.uri(key)) from None
