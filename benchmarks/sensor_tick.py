"""A delivery sensor tick with many outputs, each holding a long history of manifests.

    .venv/bin/python benchmarks/sensor_tick.py [--outputs 1000] [--days 30] [--s3] \
        [--listings-per-tick 200] [--threads 8]

One export per output (its own tenant), hourly windows, webhook delivery; every output
holds `--days` days of manifests (720 per output for 30 days). On a SQLite Dagster
instance in a temporary DAGSTER_HOME, `deliver_manifests_sensor` is evaluated as the
daemon does (`build_sensor_context` with the resources, `evaluate_tick`) for:

- steady: nothing happened since the last tick;
- burst: every export finished a new window (a manifest, its observation, its run's end);
- re-runs: every export rewrote a window of ten days ago (same key, new time).

A burst larger than a tick's budget (`--listings-per-tick`, the sensor's
EXPORTER_DELIVERY_LISTINGS_PER_TICK) is delivered over several ticks: each is printed,
then the drain (ticks, requests, seconds of ticks) and the tick after it.

Against it, "listing (before)" is the work of the per-output sensors this one replaced,
summed over the outputs: open each output, list its `_manifests/` folders (the lower
bound of their tick: no gRPC call, no Dagster overhead counted). `--s3` runs the same on
a moto S3 server (one bucket, one prefix and one client per output) with daily windows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from exporter_pipeline.defs.delivery_sensor import build_delivery_sensor
from exporter_pipeline.defs.resources import OutputsResource
from exporter_pipeline.delivery.cursor import DeliveryCursor
from exporter_pipeline.destinations.outputs import LocalOutput
from exporter_pipeline.exports.naming import manifest_key, manifests_prefix
from exporter_pipeline.exports.spec import DefinitionsFile, load_definitions_file
from exporter_pipeline.settings import Settings
from exporter_pipeline.store.store import DefinitionsStore
from exporter_pipeline_tests.servers import free_port, moto_command, server_process

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
HOOK = {"url": "https://hooks.example/exports", "secret_env": "BENCH_HOOK_SECRET"}


def write_definitions(work: Path, outputs: int, days: int, s3: dict[str, Any] | None) -> Path:
    """One output and one delivering export per tenant."""
    cadence = "daily" if s3 else "hourly"
    document: dict[str, Any] = {"outputs": {}, "exports": []}
    for i in range(outputs):
        if s3:
            document["outputs"][f"o{i}"] = {**s3, "prefix": f"tenant{i}"}
        else:
            document["outputs"][f"o{i}"] = {"type": "local", "path": str(work / "out" / f"o{i}")}
        document["exports"].append(
            {
                "name": f"t{i}_export",
                "tenant": f"t{i}",
                "dataset": "raw",
                "cadence": cadence,
                "start": f"{TODAY - timedelta(days=days + 30):%Y-%m-%d}",
                "output": {"name": f"o{i}", "path": "exports"},
                "delivery": {"webhook": HOOK},
            }
        )
    path = work / "exports.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def windows(definitions: DefinitionsFile, days: int) -> list[tuple[datetime, datetime]]:
    """The export's windows of the `days` days before today."""
    step = timedelta(hours=1) if definitions.exports[0].cadence == "hourly" else timedelta(days=1)
    first = TODAY - timedelta(days=days)
    return [(first + k * step, first + (k + 1) * step) for k in range(timedelta(days=days) // step)]


def fill_history(definitions: DefinitionsFile, resources: OutputsResource, days: int) -> int:
    """Every output gets `days` days of (small) manifests; the number written."""
    spans = windows(definitions, days)

    def fill(export: Any) -> int:
        output = resources.output(export.output.name)
        keys = [manifest_key(export.output.path, *window) for window in spans]
        if isinstance(output, LocalOutput):  # plain writes: history need not be fsynced
            (Path(output.path) / keys[0]).parent.mkdir(parents=True, exist_ok=True)
            for key in keys:
                (Path(output.path) / key).write_bytes(b"{}")
            return len(keys)
        with output.open(export.output.name) as destination:
            for key in keys:
                destination.put_bytes(b"{}", key)
        return len(keys)

    with ThreadPoolExecutor(8) as pool:
        return sum(pool.map(fill, definitions.exports))


def legacy_listing(definitions: DefinitionsFile, resources: OutputsResource) -> tuple[float, int]:
    """What the per-output sensors listed each tick: (seconds, objects listed)."""
    began, listed = time.perf_counter(), 0
    for export in definitions.exports:
        with resources.output(export.output.name).open(export.output.name) as destination:
            listed += len(destination.list(manifests_prefix(export.output.path)))
    return time.perf_counter() - began, listed


def tick(
    sensor: dg.SensorDefinition, instance: dg.DagsterInstance, resources: Any, cursor: str | None
) -> tuple[float, int, str | None]:
    """(seconds, run requests, cursor) of one evaluation."""
    began = time.perf_counter()
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        result = sensor.evaluate_tick(context)
    return time.perf_counter() - began, len(result.run_requests or []), result.cursor


def drain(
    name: str,
    sensor: dg.SensorDefinition,
    instance: dg.DagsterInstance,
    resources: Any,
    cursor: str | None,
) -> tuple[list[str], str | None]:
    """Ticks until the sensor's backlog is empty, then one more: the lines and the cursor."""
    lines, requests, slowest, began = [], 0, 0.0, time.perf_counter()
    for ticks in range(1, 10_000):
        seconds, asked, cursor = tick(sensor, instance, resources, cursor)
        requests, slowest = requests + asked, max(slowest, seconds)
        lines.append(f"{name} tick {ticks}: {seconds:.2f} s, {asked} run requests")
        if not DeliveryCursor.parse(cursor).backlog:
            break
    lines.append(
        f"{name} drained: {ticks} ticks, {requests} run requests, "
        f"{time.perf_counter() - began:.1f} s of ticks, slowest tick {slowest:.2f} s"
    )
    seconds, asked, cursor = tick(sensor, instance, resources, cursor)
    lines.append(f"  the tick after: {seconds:.3f} s, {asked} run requests")
    return lines, cursor


def write_window(
    definitions: DefinitionsFile,
    resources: OutputsResource,
    instance: dg.DagsterInstance,
    window: tuple[datetime, datetime],
) -> None:
    """Each export (re)writes `window` as an export run does: the manifest, an observation
    naming it, and the run's end (a failure here: the same path through the sensor)."""
    for export in definitions.exports:
        key = manifest_key(export.output.path, *window)
        with resources.output(export.output.name).open(export.output.name) as destination:
            destination.put_bytes(b"{}", key)
        instance.report_runless_asset_event(
            dg.AssetObservation(asset_key=["exports", export.name], metadata={"manifest": key})
        )
        fmt = "%Y-%m-%d-%H:%M" if export.cadence == "hourly" else "%Y-%m-%d"
        run = dg.DagsterRun(
            job_name=f"export_{export.name}",
            run_id=str(uuid.uuid4()),
            tags={"dagster/partition": f"{window[0]:{fmt}}"},
        )
        instance.add_run(run)
        instance.report_run_failed(run)


def measure(
    work: Path, outputs: int, days: int, s3: dict[str, Any] | None, settings: Settings
) -> list[str]:
    path = write_definitions(work, outputs, days, s3)
    definitions = load_definitions_file(path)
    # The outputs live in a definitions store of the benchmark's own, as in a deployment.
    url = f"sqlite:///{work / 'store.sqlite3'}"
    DefinitionsStore.open(url).apply_file(path)
    resources = OutputsResource(database_url=url)
    began = time.perf_counter()
    written = fill_history(definitions, resources, days)
    lines = [f"history: {written:,} manifests in {time.perf_counter() - began:.1f} s"]
    seconds, listed = legacy_listing(definitions, resources)
    lines.append(f"listing (before), {outputs} outputs: {seconds:.2f} s, {listed:,} objects")
    sensor = build_delivery_sensor(definitions, settings)
    (work / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(work / "dagster_home")) as instance:
        context_resources = {"outputs": resources}
        seconds, _, cursor = tick(sensor, instance, context_resources, None)
        lines.append(f"first tick (empty event log): {seconds:.2f} s")
        seconds, _, cursor = tick(sensor, instance, context_resources, cursor)
        lines.append(f"steady tick: {seconds:.3f} s")
        history = windows(definitions, days)
        step = history[0][1] - history[0][0]
        old = history[max(0, len(history) - timedelta(days=10) // step)]  # a window of ten days ago
        cases = {"burst": (TODAY, TODAY + step), "re-runs": old}
        for name, window in cases.items():
            write_window(definitions, resources, instance, window)
            drained, cursor = drain(name, sensor, instance, context_resources, cursor)
            lines += drained
    return lines


@contextmanager
def moto(work: Path) -> Iterator[dict[str, Any]]:
    """A moto S3 server and one bucket; the output fields that reach it."""
    import boto3

    port = free_port()
    with server_process(moto_command(port), port, work / "moto.log"):
        url = f"http://127.0.0.1:{port}"
        boto3.client(
            "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="k",
            aws_secret_access_key="s",
        ).create_bucket(Bucket="bench")  # fmt: skip
        os.environ |= {"BENCH_S3_URL": url, "BENCH_S3_KEY": "k", "BENCH_S3_SECRET": "s"}
        yield {
            "type": "s3",
            "bucket": "bench",
            "region": "us-east-1",
            "endpoint_url_env": "BENCH_S3_URL",
            "access_key_id_env": "BENCH_S3_KEY",
            "secret_access_key_env": "BENCH_S3_SECRET",
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--s3", action="store_true", help="outputs on a moto S3 server")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--listings-per-tick", type=int, default=None, help="default: setting")
    parser.add_argument("--threads", type=int, default=None, help="default: setting")
    args = parser.parse_args()
    chosen = {
        "EXPORTER_DELIVERY_LISTINGS_PER_TICK": args.listings_per_tick,
        "EXPORTER_DELIVERY_SENSOR_THREADS": args.threads,
    }
    settings = Settings.from_env(
        {**os.environ, **{k: str(v) for k, v in chosen.items() if v is not None}}
    )
    work = Path(args.work or tempfile.mkdtemp(prefix="sensor-tick-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.s3:
            with moto(work) as s3:
                lines = measure(work, args.outputs, args.days, s3, settings)
        else:
            lines = measure(work, args.outputs, args.days, None, settings)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    kind = "S3 (moto), daily" if args.s3 else "local folders, hourly"
    print(f"{args.outputs} outputs x {args.days} days of manifests on {kind}")
    budget, threads = settings.delivery_listings_per_tick, settings.delivery_sensor_threads
    print(f"  a tick: at most {budget} listings, {threads} outputs at a time")
    print("\n".join(f"  {line}" for line in lines))


if __name__ == "__main__":
    main()
