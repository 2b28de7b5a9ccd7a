"""A Google Cloud Storage bucket prefix as a destination.

Uploads above `RESUMABLE_CHUNK` go as a resumable session, which GCS turns into an
object only when the last chunk arrives; smaller ones are a single request. Either way
a failure leaves no partial object. Signed URLs are V4, signed locally with the service
account's key (no call to Google).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import requests
from google.api_core import exceptions as google_errors

from exporter_pipeline.destinations.base import DEFAULT_URL_TTL, Destination, ObjectInfo
from exporter_pipeline.destinations.retry import RetryPolicy
from exporter_pipeline.errors import (
    DestinationError,
    PermanentDestinationError,
    RetryableDestinationError,
)

T = TypeVar("T")
RESUMABLE_CHUNK = 8 * 1024 * 1024
TIMEOUT = (10, 120)  # connect, read seconds
PERMANENT = (
    google_errors.Unauthorized,
    google_errors.Forbidden,
    google_errors.NotFound,
    google_errors.BadRequest,
)
RETRYABLE = (
    google_errors.TooManyRequests,
    google_errors.InternalServerError,
    google_errors.BadGateway,
    google_errors.ServiceUnavailable,
    google_errors.GatewayTimeout,
    google_errors.RequestRangeNotSatisfiable,
)


def classify_gcs_error(error: Exception, action: str, uri: str) -> DestinationError:
    name = type(error).__name__
    message = f"GCS {action} failed for {uri}: {name}"
    if isinstance(error, PERMANENT):
        return PermanentDestinationError(message)
    if isinstance(error, RETRYABLE):
        return RetryableDestinationError(message)
    # requests/urllib3 connection and timeout errors: the server may come back.
    if isinstance(error, ConnectionError | TimeoutError | requests.exceptions.RequestException):
        return RetryableDestinationError(message)
    return DestinationError(message)


class GCSDestination(Destination):
    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "",
        signer: Any = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.client = client
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        self.signer = signer
        self.retry_policy = retry_policy or RetryPolicy()

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str = "") -> str:
        return f"gs://{self.bucket_name}/{self._key(key)}"

    def _blob(self, key: str) -> Any:
        return self.client.bucket(self.bucket_name).blob(self._key(key))

    def _call(self, action: str, key: str, call: Callable[[], T]) -> T:
        def attempt() -> T:
            try:
                return call()
            except requests.exceptions.RequestException as error:
                raise classify_gcs_error(error, action, self.uri(key)) from None
            except google_errors.NotFound:
                if action in ("download", "delete"):
                    raise FileNotFoundError(f"no object at {self.uri(key)}") from None
                raise PermanentDestinationError(
                    f"GCS {action} failed for {self.uri(key)}: bucket or object not found"
                ) from None
            except OSError as error:
                if isinstance(error, ConnectionError | TimeoutError):
                    raise classify_gcs_error(error, action, self.uri(key)) from None
                raise
            except Exception as error:
                raise classify_gcs_error(error, action, self.uri(key)) from None

        return self._retry(attempt)

    def put_stream(self, stream: BinaryIO, size: int, key: str) -> None:
        blob = self._blob(key)
        blob.chunk_size = RESUMABLE_CHUNK if size > RESUMABLE_CHUNK else None
        try:
            blob.upload_from_file(stream, size=size, retry=None, timeout=TIMEOUT)
        except (google_errors.GoogleAPICallError, requests.exceptions.RequestException) as error:
            # (requests' errors are OSErrors too: they must not pass for a local read error)
            raise classify_gcs_error(error, "upload", self.uri(key)) from None
        except OSError:
            raise  # the local stream failed; the upload was never completed
        except Exception as error:
            raise classify_gcs_error(error, "upload", self.uri(key)) from None

    def download(self, key: str, local_path: Path) -> None:
        self._call(
            "download",
            key,
            lambda: self._blob(key).download_to_filename(
                str(local_path), retry=None, timeout=TIMEOUT
            ),
        )

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        strip = len(self.prefix) + 1 if self.prefix else 0

        def listing() -> list[ObjectInfo]:
            blobs = self.client.list_blobs(
                self.bucket_name, prefix=self._key(prefix), retry=None, timeout=TIMEOUT
            )
            found = [
                ObjectInfo(
                    b.name[strip:], int(b.size or 0), (b.updated or b.time_created).astimezone(UTC)
                )
                for b in blobs
            ]
            return sorted(found, key=lambda o: o.key)

        return self._call("list", prefix, listing)

    def delete(self, key: str) -> None:
        try:
            self._call("delete", key, lambda: self._blob(key).delete(retry=None, timeout=TIMEOUT))
        except FileNotFoundError:
            pass

    def signed_url(self, key: str, expires: timedelta = DEFAULT_URL_TTL) -> str:
        if self.signer is None:
            raise PermanentDestinationError(
                f"GCS signed URL for {self.uri(key)}: the output has no service account "
                "credentials to sign with (set credentials_json_env)"
            )
        emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        extra = {"api_access_endpoint": emulator} if emulator else {}
        return str(
            self._blob(key).generate_signed_url(
                version="v4", expiration=expires, method="GET", credentials=self.signer, **extra
            )
        )
