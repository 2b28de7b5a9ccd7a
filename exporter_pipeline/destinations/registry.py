"""Destinations by URL scheme: the lake, the landing zone and other settings URLs."""

from __future__ import annotations

from pathlib import Path

from exporter_pipeline.destinations.base import Destination
from exporter_pipeline.destinations.local import LocalDestination


def destination_from_url(url: str) -> Destination:
    """The destination for a settings URL: a local path, `file://` or `s3://bucket/prefix`.

    S3 credentials and endpoint come from the standard AWS environment
    (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL`, ...).
    """
    if url.startswith("s3://"):
        # Imported on use: boto3 is loaded only by those that need it.
        from exporter_pipeline.destinations.s3 import S3Destination

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        return S3Destination.from_environment(bucket=bucket, prefix=prefix)
    if "://" in url and not url.startswith("file://"):
        scheme = url.split("://", 1)[0]
        raise ValueError(f"unsupported URL scheme {scheme!r} in {url!r}: use a path or s3://")
    return LocalDestination(Path(url.removeprefix("file://")))
