"""Speed of the HTTP API on the benchmark lake: latency of the synchronous reads and the
API under 50 concurrent clients.

    .venv/bin/python benchmarks/api.py [--events-per-hour 1000000] [--hours 24]
                                       [--calls 50] [--clients 50] [--seconds 60]
                                       [--work DIR]

The lake is built once under `--work` (kept between runs: a second run with the same
size reuses it) with the product's own code: `simulate` writes the landing files of
`--hours` hours for 4 tenants, `ingest_hour` writes each raw hour, and the hourly
derived data sets (`view_segments`, `delivery_metrics`) are written from it as their
assets write them. Then `exporter-pipeline api --workers N` serves it (uvicorn; one
process per core by default, as DESIGN.md deploys it) and this process measures, with httpx:

- `GET /v1/metrics` for the whole day at 1m with 2 dimensions, and for 7 days at 1h,
  p50 and p95 of `--calls` calls each;
- `GET /v1/views` at `_limit=10000`, the first and the last page, p50 and p95;
- `GET /v1/viewers` at `_limit=100`, the first page;
- `--clients` concurrent clients (one asyncio loop, httpx) calling those reads in turn
  for `--seconds`: requests, errors, p50, p95, p99.

- with `--tasks N` (needs a Dagster webserver: `dagster dev` is started on the project's
  workspace, the same store and lake): `POST /v1/export-tasks` of one hour each, N times,
  the time until the API answers 201 (the run is QUEUED then), p50 and p95.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TENANTS = ["acme", "globex", "initech", "umbrella"]
# Yesterday (UTC): seed 001 answers fine intervals only for recent ranges (1m and 5m:
# within the last 7 days), so the lake is of yesterday and is rebuilt on a later day.
DAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)


def build_lake(work: Path, events_per_hour: int, hours: int) -> Path:
    """The lake of `hours` hours from DAY, built once per size under `work`."""
    import polars as pl

    from exporter_pipeline.derived.delivery_metrics import delivery_metrics
    from exporter_pipeline.derived.view_segments import view_segments
    from exporter_pipeline.destinations.local import LocalDestination
    from exporter_pipeline.events.ingest import ingest_hour
    from exporter_pipeline.events.simulate import simulate
    from exporter_pipeline.lake import hourly_key, write_hourly

    lake_dir = work / f"lake-{DAY:%Y-%m-%d}-{events_per_hour}x{hours}"
    done = lake_dir / ".complete"
    if done.exists():
        return lake_dir
    landing_dir = work / "landing"
    lake = LocalDestination(lake_dir)
    for number in range(hours):
        hour = DAY + timedelta(hours=number)
        began = time.perf_counter()
        simulate(landing_dir, TENANTS, hour, hour + timedelta(hours=1), events_per_hour)
        ingest_hour(hour, LocalDestination(landing_dir), lake)
        raw = lake_dir / hourly_key("raw_events", hour)
        for name, transform in (
            ("view_segments", view_segments),
            ("delivery_metrics", delivery_metrics),
        ):
            with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
                write_hourly(lake, name, hour, transform(pl.scan_parquet(raw)), Path(tmp))
        subprocess.run(["rm", "-rf", str(landing_dir)], check=True)
        print(f"  lake hour {number + 1}/{hours} in {time.perf_counter() - began:.1f} s")
    done.touch()
    return lake_dir


def environment(work: Path, lake_dir: Path, dagster_port: int) -> dict[str, str]:
    home = work / "home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "EXPORTER_DATABASE_URL": f"sqlite:///{home / 'store.sqlite3'}",
        "EXPORTER_LAKE_URL": str(lake_dir),
        "EXPORTER_EXPORTS_FILE": str(work / "none.yaml"),
        "EXPORTER_API_LOCAL_ROOT": str(work / "tenant-outputs"),
        "EXPORTER_DAGSTER_URL": f"http://127.0.0.1:{dagster_port}",
    }


def wait_for(url: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.5)
    raise RuntimeError(f"nothing answered at {url} within {seconds:.0f} s")


def start_dagster(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    command = [str(BIN / "dagster"), "dev", "-w", str(ROOT / "workspace.yaml"), "-p", str(port)]
    log = open(Path(env["DAGSTER_HOME"]) / "dagster-dev.log", "wb")  # kept open for the child
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    wait_for(f"http://127.0.0.1:{port}/server_info", process, 300)
    return process


def task_creation(client: httpx.Client, count: int) -> tuple[float, float]:
    """(p50 ms, p95 ms) of creating `count` one-hour export tasks of acme."""
    answer = client.post(
        "/v1/outputs", json={"name": "acme_bench", "type": "local", "path": "bench"}
    )
    if answer.status_code not in (201, 409):
        raise RuntimeError(f"output: {answer.status_code} {answer.text[:300]}")
    seconds = []
    for number in range(count):
        hour = DAY + timedelta(hours=number % 24)
        body = {
            "name": f"bench_{number}",
            "start_time": hour.isoformat(),
            "end_time": (hour + timedelta(hours=1)).isoformat(),
            "dataset": "raw",
            "format": "csv",
            "output": "acme_bench",
        }
        began = time.perf_counter()
        created = client.post("/v1/export-tasks", json=body)
        seconds.append(time.perf_counter() - began)
        if created.status_code != 201 or created.json()["status"] != "QUEUED":
            raise RuntimeError(f"task: {created.status_code} {created.text[:300]}")
    return statistics.median(seconds) * 1000, percentile(seconds, 0.95) * 1000


def start_api(env: dict[str, str], port: int, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """`exporter-pipeline api --workers N` on `port` with `env`, and a key of tenant acme."""
    created = subprocess.run(
        [str(BIN / "exporter-pipeline"), "api-keys", "create", "--tenant", "acme"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    command = [str(BIN / "exporter-pipeline"), "api", "--port", str(port), "--log-level", "warning"]
    command += ["--workers", str(workers)]
    process = subprocess.Popen(command, env=env, start_new_session=True)
    wait_for(f"http://127.0.0.1:{port}/openapi.json", process, 60)
    return process, key


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def timed_calls(
    client: httpx.Client, path: str, params: dict[str, Any], calls: int
) -> tuple[float, float, int]:
    """(p50 ms, p95 ms, bytes of the last answer) of `calls` sequential calls."""
    seconds = []
    size = 0
    for _ in range(calls):
        began = time.perf_counter()
        answer = client.get(path, params=params)
        seconds.append(time.perf_counter() - began)
        if answer.status_code != 200:
            raise RuntimeError(f"{path} {params}: {answer.status_code} {answer.text[:300]}")
        size = len(answer.content)
    return statistics.median(seconds) * 1000, percentile(seconds, 0.95) * 1000, size


async def load(
    url: str, key: str, requests: list[tuple[str, dict[str, Any]]], clients: int, seconds: float
) -> dict[str, float]:
    """`clients` clients calling `requests` in turn for `seconds`: counts and latencies."""
    latencies: list[float] = []
    errors = 0
    kinds: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client_loop(number: int, http: httpx.AsyncClient) -> None:
        nonlocal errors
        turn = number
        while time.monotonic() < deadline:
            path, params = requests[turn % len(requests)]
            turn += 1
            began = time.perf_counter()
            try:
                answer = await http.get(path, params=params)
                if answer.status_code != 200:
                    errors += 1
                    kinds[f"{path} {answer.status_code} {answer.text[:120]}"] += 1
            except httpx.HTTPError as error:
                errors += 1
                kinds[f"{path} {type(error).__name__}"] += 1
            latencies.append(time.perf_counter() - began)

    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as http:
        await asyncio.gather(*(client_loop(n, http) for n in range(clients)))
    for kind, count in kinds.most_common():
        print(f"  error x{count}: {kind}")
    return {
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": percentile(latencies, 0.95) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def read_requests(hours: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """The reads measured, by label. Seed 001 allows 1m over at most 6 hours, so "a day
    at 1m" is asked as 6 hours at 1m, and a whole day at 10m (the finest a day allows)."""
    end = DAY + timedelta(hours=hours)
    metrics = "http,p2p,played,rebuffered,sessions"
    dimensions = "country.code,browser.name"
    return {
        "metrics, 6 hours at 1m x 2 dimensions": (
            "/v1/metrics",
            {
                "metrics": metrics,
                "from": epoch_ms(DAY),
                "to": epoch_ms(DAY + timedelta(hours=6)),
                "interval": "1m",
                "dimensions": dimensions,
            },
        ),
        "metrics, 1 day at 10m x 2 dimensions": (
            "/v1/metrics",
            {
                "metrics": metrics,
                "from": epoch_ms(DAY),
                "to": epoch_ms(DAY + timedelta(days=1)),
                "interval": "10m",
                "dimensions": dimensions,
            },
        ),
        "metrics, 7 days at 1h": (
            "/v1/metrics",
            {
                "metrics": metrics,
                "from": epoch_ms(DAY + timedelta(days=1) - timedelta(days=7)),
                "to": epoch_ms(DAY + timedelta(days=1)),
                "interval": "1h",
            },
        ),
        "views, first page of 10,000": (
            "/v1/views",
            {"start": DAY.isoformat(), "end": end.isoformat(), "_limit": 10_000},
        ),
        # Each viewer comes with all its segments of the range (seed 003): the simulator's
        # 450 viewers a tenant hold ~1,000 segments each a day, so a page of 100 viewers
        # is ~100,000 segments.
        "viewers, first page of 100": (
            "/v1/viewers",
            {"start": DAY.isoformat(), "end": end.isoformat(), "_limit": 100},
        ),
    }


