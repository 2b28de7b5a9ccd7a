"""An Azure Blob Storage container prefix as a destination.

Uploads above `SINGLE_PUT_LIMIT` are staged as blocks of `BLOCK_SIZE` and committed in
one call at the end (both are given to the SDK's client); an upload that fails before the
commit leaves only uncommitted blocks, which are invisible and expire. Signed URLs are
read-only blob SAS tokens made with the account key. Passing faults are retried by the
SDK's `ExponentialRetry` policy, configured on the client.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from azure.core import exceptions as azure_errors
from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ExponentialRetry,
    generate_blob_sas,
)

from exporter_pipeline.destinations.base import DEFAULT_URL_TTL, Destination, ObjectInfo
from exporter_pipeline.errors import (
    DestinationError,
    PermanentDestinationError,
    RetryableDestinationError,
)

T = TypeVar("T")
SINGLE_PUT_LIMIT = 8 * 1024 * 1024
BLOCK_SIZE = 4 * 1024 * 1024
# Given to the client, so they hold for every call: connect and read, in seconds.
TIMEOUTS = {"connection_timeout": 10, "read_timeout": 120}


def retry_policy(attempts: int) -> ExponentialRetry:
    """The SDK's retries: `attempts` tries in all, waits of about 0.5, 2.5, 4.5, 8.5 s ...
    (the SDK's default starts at 15 s), for connection errors, timeouts, 408, 429 and 5xx."""
    retries = attempts - 1
    return ExponentialRetry(
        initial_backoff=0.5,  # type: ignore[arg-type]  # the SDK computes in float seconds
        increment_base=2,
        retry_total=retries,
        random_jitter_range=1,
        retry_connect=retries,
        retry_read=retries,
        retry_status=retries,
    )


def classify_azure_error(error: Exception, action: str, uri: str) -> DestinationError:
    message = f"Azure {action} failed for {uri}: {type(error).__name__}"
    if isinstance(
        error, azure_errors.ClientAuthenticationError | azure_errors.ResourceNotFoundError
    ):
        return PermanentDestinationError(message)
    if isinstance(error, azure_errors.ServiceRequestError | azure_errors.ServiceResponseError):
        return RetryableDestinationError(message)
    if isinstance(error, azure_errors.HttpResponseError):
        status = error.status_code or 0
        code = getattr(error, "error_code", None)
        code = getattr(code, "value", code)  # the service's own name, e.g. AuthorizationFailure
        message = f"{message} ({status} {code or ''})".rstrip()
        if status >= 500 or status in (408, 429):
            return RetryableDestinationError(message)
        return PermanentDestinationError(message)
    return DestinationError(message)


class AzureBlobDestination(Destination):
    def __init__(
        self,
        service: BlobServiceClient,
        container: str,
        prefix: str = "",
        account_key: str | None = None,
        attempts: int | None = None,
    ) -> None:
        self.service = service
        self.container_name = container
        self.container = service.get_container_client(container)
        self.prefix = prefix.strip("/")
        self.account_key = account_key
        self.retries_note = f"gave up after {attempts} attempts" if attempts else ""

    @classmethod
    def connect(
        cls,
        container: str,
        prefix: str = "",
        *,
        attempts: int,
        account_url: str | None = None,
        account_key: str | None = None,
        connection_string: str | None = None,
    ) -> AzureBlobDestination:
        """A destination owning its client, from a connection string or a URL and key."""
        options: dict[str, Any] = {
            "max_single_put_size": SINGLE_PUT_LIMIT,
            "max_block_size": BLOCK_SIZE,
            "retry_policy": retry_policy(attempts),
            # Blob storage never redirects; a redirect would take a tenant's request to an
            # address nobody checked (delivery/endpoints.py checks the first host only).
            "permit_redirects": False,
            **TIMEOUTS,
        }
        if connection_string:
            service = BlobServiceClient.from_connection_string(connection_string, **options)
            account_key = service.credential.account_key if service.credential else None
        else:
            service = BlobServiceClient(str(account_url), credential=account_key, **options)
        return cls(service, container, prefix, account_key, attempts)

    def close(self) -> None:
        self.service.close()

    def uri(self, key: str = "") -> str:
        return f"az://{self.container_name}/{self.object_key(key)}"

    def _fail(self, error: Exception, action: str, key: str) -> DestinationError:
        return self._given_up(classify_azure_error(error, action, self.uri(key)))

    def _call(self, action: str, key: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except azure_errors.ResourceNotFoundError as error:
            if action in ("download", "delete") and getattr(error, "error_code", None) == (
                "BlobNotFound"
            ):
                raise FileNotFoundError(f"no object at {self.uri(key)}") from None
            raise self._fail(error, action, key) from None
        except azure_errors.AzureError as error:
            raise self._fail(error, action, key) from None

    def put_stream(self, stream: BinaryIO, size: int, key: str) -> None:
        blob = self.container.get_blob_client(self.object_key(key))
        try:
            blob.upload_blob(stream, length=size, overwrite=True, max_concurrency=1)
        except azure_errors.AzureError as error:
            raise self._fail(error, "upload", key) from None

    def download(self, key: str, local_path: Path) -> None:
        def fetch() -> None:
            downloader = self.container.get_blob_client(self.object_key(key)).download_blob()
            with open(local_path, "wb") as handle:
                downloader.readinto(handle)

        self._call("download", key, fetch)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        strip = len(self.prefix) + 1 if self.prefix else 0

        def listing() -> list[ObjectInfo]:
            blobs = self.container.list_blobs(name_starts_with=self.object_key(prefix))
            found = [
                ObjectInfo(b.name[strip:], int(b.size), b.last_modified.astimezone(UTC))
                for b in blobs
            ]
            return sorted(found, key=lambda o: o.key)

        return self._call("list", prefix, listing)

    def delete(self, key: str) -> None:
        try:
            self._call("delete", key, lambda: self.container.delete_blob(self.object_key(key)))
        except FileNotFoundError:
            pass

    def signed_url(self, key: str, expires: timedelta = DEFAULT_URL_TTL) -> str:
        if not self.account_key:
            raise PermanentDestinationError(
                f"Azure signed URL for {self.uri(key)}: the output has no account key to sign "
                "with (set account_key_env or connection_string_env)"
            )
        blob = self.container.get_blob_client(self.object_key(key))
        token = generate_blob_sas(
            account_name=str(self.service.account_name),
            container_name=self.container_name,
            blob_name=self.object_key(key),
            account_key=self.account_key,
            permission=BlobSasPermissions(read=True),
            expiry=datetime.now(UTC) + expires,
        )
        return f"{blob.url}?{token}"
