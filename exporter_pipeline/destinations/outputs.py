"""The destination of a named output of the definitions file.

Secrets are read from the environment variables the output names, at the moment the
destination is built (inside a run), and never copied into config, tags or messages.
"""

from __future__ import annotations

import os
from pathlib import Path

import boto3

from exporter_pipeline.destinations.base import Destination
from exporter_pipeline.destinations.local import LocalDestination
from exporter_pipeline.destinations.s3 import S3Destination
from exporter_pipeline.errors import PermanentDestinationError
from exporter_pipeline.exports.spec import LocalOutput, Output, S3Output


def _env(name: str | None, output: str) -> str | None:
    if name is None:
        return None
    value = os.environ.get(name)
    if not value:
        raise PermanentDestinationError(
            f"output {output!r}: environment variable {name} is not set"
        )
    return value


def destination_for(name: str, output: Output) -> Destination:
    if isinstance(output, LocalOutput):
        return LocalDestination(Path(output.path))
    if isinstance(output, S3Output):
        client = boto3.session.Session().client(
            "s3",
            region_name=output.region,
            endpoint_url=_env(output.endpoint_url_env, name),
            aws_access_key_id=_env(output.access_key_id_env, name),
            aws_secret_access_key=_env(output.secret_access_key_env, name),
        )
        return S3Destination(client, output.bucket, output.prefix)
    raise PermanentDestinationError(f"output {name!r}: type {output.type} is not supported yet")
