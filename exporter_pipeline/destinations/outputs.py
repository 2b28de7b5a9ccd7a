"""The named outputs of a definitions file: where export files go (pure models).

An output names the environment variables that hold its secrets (`*_env`); the values are
read only when that one output is opened (`open`, called by the run's
`defs.resources.OutputsResource` or the command line). A secret may instead be stored,
encrypted, in the definitions store (`store/`): `open` is then given it, decrypted, under
the field's name without `_env` (`secret_access_key`), and it wins over the variable.
Each backend module, and its cloud SDK, is imported only then, so loading the models
stays light.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from exporter_pipeline.errors import PermanentDestinationError
from exporter_pipeline.names import name_problem
from exporter_pipeline.settings import Settings

if TYPE_CHECKING:
    from exporter_pipeline.destinations.base import Destination

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

    def usable_by(self, tenant: str) -> bool:
        """Whether `tenant`'s exports may write here: its own output, or the operator's."""
        return self.tenant in (None, tenant)

    def open(
        self,
        name: str,
        environ: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> Destination:
        """The destination of this output, called `name`, its secrets read now from
        `secrets` (stored ones, by credential name) or `environ` (the process environment
        by default). The caller closes it."""
        raise NotImplementedError

    @classmethod
    def credentials(cls) -> tuple[str, ...]:
        """What may be stored as a secret instead of named by a variable: each `*_env`
        field, without the suffix (`secret_access_key`)."""
        return tuple(f.removesuffix("_env") for f in cls.model_fields if f.endswith("_env"))

    def _env(
        self,
        name: str,
        field: str,
        environ: Mapping[str, str],
        secrets: Mapping[str, str] | None = None,
    ) -> str | None:
        """The stored secret for `field`, else the value of the variable it names (None if
        the field is unset); a missing variable is an error naming the output and the
        variable, never a value."""
        stored = (secrets or {}).get(field.removesuffix("_env"))
        if stored:
            return stored
        env_name: str | None = getattr(self, field)
        if env_name is None:
            return None
        value = environ.get(env_name)
        if not value:
            raise PermanentDestinationError(
                f"output {name!r}: environment variable {env_name} is not set"
            )
        return value


class LocalOutput(_OutputBase):
    type: Literal["local"]
    path: str
    # Outputs we manage: retention and erasure may rewrite or remove files there.
    managed: bool = True

    def open(
        self,
        name: str,
        environ: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> Destination:
        from exporter_pipeline.destinations.local import LocalDestination

        return LocalDestination(Path(self.path))


class S3Output(_OutputBase):
    type: Literal["s3"]
    bucket: str
    region: str | None = None
    prefix: str = ""
    endpoint_url_env: EnvName | None = None
    access_key_id_env: EnvName | None = None
    secret_access_key_env: EnvName | None = None
    managed: bool = False

    def open(
        self,
        name: str,
        environ: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> Destination:
        from exporter_pipeline.destinations.s3 import S3Destination

        env = os.environ if environ is None else environ
        return S3Destination.connect(
            self.bucket,
            self.prefix,
            attempts=Settings.from_env(env).destination_attempts,
            region=self.region,
            endpoint_url=self._env(name, "endpoint_url_env", env, secrets),
            access_key_id=self._env(name, "access_key_id_env", env, secrets),
            secret_access_key=self._env(name, "secret_access_key_env", env, secrets),
        )


class GCSOutput(_OutputBase):
    type: Literal["gcs"]
    bucket: str
    prefix: str = ""
    project: str | None = None
    credentials_json_env: EnvName | None = None
    endpoint_url_env: EnvName | None = None
    managed: bool = False

    def open(
        self,
        name: str,
        environ: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> Destination:
        from exporter_pipeline.destinations.gcs import GCSDestination

        env = os.environ if environ is None else environ
        settings = Settings.from_env(env)
        credentials_json = self._env(name, "credentials_json_env", env, secrets)
        endpoint = (
            self._env(name, "endpoint_url_env", env, secrets) or settings.storage_emulator_host
        )
        try:
            return GCSDestination.connect(
                self.bucket,
                self.prefix,
                retry_s=settings.destination_retry_s,
                project=self.project,
                credentials_json=credentials_json,
                endpoint=endpoint or None,
            )
        except PermanentDestinationError as error:  # the key is not a service account key
            raise PermanentDestinationError(f"output {name!r}: {error}") from None


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

    def open(
        self,
        name: str,
        environ: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> Destination:
        from exporter_pipeline.destinations.azure import AzureBlobDestination

        env = os.environ if environ is None else environ
        attempts = Settings.from_env(env).destination_attempts
        connection_string = self._env(name, "connection_string_env", env, secrets)
        if connection_string:
            return AzureBlobDestination.connect(
                self.container, self.prefix, attempts=attempts, connection_string=connection_string
            )
        account_url = self._env(name, "account_url_env", env, secrets) or self.account_url
        account_key = self._env(name, "account_key_env", env, secrets)
        if not (account_url and account_key):
            raise PermanentDestinationError(
                f"output {name!r}: an Azure output needs account_url and account_key_env, "
                "or connection_string_env"
            )
        return AzureBlobDestination.connect(
            self.container,
            self.prefix,
            attempts=attempts,
            account_url=account_url,
            account_key=account_key,
        )


Output = Annotated[LocalOutput | S3Output | GCSOutput | AzureOutput, Field(discriminator="type")]
