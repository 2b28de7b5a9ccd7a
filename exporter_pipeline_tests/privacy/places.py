"""Every place the product writes, filled for the privacy tests: a local lake (raw hours,
their quarantine, derived hours) and one managed output, a local folder or a bucket on
the moto S3 server, holding a definition export, on-demand tasks and user data exports,
all written by the Dagster jobs. The test reads files back on its own (boto3 or the
file system, then polars), never through the product's destinations."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
import yaml

from exporter_pipeline.definitions import build_definitions
from exporter_pipeline.destinations import Destination, destination_from_url
from exporter_pipeline.destinations.local import LocalDestination
from exporter_pipeline.destinations.s3 import S3Destination
from exporter_pipeline.events.ingest import ingest_hour
from exporter_pipeline.events.simulate import simulate
from exporter_pipeline.lake import hourly_key, write_hourly
from exporter_pipeline.privacy.erasure import DERIVED
from exporter_pipeline.settings import Settings
from exporter_pipeline_tests.conftest import S3Server
from exporter_pipeline_tests.exports.conftest import DAY, HOURS, build_lake

OUTPUT_KINDS = ("local", "s3")
# On-demand tasks over the lake's two hours: one per format the user can be found in,
# one without a user_id column, and another tenant's.
WINDOW = {"start_time": "2026-10-01T00:00:00Z", "end_time": "2026-10-01T02:00:00Z"}
TASKS: dict[str, dict[str, Any]] = {
    "views_task": {"tenant": "acme", "dataset": "views", "path": "tasks/views"},
    "raw_task": {
        "tenant": "acme",
        "dataset": "raw",
        "columns": ["event_id", "event_time", "user_id", "played_ms"],
        "format": "jsonl",
        "compression": "gzip",
        "path": "tasks/raw",
    },
    "parquet_task": {
        "tenant": "acme",
        "dataset": "raw",
        "format": "parquet",
        "path": "tasks/parquet",
    },
    "columns_task": {
        "tenant": "acme",
        "dataset": "raw",
        "columns": ["event_id", "event_time", "played_ms"],
        "path": "tasks/columns",
    },
    "globex_task": {"tenant": "globex", "dataset": "raw", "path": "tasks/globex"},
}


class OutputView:
    """The managed output as the test sees it: keys, bytes, modification times."""

    def __init__(self, kind: str, root: Path, s3: S3Server | None) -> None:
        self.kind, self.root, self.s3 = kind, root, s3
        self.bucket = s3.new_bucket() if s3 else ""

    def keys(self) -> list[str]:
        if self.s3 is None:
            return sorted(
                p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()
            )
        pages = self.s3.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        if self.s3 is None:
            return (self.root / key).read_bytes()
        body = self.s3.client().get_object(Bucket=self.bucket, Key=key)["Body"]
        return bytes(body.read())

    def sha256s(self) -> dict[str, str]:
        return {k: hashlib.sha256(self.read(k)).hexdigest() for k in self.keys()}

    def frame(self, key: str) -> pl.DataFrame:
        """A data file's rows, every value as text (parquet as written)."""
        data = self.read(key)
        if key.endswith(".gz"):
            data = gzip.decompress(data)
        if ".parquet" in key:
            return pl.read_parquet(io.BytesIO(data))
        if ".jsonl" in key:
            return pl.DataFrame(
                [json.loads(line) for line in data.splitlines() if line.strip()],
                infer_schema_length=None,
            )
        return pl.read_csv(io.BytesIO(data), infer_schema=False)

    def manifest(self, key: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.read(key))
        return document

    def destination(self) -> Destination:
        """The output itself, to write into it as a run of older code did."""
        if self.s3 is None:
            return LocalDestination(self.root)
        return S3Destination(self.s3.client(), self.bucket)

    def config(self) -> dict[str, Any]:
        if self.s3 is None:
            return {"type": "local", "path": str(self.root)}
        return {
            "type": "s3",
            "bucket": self.bucket,
            "region": self.s3.region,
            "endpoint_url_env": "PRIVACY_S3_URL",
            "access_key_id_env": "PRIVACY_S3_KEY",
            "secret_access_key_env": "PRIVACY_S3_SECRET",
            "managed": True,
        }


