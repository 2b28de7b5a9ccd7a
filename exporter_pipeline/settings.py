"""Settings read from the environment, each with an embedded default (DESIGN.md, Settings)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

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
    # Webhooks to loopback, private, link-local or multicast addresses (tests, the demo).
    "EXPORTER_WEBHOOK_ALLOW_PRIVATE": "false",
    # One webhook attempt, and one whole delivery with its retries, in seconds.
    "EXPORTER_WEBHOOK_ATTEMPT_TIMEOUT_S": "15",
    "EXPORTER_WEBHOOK_TOTAL_TIMEOUT_S": "300",
    # Bytes of a receiver's answer that are read at most.
    "EXPORTER_WEBHOOK_MAX_RESPONSE_BYTES": "65536",
    # Caps of one landing file's ingest: a longer line is quarantined as `record too
    # large`; a compressed file that expands past either cap is refused (a bomb).
    "EXPORTER_MAX_RECORD_BYTES": "1048576",
    "EXPORTER_MAX_DECOMPRESSED_BYTES": "17179869184",
    "EXPORTER_MAX_DECOMPRESSION_RATIO": "100",
    # Caps of one SQL (query) export run; an export may lower them with `limits:`.
    "EXPORTER_QUERY_MEMORY_MB": "2048",
    "EXPORTER_QUERY_TIMEOUT_S": "600",
    "EXPORTER_QUERY_MAX_ROWS": "50000000",
    "EXPORTER_QUERY_TEMP_MB": "10240",
    # Longest run of an export job and of a delivery run (Dagster's dagster/max_runtime).
    "EXPORTER_EXPORT_MAX_RUNTIME_S": "21600",
    "EXPORTER_DELIVERY_MAX_RUNTIME_S": "1800",
    # The delivery sensor: bucket listings one tick makes at most (one per output and day
    # of hinted windows; the rest waits in its cursor for the next ticks, oldest news
    # first), and how many outputs it opens and lists at once.
    "EXPORTER_DELIVERY_LISTINGS_PER_TICK": "200",
    "EXPORTER_DELIVERY_SENSOR_THREADS": "8",
    # Days kept by the retention job: raw lake hours, aggregates, managed export files.
    "EXPORTER_RETENTION_RAW_DAYS": "90",
    "EXPORTER_RETENTION_AGGREGATE_DAYS": "730",
    "EXPORTER_RETENTION_EXPORT_DAYS": "7",
    # Retries of one bucket call, done by the cloud SDKs themselves: attempts for S3 and
    # Azure, a deadline in seconds for GCS (google's retries are timed, not counted).
    "EXPORTER_DESTINATION_ATTEMPTS": "5",
    "EXPORTER_DESTINATION_RETRY_S": "120",
    # The GCS emulator's address (tests, the demo); the SDK's own variable name.
    "STORAGE_EMULATOR_HOST": "",
    # The definitions store's database; empty: `sqlite:///<DAGSTER_HOME>/exporter.sqlite3`.
    "EXPORTER_DATABASE_URL": "",
    # Fernet key encrypting the output credentials held in the store; needed only for those.
    "EXPORTER_SECRET_KEY": "",
    # The Dagster webserver that `definitions apply` asks to reload the code location.
    "EXPORTER_DAGSTER_URL": "http://127.0.0.1:3000",
    # `k/N`: this code location loads only the tenants of shard k of N (shards.py).
    "EXPORTER_SHARD": "",
    # The HTTP API: how many shards the deployment has (which code location holds a
    # tenant's jobs), and the address its clients reach it at (download links of local
    # outputs, served by the API itself).
    "EXPORTER_API_SHARDS": "1",
    "EXPORTER_API_URL": "http://127.0.0.1:8080",
    # Where `local` outputs created through the API live: `<root>/<tenant>/<their path>`.
    "EXPORTER_API_LOCAL_ROOT": "./data/tenant-outputs",
}
# DAGSTER_HOME when the environment has none, as the README's commands set it.
DEFAULT_DAGSTER_HOME = "./.dagster_home"


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
    # Whether EXPORTER_SMTP_PASSWORD is set; its value reaches the SMTP resource as an EnvVar.
    smtp_password_set: bool = False
    webhook_allow_private: bool = False
    webhook_attempt_timeout_s: float = 15.0
    webhook_total_timeout_s: float = 300.0
    webhook_max_response_bytes: int = 65536
    max_record_bytes: int = 1024 * 1024
    max_decompressed_bytes: int = 16 * 1024**3
    max_decompression_ratio: float = 100.0
    query_memory_mb: int = 2048
    query_timeout_s: float = 600.0
    query_max_rows: int = 50_000_000
    query_temp_mb: int = 10240
    export_max_runtime_s: int = 21600
    delivery_max_runtime_s: int = 1800
    delivery_listings_per_tick: int = 200
    delivery_sensor_threads: int = 8
    retention_raw_days: float = 90.0
    retention_aggregate_days: float = 730.0
    retention_export_days: float = 7.0
    destination_attempts: int = 5
    destination_retry_s: float = 120.0
    storage_emulator_host: str = ""
    # Not shown by repr: a PostgreSQL URL may hold a password, the key is a secret.
    database_url: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    dagster_url: str = "http://127.0.0.1:3000"
    shard: str = "0/1"
    api_shards: int = 1
    api_url: str = "http://127.0.0.1:8080"
    api_local_root: str = "./data/tenant-outputs"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env

        def get(name: str) -> str:
            return source.get(name) or DEFAULTS[name]

        def get_text(name: str) -> str:
            return source.get(name, DEFAULTS[name])

        def get_flag(name: str) -> bool:
            return get(name).lower() in ("1", "true", "yes")

        start = datetime.fromisoformat(get("EXPORTER_PARTITIONS_START"))
        return cls(
            landing_url=get("EXPORTER_LANDING_URL"),
            lake_url=get("EXPORTER_LAKE_URL"),
            exports_file=get("EXPORTER_EXPORTS_FILE"),
            partitions_start=start.replace(tzinfo=start.tzinfo or UTC),
            smtp_host=get("EXPORTER_SMTP_HOST"),
            smtp_port=int(get("EXPORTER_SMTP_PORT")),
            smtp_starttls=get_flag("EXPORTER_SMTP_STARTTLS"),
            smtp_user=get_text("EXPORTER_SMTP_USER"),
            smtp_from=get("EXPORTER_SMTP_FROM"),
            smtp_password_set=bool(source.get("EXPORTER_SMTP_PASSWORD")),
            webhook_allow_private=get_flag("EXPORTER_WEBHOOK_ALLOW_PRIVATE"),
            webhook_attempt_timeout_s=float(get("EXPORTER_WEBHOOK_ATTEMPT_TIMEOUT_S")),
            webhook_total_timeout_s=float(get("EXPORTER_WEBHOOK_TOTAL_TIMEOUT_S")),
            webhook_max_response_bytes=int(get("EXPORTER_WEBHOOK_MAX_RESPONSE_BYTES")),
            max_record_bytes=int(get("EXPORTER_MAX_RECORD_BYTES")),
            max_decompressed_bytes=int(get("EXPORTER_MAX_DECOMPRESSED_BYTES")),
            max_decompression_ratio=float(get("EXPORTER_MAX_DECOMPRESSION_RATIO")),
            query_memory_mb=int(get("EXPORTER_QUERY_MEMORY_MB")),
            query_timeout_s=float(get("EXPORTER_QUERY_TIMEOUT_S")),
            query_max_rows=int(get("EXPORTER_QUERY_MAX_ROWS")),
            query_temp_mb=int(get("EXPORTER_QUERY_TEMP_MB")),
            export_max_runtime_s=int(get("EXPORTER_EXPORT_MAX_RUNTIME_S")),
            delivery_max_runtime_s=int(get("EXPORTER_DELIVERY_MAX_RUNTIME_S")),
            delivery_listings_per_tick=max(1, int(get("EXPORTER_DELIVERY_LISTINGS_PER_TICK"))),
            delivery_sensor_threads=max(1, int(get("EXPORTER_DELIVERY_SENSOR_THREADS"))),
            retention_raw_days=float(get("EXPORTER_RETENTION_RAW_DAYS")),
            retention_aggregate_days=float(get("EXPORTER_RETENTION_AGGREGATE_DAYS")),
            retention_export_days=float(get("EXPORTER_RETENTION_EXPORT_DAYS")),
            destination_attempts=max(1, int(get("EXPORTER_DESTINATION_ATTEMPTS"))),
            destination_retry_s=float(get("EXPORTER_DESTINATION_RETRY_S")),
            storage_emulator_host=get_text("STORAGE_EMULATOR_HOST"),
            database_url=_store_setting(source, "EXPORTER_DATABASE_URL") or database_url(source),
            secret_key=_store_setting(source, "EXPORTER_SECRET_KEY"),
            dagster_url=get("EXPORTER_DAGSTER_URL").rstrip("/"),
            shard=get_text("EXPORTER_SHARD"),
            api_shards=max(1, int(get("EXPORTER_API_SHARDS"))),
            api_url=get("EXPORTER_API_URL").rstrip("/"),
            api_local_root=get("EXPORTER_API_LOCAL_ROOT"),
        )


def _store_setting(source: Mapping[str, str], name: str) -> str:
    """A setting of the definitions store: from `source`, else from the process.

    Runs, sensors and the command line read the store through the process environment;
    a Settings made from a partial mapping (tests, benchmarks) must name the same store,
    or what was built and what runs would read different definitions.
    """
    return source.get(name) or os.environ.get(name) or DEFAULTS[name]


def database_url(source: Mapping[str, str]) -> str:
    """The default store: a SQLite file beside the Dagster instance (DAGSTER_HOME, which
    Dagster itself reads from the process environment)."""
    home = source.get("DAGSTER_HOME") or os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME
    return f"sqlite:///{Path(home).expanduser().resolve() / 'exporter.sqlite3'}"
