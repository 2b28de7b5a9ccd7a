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
}


@dataclass(frozen=True)
class Settings:
    landing_url: str
    lake_url: str
    exports_file: str
    partitions_start: datetime

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env

        def get(name: str) -> str:
            return source.get(name) or DEFAULTS[name]

        start = datetime.fromisoformat(get("EXPORTER_PARTITIONS_START"))
        return cls(
            landing_url=get("EXPORTER_LANDING_URL"),
            lake_url=get("EXPORTER_LAKE_URL"),
            exports_file=get("EXPORTER_EXPORTS_FILE"),
            partitions_start=start.replace(tzinfo=start.tzinfo or UTC),
        )