class Places:
    """The lake and the managed output, with the jobs that write them."""

    def __init__(
        self, root: Path, kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        s3: S3Server | None = request.getfixturevalue("s3_server") if kind == "s3" else None
        if s3 is not None:
            monkeypatch.setenv("PRIVACY_S3_URL", s3.endpoint_url)
            monkeypatch.setenv("PRIVACY_S3_KEY", s3.access_key_id)
            monkeypatch.setenv("PRIVACY_S3_SECRET", s3.secret_access_key)
        self.lake = build_lake(root / "data", events_per_hour=600, hours=2)
        self.landing = root / "data" / "landing"
        self.out = OutputView(kind, root / "out", s3)
        outputs = {
            "managed": self.out.config(),
            "elsewhere": {"type": "local", "path": str(root / "elsewhere"), "managed": False},
        }
        export = {
            "name": "acme_raw",
            "tenant": "acme",
            "dataset": "raw",
            "format": "csv",
            "cadence": "hourly",
            "start": "2026-10-01T00:00:00Z",
            "output": {"name": "managed", "path": "raw"},
        }
        definitions = {"outputs": outputs, "exports": [export]}
        self.definitions_file = root / "exports.yaml"
        self.definitions_file.write_text(yaml.safe_dump(definitions))
        self.defs = build_definitions(
            Settings.from_env(
                {
                    "EXPORTER_LAKE_URL": str(self.lake.root),
                    "EXPORTER_LANDING_URL": str(self.landing),
                    "EXPORTER_EXPORTS_FILE": str(root / "exports.yaml"),
                    "EXPORTER_PARTITIONS_START": "2026-09-01",
                }
            )
        )
        self.instance = dg.DagsterInstance.ephemeral()

    def run(self, job: str, config: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return self.defs.resolve_job_def(job).execute_in_process(
            instance=self.instance, run_config=config or {}, **kwargs
        )

    def task(self, name: str, **window: str) -> dg.ExecuteInProcessResult:
        request = {"name": name, "output": "managed", **WINDOW, **TASKS[name], **window}
        result = self.run("export_on_demand", {"ops": {"export_task": {"config": request}}})
        assert result.success
        return result

    def user_export(self, user: str, path: str) -> None:
        config = {"tenant": "acme", "user_id": user, "output": "managed", "path": path}
        result = self.run("user_data_export", {"ops": {"export_user_data": {"config": config}}})
        assert result.success

    def quarantine(self, records: list[str], hour: datetime = DAY) -> None:
        """Land these JSON Lines records in `hour` and ingest it again (they are rejected)."""
        folder = self.landing / f"dt={hour:%Y-%m-%d}" / f"hour={hour:%H}"
        (folder / "rejects.jsonl").write_text("\n".join(records) + "\n")
        ingest_hour(hour, destination_from_url(str(self.landing)), self.lake.store)

    def lake_rows(self, dataset: str) -> pl.DataFrame:
        files = [self.lake.root / hourly_key(dataset, h) for h in HOURS]
        return pl.concat([pl.read_parquet(f) for f in files if f.exists()], how="diagonal")

    def add_hour(self, hour: datetime) -> None:
        """One more simulated hour in the lake (raw, quarantine, derived)."""
        simulate(self.landing, ["acme", "globex"], hour, hour + timedelta(hours=1), 100, seed=5)
        ingest_hour(hour, destination_from_url(str(self.landing)), self.lake.store)
        raw = pl.scan_parquet(self.lake.root / hourly_key("raw_events", hour))
        for name, transform in DERIVED.items():
            work = self.lake.root.parent / f"work-{name}-{hour:%Y%m%d%H}"
            work.mkdir()
            write_hourly(self.lake.store, name, hour, transform(raw), work)

    def lake_keys(self) -> set[str]:
        root = self.lake.root
        return {p.relative_to(root).as_posix() for p in root.rglob("*.parquet")}


def busiest_user(places: Places, tenant: str, rank: int = 0) -> str:
    """A user of `tenant` with many events and view segments in both hours."""
    raw = places.lake_rows("raw_events").filter(pl.col("tenant") == tenant)
    counts = raw.group_by("user_id").len().drop_nulls().sort(["len", "user_id"], descending=True)
    return str(counts["user_id"][rank])
