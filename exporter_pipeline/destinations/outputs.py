"""The named outputs of a definitions file: where export files go (pure models).

An output names the environment variables that hold its secrets (`*_env`); the values are
read only when a run opens that one output (`defs.resources.OutputsResource`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from exporter_pipeline.names import name_problem

ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
EnvName = Annotated[str, Field(pattern=ENV_NAME_PATTERN)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def named(field: str, value: str) -> str:
    """`value` if it is a name (tenant, export, output), else a ValueError naming `field`."""
    problem = name_problem(value)
    if problem:
        raise ValueError(f"{field} {problem}")
    return value


class _OutputBase(StrictModel):
    # An output with a tenant belongs to it: only that tenant's exports may use it.
    tenant: str | None = None

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, tenant: str | None) -> str | None:
        return None if tenant is None else named("tenant", tenant)


class LocalOutput(_OutputBase):
    type: Literal["local"]
    path: str
    # Outputs we manage: retention and erasure may rewrite or remove files there.
    managed: bool = True


class S3Output(_OutputBase):
    type: Literal["s3"]
    bucket: str
    region: str | None = None
    prefix: str = ""
    endpoint_url_env: EnvName | None = None
    access_key_id_env: EnvName | None = None
    secret_access_key_env: EnvName | None = None
    managed: bool = False


class GCSOutput(_OutputBase):
    type: Literal["gcs"]
    bucket: str
    prefix: str = ""
    project: str | None = None
    credentials_json_env: EnvName | None = None
    endpoint_url_env: EnvName | None = None
    managed: bool = False


class AzureOutput(_OutputBase):
    type: Literal["azure"]
    container: str
    prefix: str = ""
    account_url: str | None = None
    account_url_env: EnvName | None = None
    account_name_env: EnvName | None = None
    account_key_env: EnvName | None = None
    connection_string_env: EnvName | None = None
    managed: bool = False


Output = Annotated[LocalOutput | S3Output | GCSOutput | AzureOutput, Field(discriminator="type")]
