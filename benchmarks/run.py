"""Export speed and memory of the product against bare polars and DuckDB, in one run.

    .venv/bin/python benchmarks/run.py [--events 5000000] [--rounds 3] [--work DIR]

Every measured step runs in a fresh process (spawn), so its peak RSS is its own. Each
line of the table is the median of `--rounds` rounds. The product rows go through the
product's own code paths (`ingest_hour`, `export_window`, the Dagster job for the
backfill); the baselines do the same work with bare polars (`scan_parquet -> sink_*`)
and DuckDB (`COPY ... TO`).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HOUR = datetime(2026, 10, 1, 5, tzinfo=UTC)
RAW = "raw_events/dt=2026-10-01/hour=05/events.parquet"


def _measure(target: Callable[..., Any], args: tuple[Any, ...], queue: Any) -> None:
    # Imports are not the work: load every library before the clock starts.
    import warnings

    warnings.filterwarnings("ignore")  # Dagster's beta notices, once per child process
    import dagster  # noqa: F401
    import duckdb  # noqa: F401
    import polars  # noqa: F401

    import exporter_pipeline.definitions  # noqa: F401

    began = time.perf_counter()
    rows = target(*args)
    seconds = time.perf_counter() - began
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put((seconds, peak_kib * 1024, rows))


def measure(target: Callable[..., Any], *args: Any) -> tuple[float, int, int]:
    """(seconds, peak RSS bytes, rows) of `target(*args)` in a fresh process."""
    os.sync()  # the previous step's files are on disk: its write-back is not this step's
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_measure, args=(target, args, queue))
    process.start()
    result = queue.get()
    process.join()
    if process.exitcode:
        raise RuntimeError(f"{target.__name__} failed with exit code {process.exitcode}")
    return result  # type: ignore[no-any-return]


# --- the work, product and baselines (module level: spawn imports them) -----------------


def simulate_hour(work: str, events: int) -> int:
    from exporter_pipeline.events.simulate import simulate

    return simulate(
        Path(work) / "landing", ["acme", "globex"], HOUR, HOUR + timedelta(hours=1), events, seed=5
    ).records


def product_ingest(work: str) -> int:
    from exporter_pipeline.destinations import destination_from_url
    from exporter_pipeline.events.ingest import ingest_hour

    report = ingest_hour(
        HOUR, destination_from_url(f"{work}/landing"), destination_from_url(f"{work}/lake")
    )
    return report.rows_written


def polars_ingest(work: str) -> int:
    import polars as pl

    files = sorted((Path(work) / "landing").rglob("*.jsonl"))
    frame = pl.scan_ndjson(files, infer_schema_length=10000)
    frame.sink_parquet(Path(work) / "polars-ingest.parquet")
    return int(
        pl.scan_parquet(Path(work) / "polars-ingest.parquet").select(pl.len()).collect().item()
    )


def derive(work: str) -> int:
    import polars as pl

    from exporter_pipeline.derived.delivery_metrics import delivery_metrics
    from exporter_pipeline.destinations import destination_from_url
    from exporter_pipeline.lake import write_hourly

    lake = destination_from_url(f"{work}/lake")
    tmp = Path(work) / "derive"
    tmp.mkdir(exist_ok=True)
    return write_hourly(
        lake, "delivery_metrics", HOUR, delivery_metrics(pl.scan_parquet(f"{work}/lake/{RAW}")), tmp
    )[1]


CASES: dict[str, dict[str, Any]] = {
    "csv": {"format": "csv"},
    "parquet": {"format": "parquet"},
    "jsonl": {"format": "jsonl"},
    "csv.gz": {"format": "csv", "compression": "gzip"},
    "csv 3 columns": {"format": "csv", "columns": ["event_time", "event_type", "played_ms"]},
    "csv filtered": {"format": "csv", "filters": {"country": ["US", "DE"]}},
}


def _definition(fields: dict[str, Any], cadence: str = "hourly") -> Any:
    from exporter_pipeline.exports.spec import parse_definitions

    body = {
        "name": "bench",
        "tenant": "acme",
        "dataset": "raw",
        "cadence": cadence,
        "start": "2026-10-01T00:00:00Z",
        "output": {"name": "out", "path": "bench"},
        **fields,
    }
    document = {"outputs": {"out": {"type": "local", "path": "/unused"}}, "exports": [body]}
    return parse_definitions(
        document, Path("bench.yaml"), now=datetime(2026, 10, 2, tzinfo=UTC)
    ).exports[0]


def product_export(work: str, case: str) -> int:
    from exporter_pipeline.destinations import destination_from_url
    from exporter_pipeline.exports.execution import export_window

    out = Path(work) / "out" / case.replace(" ", "_")
    shutil.rmtree(out, ignore_errors=True)
    result = export_window(
        _definition(CASES[case]),
        HOUR,
        HOUR + timedelta(hours=1),
        destination_from_url(f"{work}/lake"),
        destination_from_url(str(out)),
        "bench",
    )
    return result.rows


def polars_export(work: str, case: str) -> int:
    import polars as pl

    fields = CASES[case]
    frame = pl.scan_parquet(f"{work}/lake/{RAW}").filter(pl.col("tenant") == "acme")
    for column, values in fields.get("filters", {}).items():
        frame = frame.filter(pl.col(column).is_in(values))
    if "columns" in fields:
        frame = frame.select(fields["columns"])
    target = Path(work) / "baseline" / f"{case.replace(' ', '_')}.out"
    target.parent.mkdir(exist_ok=True)
    compression = fields.get("compression") or "uncompressed"
    if fields["format"] == "csv":
        frame.sink_csv(target, compression=compression, check_extension=False)  # type: ignore[call-overload,arg-type]
    elif fields["format"] == "jsonl":
        frame.sink_ndjson(target, check_extension=False)
    else:
        frame.sink_parquet(target, compression="snappy")
    return 0


def duckdb_export(work: str, case: str) -> int:
    import duckdb

    fields = CASES[case]
    columns = ", ".join(fields.get("columns", ["*"]))
    where = "tenant = 'acme'"
    for column, values in fields.get("filters", {}).items():
        where += f" and {column} in ({', '.join(repr(v) for v in values)})"
    target = Path(work) / "baseline" / f"{case.replace(' ', '_')}.duck"
    target.parent.mkdir(exist_ok=True)
    options = {
        "csv": "FORMAT csv, HEADER",
        "jsonl": "FORMAT json",
        "parquet": "FORMAT parquet, COMPRESSION snappy",
    }[fields["format"]]
    if fields.get("compression") == "gzip":
        options += ", COMPRESSION gzip"
    duckdb.sql(
        f"COPY (SELECT {columns} FROM read_parquet('{work}/lake/{RAW}') WHERE {where}) "
        f"TO '{target}' ({options})"
    )
    return 0


def product_metrics(work: str) -> int:
    from exporter_pipeline.exports.datasets import metrics

    export = _definition(
        {
            "dataset": "metrics",
            "metrics": ["http", "p2p", "sessions"],
            "interval": "1m",
            "dimensions": ["country.code", "browser.name"],
            "format": "csv",
        }
    )
    frame = metrics(
        export,
        [Path(f"{work}/lake/delivery_metrics/dt=2026-10-01/hour=05/metrics.parquet")],
        HOUR,
        HOUR + timedelta(hours=1),
    )
    return int(frame.collect().height)


def polars_metrics(work: str) -> int:
    import polars as pl

    frame = (
        pl.scan_parquet(f"{work}/lake/{RAW}")
        .filter(pl.col("tenant") == "acme")
        .group_by(pl.col("event_time").dt.truncate("1m"), "country", "browser")
        .agg(pl.col("http_bytes").sum(), pl.col("p2p_bytes").sum(), pl.col("session_id").n_unique())
    )
    return int(frame.collect().height)


def gzip_two_core_mb_s(work: str) -> int:
    """Reference: bytes/s two processes gzip-compress (level 6) in parallel, from RAM."""
    import gzip
    from concurrent.futures import ProcessPoolExecutor

    data = (Path(work) / "out" / "csv" / "bench" / "2026-10-01-05-00.csv").read_bytes()
    half = len(data) // 2
    began = time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(gzip.compress, [data[:half], data[half:]]))
    return int(len(data) / (time.perf_counter() - began))


def backfill_30_days(work: str, per_hour: int) -> int:
    """A 30-day daily backfill of an export as the UI launches it; returns runs.

    Writes `backfill-<per_hour>/timings.json`: the runs' wall time (in process: from launch to the
    end of each run) and their export work (`duration_s` of the materializations).
    """
    import dagster as dg
    import yaml

    # Runs log every file at DEBUG to stderr; this child's stderr is not the table's.
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)

    from exporter_pipeline.definitions import build_definitions
    from exporter_pipeline.settings import Settings

    root = Path(work) / f"backfill-{per_hour}"
    (root / "exports.yaml").write_text(
        yaml.safe_dump(
            {
                "outputs": {"out": {"type": "local", "path": str(root / "out")}},
                "exports": [
                    {
                        "name": "small",
                        "tenant": "acme",
                        "dataset": "raw",
                        "format": "csv",
                        "cadence": "daily",
                        "start": "2026-09-01",
                        "output": {"name": "out", "path": "small"},
                    }
                ],
            }
        )
    )
    defs = build_definitions(
        Settings.from_env(
            {
                "EXPORTER_LAKE_URL": str(root / "lake"),
                "EXPORTER_EXPORTS_FILE": str(root / "exports.yaml"),
                # A store of its own: each round's exports file is its first load.
                "EXPORTER_DATABASE_URL": f"sqlite:///{root / 'exporter.sqlite3'}",
                "EXPORTER_PARTITIONS_START": "2026-09-01",
            }
        )
    )
    job = defs.resolve_job_def("export_small")
    asset = defs.resolve_assets_def(dg.AssetKey(["exports", "small"]))
    per_run = int(asset.backfill_policy.max_partitions_per_run or 1)  # type: ignore[union-attr]
    days = [f"2026-09-{d:02d}" for d in range(1, 31)]
    instance = dg.DagsterInstance.ephemeral()
    export_seconds = run_seconds = 0.0
    runs = 0
    for first in range(0, len(days), per_run):
        chunk = days[first : first + per_run]
        began = time.perf_counter()
        result = job.execute_in_process(
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": chunk[0],
                "dagster/asset_partition_range_end": chunk[-1],
            },
        )
        run_seconds += time.perf_counter() - began
        meta = result.get_asset_materialization_events()[0].materialization.metadata
        export_seconds += float(meta["duration_s"].value)  # type: ignore[arg-type]
        runs += 1
    (root / "timings.json").write_text(json.dumps({"runs": run_seconds, "export": export_seconds}))
    return runs


QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def build_backfill_lake(work: str, per_hour: int) -> int:
    """30 days of `per_hour` events for acme: one simulated, ingested day, shifted day by day."""
    import polars as pl

    from exporter_pipeline.destinations import destination_from_url
    from exporter_pipeline.events.ingest import ingest_hour
    from exporter_pipeline.events.simulate import simulate

    root = Path(work) / f"backfill-{per_hour}"
    start = datetime(2026, 9, 1, tzinfo=UTC)
    simulate(root / "landing", ["acme"], start, start + timedelta(days=1), per_hour, seed=3)
    landing, lake = (
        destination_from_url(str(root / "landing")),
        destination_from_url(str(root / "lake")),
    )
    for hour in range(24):
        ingest_hour(start + timedelta(hours=hour), landing, lake)
    for day in range(1, 30):
        for hour in range(24):
            source, moment = start + timedelta(hours=hour), start + timedelta(days=day, hours=hour)
            target = root / f"lake/raw_events/dt={moment:%Y-%m-%d}/hour={moment:%H}"
            target.mkdir(parents=True, exist_ok=True)
            (
                pl.scan_parquet(root / f"lake/raw_events/dt={source:%Y-%m-%d}/hour={source:%H}")
                .with_columns(pl.col("event_time") + timedelta(days=day))
                .sink_parquet(target / "events.parquet")
            )
    return 30 * 24


# The hours of the RSS-with-range-length comparison hold at most this many events, so that
# 48 hours of CSV stay a few GB on disk whatever --events is.
SPAN_HOUR_EVENTS = 1_000_000


def spread_hours(work: str, hours: int) -> int:
    """Copies of the benchmark hour (its first SPAN_HOUR_EVENTS rows) shifted to `hours`
    consecutive hours (not measured)."""
    import polars as pl

    from exporter_pipeline.lake import ROW_GROUP_ROWS

    start = HOUR.replace(hour=0)
    for hour in range(hours):
        moment = start + timedelta(hours=hour)
        target = Path(work) / f"lake-span/raw_events/dt={moment:%Y-%m-%d}/hour={moment:%H}"
        target.mkdir(parents=True, exist_ok=True)
        shift = moment - HOUR
        (
            pl.scan_parquet(f"{work}/lake/{RAW}")
            .head(SPAN_HOUR_EVENTS)
            .with_columns(pl.col("event_time") + shift)
            .sink_parquet(target / "events.parquet", row_group_size=ROW_GROUP_ROWS)
        )
    return hours


def product_export_hours(work: str, hours: int) -> int:
    """Export a window of `hours` full hours in one execution: peak RSS must stay flat."""
    from exporter_pipeline.destinations import destination_from_url
    from exporter_pipeline.exports.execution import export_window

    out = Path(work) / "out-span" / str(hours)
    shutil.rmtree(out, ignore_errors=True)
    start = HOUR.replace(hour=0)
    result = export_window(
        _definition({"format": "csv"}),
        start,
        start + timedelta(hours=hours),
        destination_from_url(f"{work}/lake-span"),
        destination_from_url(str(out)),
        "bench",
    )
    return result.rows


RUN_START = (
    "import sys\nfrom exporter_pipeline.definitions import defs\ndefs.get_job(sys.argv[1])\n"
)


def run_process_start_seconds() -> float:
    """What a run process pays before its first step: Python, imports, its job (an
    export's job is built alone, as a run worker asks for it)."""
    import subprocess

    samples = []
    for _ in range(3):
        began = time.perf_counter()
        subprocess.run(
            [sys.executable, "-W", "ignore", "-c", RUN_START, "export_acme_daily_raw"],
            check=True,
        )
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


# --- the table ----------------------------------------------------------------------------


def medians(
    rounds: int, *steps: tuple[Callable[..., Any], tuple[Any, ...]]
) -> list[tuple[float, int, int]]:
    """Per step: (median seconds, max peak RSS, rows). The steps alternate within each
    round, so the product and its baselines see the same machine conditions."""
    results: list[list[tuple[float, int, int]]] = [[] for _ in steps]
    for _ in range(rounds):
        for done, (target, args) in zip(results, steps, strict=True):
            done.append(measure(target, *args))
    return [
        (statistics.median(r[0] for r in done), max(r[1] for r in done), done[-1][2])
        for done in results
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5_000_000, help="events in the hour")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", default="benchmarks/out")
    parser.add_argument(
        "--span-hours", default="1,24,48", help="window lengths for the peak-RSS comparison"
    )
    parser.add_argument(
        "--backfill-events", default="200,20000", help="events per hour of the backfill data sets"
    )
    args = parser.parse_args()
    work = str(Path(args.work).resolve())
    shutil.rmtree(work, ignore_errors=True)
    Path(work).mkdir(parents=True)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    print(f"simulating {args.events:,} events ...", flush=True)
    measure(simulate_hour, work, args.events)
    landing_bytes = sum(p.stat().st_size for p in (Path(work) / "landing").rglob("*"))

    rows: list[tuple[str, float, int, int, float | None, float | None]] = []

    def line(
        name: str,
        seconds: float,
        peak: int,
        count: int,
        nbytes: int,
        polars_s: float | None = None,
        duck_s: float | None = None,
        polars_peak: int | None = None,
    ) -> None:
        rate = count / seconds if seconds else 0
        mb_s = nbytes / seconds / 1e6 if seconds else 0
        ratio_p = seconds / polars_s if polars_s else None
        ratio_d = seconds / duck_s if duck_s else None
        rows.append((name, seconds, peak, count, ratio_p, ratio_d))
        print(
            f"{name:<24} {seconds:8.2f} {rate:12,.0f} {mb_s:8.1f} {peak / 2**20:8.0f} "
            f"{'' if polars_peak is None else f'{polars_peak / 2**20:.0f}':>9} "
            f"{'' if ratio_p is None else f'{ratio_p:6.2f}':>7} "
            f"{'' if ratio_d is None else f'{ratio_d:6.2f}':>7}",
            flush=True,
        )

    print(
        f"\n{'step':<24} {'seconds':>8} {'rows/s':>12} {'MB/s':>8} {'RSS MB':>8} "
        f"{'polars MB':>9} {'/polars':>7} {'/duckdb':>7}"
    )
    ingest, polars_in = medians(args.rounds, (product_ingest, (work,)), (polars_ingest, (work,)))
    line("ingest (product)", *ingest, landing_bytes, polars_in[0])
    line("ingest (bare polars)", *polars_in, landing_bytes)
    measure(derive, work)
    raw_bytes = (Path(work) / "lake" / RAW).stat().st_size
    for case in CASES:
        product, polars, duck = medians(
            args.rounds,
            (product_export, (work, case)),
            (polars_export, (work, case)),
            (duckdb_export, (work, case)),
        )
        line(
            f"export {case}",
            *product,
            raw_bytes,
            polars[0],
            duck[0],
            polars_peak=polars[1],
        )
    metric, polars_metric = medians(
        args.rounds, (product_metrics, (work,)), (polars_metrics, (work,))
    )
    line(
        "metrics 1m x 2 dims",
        *metric,
        raw_bytes,
        polars_metric[0],
        polars_peak=polars_metric[1],
    )

    gz = measure(gzip_two_core_mb_s, work)[2]
    csv_gz = next(r for r in rows if r[0] == "export csv.gz")
    csv_bytes = (Path(work) / "out" / "csv" / "bench" / "2026-10-01-05-00.csv").stat().st_size
    print(
        f"\nCSV.gz: {csv_bytes / csv_gz[1] / 1e6:.1f} MB/s of CSV vs two-core gzip "
        f"{gz / 1e6:.1f} MB/s ({csv_bytes / csv_gz[1] / gz:.0%})"
    )
    span_hours = [int(h) for h in args.span_hours.split(",")]
    measure(spread_hours, work, max(span_hours))
    spans = []
    for hours in span_hours:
        spans.append(measure(product_export_hours, work, hours))
        shutil.rmtree(Path(work) / "out-span", ignore_errors=True)  # measured: free the disk
    shutil.rmtree(Path(work) / "lake-span", ignore_errors=True)
    print(
        "peak RSS exporting "
        + "; ".join(
            f"{hours} hour{'s' * (hours > 1)} ({count:,} rows): {peak / 2**20:.0f} MB"
            for hours, (_, peak, count) in zip(span_hours, spans, strict=True)
        )
    )

    start = run_process_start_seconds()
    for per_hour in (int(n) for n in args.backfill_events.split(",")):
        measure(build_backfill_lake, work, per_hour)
        runs = measure(backfill_30_days, work, per_hour)[2]
        timings = json.loads((Path(work) / f"backfill-{per_hour}" / "timings.json").read_text())
        shutil.rmtree(Path(work) / f"backfill-{per_hour}", ignore_errors=True)
        print(
            f"30-day daily backfill, {per_hour:,} events/hour: {runs} runs, "
            f"{timings['runs']:.2f} s wall, export work {timings['export']:.2f} s, "
            f"orchestration {1 - timings['export'] / timings['runs']:.0%}; with a process per "
            f"run (default run launcher, {start:.2f} s to load the code location each): "
            f"{1 - timings['export'] / (timings['runs'] + runs * start):.0%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
