"""The Dagster resources: the lake and landing zone, the outputs, the SMTP server."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import dagster as dg
from pydantic import PrivateAttr
from sqlalchemy.engine import make_url

from exporter_pipeline.destinations import Destination, destination_from_url
from exporter_pipeline.destinations.outputs import Output
from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.settings import Settings
from exporter_pipeline.store.store import DefinitionsStore


def store_config_url(settings: Settings | None = None) -> str:
    """The store's URL for a resource's config: "" when it holds a password (in the URL
    or its query: libpq takes `?password=`), so config never shows one; the run then
    reads EXPORTER_DATABASE_URL from its environment."""
    url = (settings or Settings.from_env()).database_url
    parsed = make_url(url)
    secret = parsed.password or any("password" in key.lower() for key in parsed.query)
    return "" if secret else url


def open_store(config_url: str) -> DefinitionsStore:
    """The definitions store of a resource's `config_url` (see `store_config_url`), with
    the run's EXPORTER_SECRET_KEY to decrypt what it holds."""
    settings = Settings.from_env()
    return DefinitionsStore.open(config_url or settings.database_url, settings.secret_key)


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
    """The named outputs of the definitions store, read and opened one at a time.

    Ops take it by type (`outputs: OutputsResource`) and ask for the destination of a
    name: only that output's row is read from the store, only its client is built and
    only its credentials are decrypted or its environment variables read, so a run never
    touches another tenant's output or needs another tenant's secret, and a rotated
    credential takes effect at the next run. The config holds no output: only the store's
    URL when it has no password (the default SQLite file), else nothing and the run reads
    EXPORTER_DATABASE_URL, so every job's snapshot stays the same small size. What a run
    opens is closed when it ends.
    """

    database_url: str = ""
    # Destinations opened during this execution, by output name: reused, then closed.
    _opened: dict[str, Destination] = PrivateAttr(default_factory=dict)

    @classmethod
    def of(cls, settings: Settings | None = None) -> OutputsResource:
        return cls(database_url=store_config_url(settings))

    def store(self) -> DefinitionsStore:
        return open_store(self.database_url)

    def outputs(self) -> dict[str, Output]:
        return self.store().outputs()

    def output(self, name: str) -> Output:
        output = self.store().output(name)
        if output is None:
            raise DefinitionError(f"unknown output {name!r} (not in the definitions store)")
        return output

    def owned_output(self, name: str, tenant: str) -> Output:
        """Output `name` if `tenant` may use it (it is the tenant's or the operator's)."""
        output = self.output(name)
        if not output.usable_by(tenant):
            raise DefinitionError(
                f"output {name!r} belongs to tenant {output.tenant!r}; "
                f"tenant {tenant!r} may not use it"
            )
        return output

    def destination(self, name: str) -> Destination:
        """The destination of output `name`, its credentials read now from the store
        (decrypted) or the environment (a missing variable is a PermanentDestinationError
        naming it)."""
        if name not in self._opened:
            self._opened[name] = self.store().open_output(name)
        return self._opened[name]

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # A dict of its own per execution: copies of a resource may share private state.
        self._opened = {}

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        opened, self._opened = list(self._opened.values()), {}
        for destination in opened:
            destination.close()
