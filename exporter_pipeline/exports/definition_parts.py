"""The parts an export definition is made of, shared by every data set's model: where it
writes, when it runs, whom it tells, and how a rule violation is reported."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from exporter_pipeline.destinations.outputs import EnvName, StrictModel, named
from exporter_pipeline.windows import WEEKDAYS

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class FieldErrors(ValueError):
    """Several rule violations of one export, each with the field it concerns."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(message for _, message in errors))
        self.errors = errors


def shown(value: Any, limit: int = 70) -> str:
    """A value quoted for a message, cut short: a stranger's text may be very long."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def pointer(location: tuple[Any, ...]) -> str:
    """A location as a JSON pointer (RFC 6901) into the document."""
    return "/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in location)


class OutputRef(StrictModel):
    name: str
    path: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return named("output name", name)

    @field_validator("path")
    @classmethod
    def _relative_path(cls, path: str) -> str:
        parts = [p for p in path.strip("/").split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise ValueError("path must not contain '.' or '..' segments")
        return "/".join(parts)


class WebhookDelivery(StrictModel):
    url: Annotated[str, Field(pattern=r"^https?://")]
    # The `whsec_` signing secret is in one place: the environment variable `secret_env`
    # names (an operator's YAML), or the definitions store, encrypted (`secret_stored`:
    # how the HTTP API keeps a tenant's secret, which never enters the definition).
    secret_env: EnvName | None = None
    secret_stored: bool = False
    # Retries of 5xx, 408, 429, timeouts and connection errors, with exponential backoff.
    attempts: Annotated[int, Field(ge=1, le=20)] = 6
    backoff_seconds: Annotated[float, Field(ge=0, le=600)] = 1.0

    @field_validator("url")
    @classmethod
    def _allowed_url(cls, url: str) -> str:
        # Imported here to keep this edit inside the class; both modules are pure.
        from exporter_pipeline.delivery.addresses import webhook_url_problem
        from exporter_pipeline.settings import Settings

        # The address of a name is checked again when the webhook is sent, after resolving.
        problem = webhook_url_problem(url, Settings.from_env().webhook_allow_private)
        if problem:
            raise ValueError(problem)
        return url

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookDelivery:
        if self.secret_env is None and not self.secret_stored:
            raise FieldErrors(
                [
                    (
                        "secret_env",
                        "field 'secret_env' is required (or secret_stored: true, when the "
                        "definitions store holds the webhook's secret)",
                    )
                ]
            )
        if self.secret_env is not None and self.secret_stored:
            raise FieldErrors(
                [("secret_stored", "a webhook takes secret_env or secret_stored: true, not both")]
            )
        return self


# Tenants set recipients through the API: one delivery mails a bounded number of them.
MAX_EMAIL_RECIPIENTS: Final = 20


class Delivery(StrictModel):
    webhook: WebhookDelivery | None = None
    email: list[str] = Field(default_factory=list)

    @field_validator("email")
    @classmethod
    def _emails(cls, addresses: list[str]) -> list[str]:
        if len(addresses) > MAX_EMAIL_RECIPIENTS:
            raise ValueError(
                f"email lists {len(addresses)} addresses; a delivery mails at most "
                f"{MAX_EMAIL_RECIPIENTS} (use a mailing list's address for more)"
            )
        for address in addresses:
            if not EMAIL_PATTERN.match(address):
                raise ValueError(f"{address!r} is not an email address")
        return addresses


class Schedule(StrictModel):
    hour: Annotated[int, Field(ge=0, le=23)] = 0
    minute: Annotated[int, Field(ge=0, le=59)] = 0
    timezone: str = "UTC"
    day_of_week: str | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        # A folder of the zone database ("Europe") or an over-long name is an OSError.
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"unknown time zone {zone!r} (use an IANA name like Europe/Berlin)"
            ) from None
        return zone

    @field_validator("day_of_week")
    @classmethod
    def _weekday(cls, day: str | None) -> str | None:
        if day is not None and day.lower() not in WEEKDAYS:
            raise ValueError(f"day_of_week must be one of {', '.join(WEEKDAYS)}")
        return day.lower() if day else None


class QueryLimitsSpec(StrictModel):
    """An export's own caps for its query runs; each only lowers the operator's setting."""

    memory_mb: Annotated[int, Field(ge=64)] | None = None
    timeout_s: Annotated[float, Field(gt=0)] | None = None
    max_rows: Annotated[int, Field(ge=1)] | None = None
    temp_mb: Annotated[int, Field(ge=1)] | None = None
