"""An Azure Blob Storage container prefix as a destination.

Uploads above `SINGLE_PUT_LIMIT` are staged as blocks and committed in one call at the
end; an upload that fails before the commit leaves only uncommitted blocks, which are
invisible and expire. Signed URLs are read-only blob SAS tokens made with the account key.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from azure.core import exceptions as azure_errors
from azure.storage.blob import BlobSasPermissions, generate_blob_sas

from exporter_pipeline.destinations.base import DEFAULT_URL_TTL, Destination, ObjectInfo
from exporter_pipeline.destinations.retry import RetryPolicy
from exporter_pipeline.errors import (
    DestinationError,
    PermanentDestinationError,
    RetryableDestinationError,
)

T = TypeVar("T")
SINGLE_PUT_LIMIT = 8 * 1024 * 1024
BLOCK_SIZE = 4 * 1024 * 1024
# The SDK's own retries are turned off per call: our policy does the waiting.
NO_SDK_RETRY = {"retry_total": 0, "connection_timeout": 10, "read_timeout": 120}


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
        service: Any,
        container: str,
        prefix: str = "",
        account_key: str | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.service = service
        self.container_name = container
        self.container = service.get_container_client(container)
        self.prefix = prefix.strip("/")
        self.account_key = account_key
        self.retry_policy = retry_policy or RetryPolicy()

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str = "") -> str:
        return f"az://{self.container_name}/{self._key(key)}"

    def _call(self, action: str, key: str, call: Callable[[], T]) -> T:
        def attempt() -> T:
            try:
                return call()
            except azure_errors.ResourceNotFoundError as error:
                if (
                    action in ("download", "delete")
                    and getattr(error, "error_code", None) == "BlobNotFound"
                ):
                    raise FileNotFoundError(f"no object at {self.uri(key)}") from None
                raise classify_azure_error(error, action, self.uri(key)) from None
            except azure_errors.AzureError as error:
                raise classify_azure_error(error, action, self.uri(key)) from None

        return self._retry(attempt)

    def put_stream(self, stream: BinaryIO, size: int, key: str) -> None:
        blob = self.container.get_blob_client(self._key(key))
        try:
            blob.upload_blob(stream, length=size, overwrite=True, max_concurrency=1, **NO_SDK_RETRY)
        except azure_errors.AzureError as error:
            raise classify_azure_error(error, "upload", self.uri(key)) from None

    def download(self, key: str, local_path: Path) -> None:
        def fetch() -> None:
            downloader = self.container.get_blob_client(self._key(key)).download_blob(
                **NO_SDK_RETRY
            )
            with open(local_path, "wb") as handle:
                downloader.readinto(handle)

        self._call("download", key, fetch)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        strip = len(self.prefix) + 1 if self.prefix else 0

        def listing() -> list[ObjectInfo]:
            blobs = self.container.list_blobs(name_starts_with=self._key(prefix), **NO_SDK_RETRY)
            found = [
                ObjectInfo(b.name[strip:], int(b.size), b.last_modified.astimezone(UTC))
                for b in blobs
            ]
            return sorted(found, key=lambda o: o.key)

        return self._call("list", prefix, listing)

    def delete(self, key: str) -> None:
        try:
            self._call(
                "delete", key, lambda: self.container.delete_blob(self._key(key), **NO_SDK_RETRY)
            )
        except FileNotFoundError:
            pass

    def signed_url(self, key: str, expires: timedelta = DEFAULT_URL_TTL) -> str:
        if not self.account_key:
            raise PermanentDestinationError(
                f"Azure signed URL for {self.uri(key)}: the output has no account key to sign "
                "with (set account_key_env or connection_string_env)"
            )
        blob = self.container.get_blob_client(self._key(key))
        token = generate_blob_sas(
            account_name=self.service.account_name,
            container_name=self.container_name,
            blob_name=self._key(key),
            account_key=self.account_key,
            permission=BlobSasPermissions(read=True),
            expiry=datetime.now(UTC) + expires,
        )
        return f"{blob.url}?{token}"