def views_last_page(client: httpx.Client, reads: dict[str, Any], calls: int) -> str:
    path, params = reads["views, first page of 10,000"]
    total = client.get(path, params=params).json()["meta"]["total"]
    last = max(1, -(-total // 10_000))
    p50, p95, size = timed_calls(client, path, {**params, "_page": last}, calls)
    return f"| views, last page (page {last}, {total:,} views) | {p50:.0f} | {p95:.0f} | {size:,} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events-per-hour", type=int, default=1_000_000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--work", type=Path, default=ROOT / ".bench-api")
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="API processes")
    parser.add_argument("--tasks", type=int, default=0, help="export tasks to create (Dagster)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"building the lake: {args.events_per_hour:,} events/hour x {args.hours} hours")
    lake_dir = build_lake(args.work, args.events_per_hour, args.hours)
    env = environment(args.work, lake_dir, args.port + 1)
    dagster = start_dagster(env, args.port + 1) if args.tasks else None
    process, key = start_api(env, args.port, args.workers)
    url = f"http://127.0.0.1:{args.port}"
    try:
        reads = read_requests(args.hours)
        print("\n| read | p50 ms | p95 ms | answer bytes |\n|---|---:|---:|---:|")
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
            for label, (path, params) in reads.items():
                p50, p95, size = timed_calls(client, path, params, args.calls)
                print(f"| {label} | {p50:.0f} | {p95:.0f} | {size:,} |")
            print(views_last_page(client, reads, args.calls))
            if args.tasks:
                p50, p95 = task_creation(client, args.tasks)
                print(
                    f"| export task creation to QUEUED ({args.tasks}) | {p50:.0f} | {p95:.0f} | |"
                )
        result = asyncio.run(load(url, key, list(reads.values()), args.clients, args.seconds))
        print(
            f"\n{args.clients} concurrent clients for {args.seconds:.0f} s: "
            f"{result['requests']:.0f} requests, {result['errors']:.0f} errors, "
            f"p50 {result['p50_ms']:.0f} ms, p95 {result['p95_ms']:.0f} ms, "
            f"p99 {result['p99_ms']:.0f} ms"
        )
    finally:
        for running in (process, dagster):
            if running is not None:
                os.killpg(running.pid, signal.SIGTERM)
                running.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
