"""Settings read from the environment, each with an embedded default (DESIGN.md, Settings)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

DEFAULTS = {
    "EXPORTER_LANDING_URL": "./data/landing",
    "EXPORTER_LAKE_URL": "./data/lake",
    "EXPORTER_EXPORTS_FILE": "./exports.yaml",
    # First hour of the raw-event partitions; older landing data is never ingested.
    "EXPORTER_PARTITIONS_START": "2026-01-01",
    # SMTP for email delivery; the password, if any, is EXPORTER_SMTP_PASSWORD.
    "EXPORTER_SMTP_HOST": "localhost",
    "EXPORTER_SMTP_PORT": "25",
    "EXPORTER_SMTP_STARTTLS": "false",
    "EXPORTER_SMTP_USER": "",
    "EXPORTER_SMTP_FROM": "exports@exporter-pipeline.local",
}


@dataclass(frozen=True)
class Settings:
    landing_url: str
    lake_url: str
    exports_file: str
    partitions_start: datetime
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_user: str = ""
    smtp_from: str = "exports@exporter-pipeline.local"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env

        def get(name: str) -> str:
            return source.get(name) or DEFAULTS[name]

        def get_text(name: str) -> str:
            return source.get(name, DEFAULTS[name])

        start = datetime.fromisoformat(get("EXPORTER_PARTITIONS_START"))
        return cls(
            landing_url=get("EXPORTER_LANDING_URL"),
            lake_url=get("EXPORTER_LAKE_URL"),
            exports_file=get("EXPORTER_EXPORTS_FILE"),
            partitions_start=start.replace(tzinfo=start.tzinfo or UTC),
            smtp_host=get("EXPORTER_SMTP_HOST"),
            smtp_port=int(get("EXPORTER_SMTP_PORT")),
            smtp_starttls=get("EXPORTER_SMTP_STARTTLS").lower() in ("1", "true", "yes"),
            smtp_user=get_text("EXPORTER_SMTP_USER"),
            smtp_from=get("EXPORTER_SMTP_FROM"),
        )
