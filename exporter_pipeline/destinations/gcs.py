"""A Google Cloud Storage bucket prefix as a destination.

Uploads above `RESUMABLE_CHUNK` go as a resumable session, which GCS turns into an
object only when the last chunk arrives; smaller ones are a single request. Either way
a failure leaves no partial object. Signed URLs are V4, signed locally with the service
account's key (no call to Google). Passing faults are retried by the SDK (`retry=` on each
call, google's exponential backoff up to a deadline).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import requests
from google.api_core import exceptions as google_errors
from google.api_core.retry import Retry
from google.cloud.storage.retry import DEFAULT_RETRY

from exporter_pipeline.destinations.base import DEFAULT_URL_TTL, Destination, ObjectInfo
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
    if isinstance(error, google_errors.RetryError):
        # The SDK's retries ran out of time: what counts is the last fault, which the
        # predicate found passing.
        last = error.cause
        name = type(last).__name__ if last is not None else "RetryError"
        status = getattr(getattr(last, "response", None), "status_code", None)
        name = f"{name} {status}" if isinstance(status, int) else name
        return RetryableDestinationError(f"GCS {action} failed for {uri}: {name}")
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


def retry_within(seconds: float) -> Retry:
    """The SDK's retry (connection errors, 429, 5xx), from 0.5 s doubling up to 20 s between
    attempts, given up after `seconds` in all."""
    return DEFAULT_RETRY.with_delay(initial=0.5, maximum=20.0, multiplier=2.0).with_timeout(seconds)


class GCSDestination(Destination):
    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "",
        signer: Any = None,
        *,
        retry: Retry = DEFAULT_RETRY,
        signing_endpoint: str | None = None,
    ) -> None:
        self.client = client
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        self.signer = signer
        self.retry = retry
        # The host signed URLs point at, when not Google's (the emulator).
        self.signing_endpoint = signing_endpoint
        self.retries_note = f"gave up after retrying for {retry.timeout:g} s"

    @classmethod
    def connect(
        cls,
        bucket: str,
        prefix: str = "",
        *,
        retry_s: float,
        project: str | None = None,
        credentials_json: str | None = None,
        endpoint: str | None = None,
    ) -> GCSDestination:
        """A destination with its own client. With an `endpoint` (the emulator) calls are
        anonymous and the service account key, if any, only signs URLs."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        signer = service_account_key(credentials_json) if credentials_json else None
        project = project or (signer.project_id if signer else None)
        if endpoint:
            client = storage.Client(
                project=project or "exporter-pipeline",
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": endpoint},
            )
        else:  # the key if given, else Google's application default credentials
            client = storage.Client(project=project, credentials=signer)
        return cls(
            client, bucket, prefix, signer, retry=retry_within(retry_s), signing_endpoint=endpoint
        )

    def close(self) -> None:
        self.client.close()

    def uri(self, key: str = "") -> str:
        return f"gs://{self.bucket_name}/{self.object_key(key)}"

    def _blob(self, key: str) -> Any:
        return self.client.bucket(self.bucket_name).blob(self.object_key(key))

    def _fail(self, error: Exception, action: str, key: str) -> DestinationError:
        return self._given_up(classify_gcs_error(error, action, self.uri(key)))

    def _call(self, action: str, key: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except requests.exceptions.RequestException as error:
            raise self._fail(error, action, key) from None
        except google_errors.NotFound:
            if action in ("download", "delete"):
                raise FileNotFoundError(f"no object at {self.uri(key)}") from None
            raise PermanentDestinationError(
                f"GCS {action} failed for {self.uri(key)}: bucket or object not found"
            ) from None
        except OSError as error:
            if isinstance(error, ConnectionError | TimeoutError):
                raise self._fail(error, action, key) from None
            raise
        except Exception as error:
            raise self._fail(error, action, key) from None

    def put_stream(self, stream: BinaryIO, size: int, key: str) -> None:
        blob = self._blob(key)
        blob.chunk_size = RESUMABLE_CHUNK if size > RESUMABLE_CHUNK else None
        try:
            # Retried without a generation precondition, which the SDK asks for by default:
            # the run owns this key and re-sends the same whole object, so a retry after
            # an answer that was lost writes the same bytes again.
            blob.upload_from_file(stream, size=size, retry=self.retry, timeout=TIMEOUT)
        except (google_errors.GoogleAPICallError, requests.exceptions.RequestException) as error:
            # (requests' errors are OSErrors too: they must not pass for a local read error)
            raise self._fail(error, "upload", key) from None
        except OSError:
            raise  # the local stream failed; the upload was never completed
        except Exception as error:
            raise self._fail(error, "upload", key) from None

    def download(self, key: str, local_path: Path) -> None:
        self._call(
            "download",
            key,
            lambda: self._blob(key).download_to_filename(
                str(local_path), retry=self.retry, timeout=TIMEOUT
            ),
        )

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        strip = len(self.prefix) + 1 if self.prefix else 0

        def listing() -> list[ObjectInfo]:
            blobs = self.client.list_blobs(
                self.bucket_name, prefix=self.object_key(prefix), retry=self.retry, timeout=TIMEOUT
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
            self._call(
                "delete", key, lambda: self._blob(key).delete(retry=self.retry, timeout=TIMEOUT)
            )
        except FileNotFoundError:
            pass

    def signed_url(self, key: str, expires: timedelta = DEFAULT_URL_TTL) -> str:
        if self.signer is None:
            raise PermanentDestinationError(
                f"GCS signed URL for {self.uri(key)}: the output has no service account "
                "credentials to sign with (set credentials_json_env)"
            )
        endpoint = self.signing_endpoint
        extra = {"api_access_endpoint": endpoint} if endpoint else {}
        return str(
            self._blob(key).generate_signed_url(
                version="v4", expiration=expires, method="GET", credentials=self.signer, **extra
            )
        )


def service_account_key(credentials_json: str) -> Any:
    """Service account credentials from a key file's JSON text (never echoed in errors)."""
    import json

    from google.oauth2 import service_account

    try:
        return service_account.Credentials.from_service_account_info(json.loads(credentials_json))
    except (ValueError, KeyError):
        raise PermanentDestinationError("credentials_json is not a service account key") from None
