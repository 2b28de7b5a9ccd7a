"""The Dagster resources: the lake and landing zone, the outputs, the SMTP server."""

from __future__ import annotations

import functools
import smtplib
from collections.abc import Mapping
from email.message import EmailMessage

import dagster as dg
from pydantic import PrivateAttr, TypeAdapter

from exporter_pipeline.destinations import Destination, destination_from_url
from exporter_pipeline.destinations.outputs import Output
from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.settings import Settings


class LakeResource(dg.ConfigurableResource):
    """Where collectors drop landing files and where hourly Parquet data sets live."""

    landing_url: str
    lake_url: str

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> LakeResource:
        settings = settings or Settings.from_env()
        return cls(landing_url=settings.landing_url, lake_url=settings.lake_url)

    # Destinations opened during this execution, by URL: reused, then closed.
    _opened: dict[str, Destination] = PrivateAttr(default_factory=dict)

    def landing(self) -> Destination:
        return self._open(self.landing_url)

    def lake(self) -> Destination:
        return self._open(self.lake_url)

    def _open(self, url: str) -> Destination:
        if url not in self._opened:
            self._opened[url] = destination_from_url(url)
        return self._opened[url]

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._opened = {}  # a dict of its own per execution

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        opened, self._opened = list(self._opened.values()), {}
        for destination in opened:
            destination.close()


class SmtpResource(dg.ConfigurableResource):
    """The SMTP server deliveries are sent through; the password comes from the environment."""

    host: str = "localhost"
    port: int = 25
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    sender: str = "exports@exporter-pipeline.local"
    timeout_seconds: float = 30.0

    def send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)


class OutputsResource(dg.ConfigurableResource):
    """Every named output of the definitions, opened one at a time.

    Ops take it by type (`outputs: OutputsResource`) and ask for the destination of a
    name: only that output's client is built and only its environment variables are read,
    so a run never touches another tenant's output or needs another tenant's secret. The
    config holds the outputs as validated JSON: types, buckets, prefixes and the *names*
    of environment variables, never a secret. What a run opens is closed when it ends.
    """

    outputs_json: str = "{}"
    # Destinations opened during this execution, by output name: reused, then closed.
    _opened: dict[str, Destination] = PrivateAttr(default_factory=dict)

    @classmethod
    def of(cls, outputs: Mapping[str, Output]) -> OutputsResource:
        return cls(outputs_json=_OUTPUTS.dump_json(dict(outputs)).decode())

    def outputs(self) -> dict[str, Output]:
        return _outputs_of(self.outputs_json)

    def output(self, name: str) -> Output:
        outputs = self.outputs()
        if name not in outputs:
            known = ", ".join(sorted(outputs)) or "none declared"
            raise DefinitionError(f"unknown output {name!r} (outputs: {known})")
        return outputs[name]

    def owned_output(self, name: str, tenant: str) -> Output:
        """Output `name` if `tenant` may use it (it is the tenant's or the operator's)."""
        output = self.output(name)
        if output.tenant not in (None, tenant):
            raise DefinitionError(
                f"output {name!r} belongs to tenant {output.tenant!r}; "
                f"tenant {tenant!r} may not use it"
            )
        return output

    def destination(self, name: str) -> Destination:
        """The destination of output `name`, its credentials read now from the environment
        (a missing variable is a PermanentDestinationError naming it)."""
        if name not in self._opened:
            self._opened[name] = self.output(name).open(name)
        return self._opened[name]

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # A dict of its own per execution: copies of a resource may share private state.
        self._opened = {}

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        opened, self._opened = list(self._opened.values()), {}
        for destination in opened:
            destination.close()


_OUTPUTS: TypeAdapter[dict[str, Output]] = TypeAdapter(dict[str, Output])


@functools.lru_cache(maxsize=4)
def _outputs_of(outputs_json: str) -> dict[str, Output]:
    return _OUTPUTS.validate_json(outputs_json)
