"""A run worker killed with SIGKILL, end to end on `dagster dev` (SQLite instance, short
run-monitoring intervals, one run per tenant at a time), with a real HTTP receiver on
loopback: the run ends FAILURE at once, the run queued behind it starts, the tenant gets
exactly one signed `export.failed` webhook, nothing of the window is visible in the
output, the dead run's work folder is removed by the next run of the export, and a
re-run of the window writes files byte-identical to a reference execution."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest
import yaml
from standardwebhooks import Webhook

from exporter_pipeline.defs.failures import FAILURE_SENSOR_INTERVAL_S
from exporter_pipeline.destinations import destination_from_url
from exporter_pipeline.exports.execution import export_window
from exporter_pipeline.exports.spec import load_definitions_file
from exporter_pipeline_tests.delivery.conftest import Receiver
from exporter_pipeline_tests.e2e.conftest import Deployment, start_dagster_dev
from exporter_pipeline_tests.e2e.test_dagster_dev import launch, runs, wait_for
from exporter_pipeline_tests.exports.conftest import build_lake

SECRET = "whsec_" + base64.b64encode(b"run monitoring webhook secret!!!").decode()
EXPORT = "e2e_crash"
WINDOW, NEXT_WINDOW = "2026-10-01", "2026-10-02"
POLL_S = 2  # run_monitoring.poll_interval_seconds of the test instance
# After the last notice, one more failure-sensor interval: a second notice would show.
FAILURE_SENSOR_SETTLE_S = FAILURE_SENSOR_INTERVAL_S + 1
EVENTS = """query($runId: ID!) { logsForRun(runId: $runId) { ... on EventConnection {
    events { __typename ... on MessageEvent { message } } } } }"""
# What the test instance changes: monitoring every 2 s, and one run per tenant at a time
# so that a second run of the tenant waits in the queue behind the first.
INSTANCE = {
    "run_monitoring": {
        "enabled": True,
        "start_timeout_seconds": 60,
        "cancel_timeout_seconds": 30,
        "max_runtime_seconds": 600,
        "max_resume_run_attempts": 0,
        "poll_interval_seconds": POLL_S,
    },
    "concurrency": {
        "runs": {
            "max_concurrent_runs": 4,
            "tag_concurrency_limits": [
                {"key": "tenant", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
            ],
        },
        "pools": {"granularity": "run", "default_limit": 1},
    },
}


@pytest.fixture
def deployment(tmp_path: Path, receiver: Receiver) -> Iterator[tuple[Deployment, dict[str, Any]]]:
    # Hours stored in row groups of 5 rows, read group by group: a window costs the
    # worker about 2 s of CPU (0.1 s in 128 K-row groups), so the test finds it mid-window.
    lake = build_lake(tmp_path / "data", events_per_hour=300, hours=48, row_group_rows=5)
    exports = {
        "outputs": {"local": {"type": "local", "path": str(tmp_path / "out")}},
        "exports": [
            {
                "name": EXPORT,
                "tenant": "acme",
                "dataset": "raw",
                "format": "csv",
                "cadence": "daily",
                "start": WINDOW,
                "end": NEXT_WINDOW,
                "output": {"name": "local", "path": "daily"},
                "delivery": {
                    "webhook": {
                        "url": receiver.url,
                        "secret_env": "E2E_HOOK_SECRET",
                        "backoff_seconds": 0.2,
                    }
                },
            }
        ],
    }
    (tmp_path / "exports.yaml").write_text(yaml.safe_dump(exports))
    work = tmp_path / "work"  # the runs' temporary folder, watched by the test
    work.mkdir()
    env = {
        "EXPORTER_LAKE_URL": str(lake.root),
        "EXPORTER_LANDING_URL": str(tmp_path / "data/landing"),
        "EXPORTER_EXPORTS_FILE": str(tmp_path / "exports.yaml"),
        "EXPORTER_PARTITIONS_START": WINDOW,
        "EXPORTER_WEBHOOK_ALLOW_PRIVATE": "true",
        "EXPORTER_EXPORT_MAX_RUNTIME_S": "900",
        "E2E_HOOK_SECRET": SECRET,
        "TMPDIR": str(work),
    }
    for running in start_dagster_dev(tmp_path, env, None, INSTANCE):
        yield running, {"lake": lake, "out": tmp_path / "out", "work": work, "root": tmp_path}


def run_status(dev: Deployment, run_id: str) -> str:
    return str(next(r["status"] for r in runs(dev, runIds=[run_id])))


def worker_pid(dev: Deployment, run_id: str) -> int | None:
    """The run worker's pid, from the run's own engine event.

    Under `dagster dev` the worker is a multiprocessing child of the code server: its
    command line is `spawn_main(...)`, without the run id, so the run's log names it.
    """
    events = dev.graphql(EVENTS, {"runId": run_id})["logsForRun"]["events"]
    for event in events:
        found = re.search(r"Started process for run \(pid: (\d+)\)", event.get("message") or "")
        if found:
            return int(found[1])
    return None


def data_files(folder: Path) -> list[str]:
    """Files an execution wrote into its work folder: `<yyyymmddhh>.<part>`."""
    return sorted(p.name for p in folder.iterdir() if re.fullmatch(r"\d{10}\.\d{3}", p.name))


def hold_back(worker: psutil.Process, cpu: int) -> None:
    """Every thread of the worker on the test's own core, at the lowest priority.

    Linux sets both per thread; threads the worker starts later inherit them.
    """
    for thread in worker.threads():
        try:
            os.sched_setaffinity(thread.id, {cpu})
            os.setpriority(os.PRIO_PROCESS, thread.id, 19)
        except ProcessLookupError:  # a thread that ended since the listing
            continue


def in_a_write_transaction(pid: int) -> bool:
    """Whether the process holds a POSIX write lock: SQLite's while it writes a database.

    The instance's databases (and the store) are in WAL mode, where only a writer holds
    write locks (on the `-shm` file); a reader's locks are shared and block no one. A
    worker frozen while writing would keep every other writer of the instance waiting,
    and the test's next launch failing with "database is locked".
    """
    for line in Path("/proc/locks").read_text().splitlines():
        _, kind, _, mode, owner, *_ = line.split()
        if kind == "POSIX" and mode == "WRITE" and owner == str(pid):
            return True
    return False


def stop_mid_window(pid: int, work: Path) -> Path:
    """Let the worker run in small slices until its work folder holds part of the window.

    The worker is frozen (SIGSTOP) between slices and looked at while frozen: what the
    test sees is exactly where the kill will find it, and never while it writes the
    instance. A slice must not grow when this process is preempted on a busy machine:
    the CI of 2026-12-04 saw the worker write a whole window, publish it and exit in
    one. So each window costs the worker about 2 s of CPU (the lake's small row groups),
    and the worker shares this process's one core at the lowest priority: it runs only
    while the test sleeps and nothing else wants that core.
    """
    worker = psutil.Process(pid)
    own_cpus = os.sched_getaffinity(0)
    cpu = min(own_cpus)
    os.sched_setaffinity(0, {cpu})
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            worker.suspend()
            hold_back(worker, cpu)
            folders = [f for f in work.glob(f"export-{EXPORT}-*") if f.is_dir()]
            if folders and data_files(folders[0]) and not in_a_write_transaction(pid):
                return folders[0]
            worker.resume()
            time.sleep(0.002)
    except psutil.NoSuchProcess as gone:
        raise AssertionError("the run worker ended before it was seen mid-window") from gone
    finally:
        os.sched_setaffinity(0, own_cpus)
    raise TimeoutError("the run never wrote into a work folder")


def sha256s(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def webhooks(receiver: Receiver) -> list[dict[str, Any]]:
    return [Webhook(SECRET).verify(r.body, r.headers) for r in receiver.requests]


def test_a_killed_run_worker_ends_failed_frees_its_slot_and_is_reported_once(
    deployment: tuple[Deployment, dict[str, Any]],
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dev, facts = deployment
    # The reference below loads the same file here, where the receiver is on loopback too.
    monkeypatch.setenv("EXPORTER_WEBHOOK_ALLOW_PRIVATE", "true")
    out: Path = facts["out"] / "daily"
    began = time.monotonic()

    # The reference: the same window exported in this process, to another folder.
    definitions = load_definitions_file(facts["root"] / "exports.yaml")
    export = definitions.export(EXPORT)
    day = datetime(2026, 10, 1, tzinfo=UTC)
    reference = facts["root"] / "reference"
    export_window(
        export,
        day,
        day + timedelta(days=1),
        facts["lake"].store,
        destination_from_url(str(reference)),
        "reference",
    )
    expected = sha256s(reference / "daily")
    assert len(expected) == 24

    doomed = launch(dev, f"export_{EXPORT}", {"dagster/partition": WINDOW})
    pid = wait_for(lambda: worker_pid(dev, doomed), 90, "the run worker to start")
    worker = psutil.Process(pid)
    # The worker runs under this deployment: a child of its code server.
    assert any("dagster" in " ".join(p.cmdline()) for p in worker.parents())
    folder = stop_mid_window(pid, facts["work"])
    # Frozen mid-window: part of the window in the work folder, nothing in the output.
    assert 1 <= len(data_files(folder)) < 24
    assert not out.exists() or not list(out.rglob("2026-10-01*"))
    # The tenant's next run waits for the slot the frozen run holds.
    queued = launch(dev, f"export_{EXPORT}", {"dagster/partition": NEXT_WINDOW})
    time.sleep(3)
    assert run_status(dev, queued) == "QUEUED"
    assert run_status(dev, doomed) == "STARTED"
    tags = next(r["tags"] for r in runs(dev, runIds=[doomed]))
    assert tags["dagster/max_runtime"] == "900" and tags["tenant"] == "acme"

    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)

    def ended() -> str | None:
        status = run_status(dev, doomed)
        return status if status not in ("STARTED", "CANCELING") else None

    def poll_fast(condition: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := condition():
                return value
            time.sleep(0.1)
        raise TimeoutError

    assert poll_fast(ended, POLL_S + 10) == "FAILURE"
    failed_after = time.monotonic() - killed_at
    assert folder.is_dir() and data_files(folder)  # the kill left the partial window
    assert failed_after < POLL_S + 5  # within the monitoring interval plus a margin
    assert poll_fast(lambda: run_status(dev, queued) != "QUEUED", 30)
    queued_started_after = time.monotonic() - killed_at

    # The dead run left its folder behind; the next run of the export removed it.
    wait_for(lambda: run_status(dev, queued) == "SUCCESS", 90, "the queued run")
    assert not folder.exists()
    assert list(facts["work"].glob(f"export-{EXPORT}-*")) == []

    # The failure sensor writes the error file the dead run could not; nothing else of
    # the window is visible.
    error_file = out / "_manifests/2026-10-01-00-00_2026-10-02-00-00.error.json"
    wait_for(error_file.exists, 60, "the error file of the dead run's window")
    error_written_after = time.monotonic() - killed_at
    error = orjson.loads(error_file.read_bytes())
    reason = "the run worker died (killed by signal 9, SIGKILL); Dagster marked the run failed"
    assert error == {
        "export": EXPORT,
        "tenant": "acme",
        "run_id": doomed,
        "window": {"start": "2026-10-01T00:00:00Z", "end": "2026-10-02T00:00:00Z"},
        "error": reason,
        "failed_at": error["failed_at"],
        "files_published": False,
        "files_uploaded": 0,
    }
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*2026-10-01*")) == [
        "_manifests/2026-10-01-00-00_2026-10-02-00-00.error.json"
    ]

    # One export.failed for the window, and export.ready for the queued run's window.
    def failed_and_ready() -> list[dict[str, Any]]:
        bodies = webhooks(receiver)
        kinds = sorted(b["type"] for b in bodies)
        return bodies if kinds == ["export.failed", "export.ready"] else []

    bodies = wait_for(failed_and_ready, 120, "the failure notice and the next ready notice")
    notified_after = time.monotonic() - killed_at
    failed = next(b for b in bodies if b["type"] == "export.failed")
    assert failed == {
        "type": "export.failed",
        "export": EXPORT,
        "tenant": "acme",
        "window": {"start": "2026-10-01T00:00:00Z", "end": "2026-10-02T00:00:00Z"},
        "error_file": "daily/_manifests/2026-10-01-00-00_2026-10-02-00-00.error.json",
        "error": reason,
        "run_id": doomed,
    }

    # A re-run of the window publishes files byte-identical to the reference, and its
    # success removes the error file.
    rerun = launch(dev, f"export_{EXPORT}", {"dagster/partition": WINDOW})
    wait_for(lambda: run_status(dev, rerun) == "SUCCESS", 90, "the re-run")
    published = {k: v for k, v in sha256s(out).items() if k.startswith("2026-10-01")}
    assert published == expected
    assert not error_file.exists()
    manifest = orjson.loads(
        (out / "_manifests/2026-10-01-00-00_2026-10-02-00-00.json").read_bytes()
    )
    assert manifest["run_id"] == rerun
    assert {f["sha256"] for f in manifest["files"]} == set(expected.values())

    # Its ready notice comes in later sensor ticks; by then the failure sensors have
    # looked again and again: still exactly one failure notice.
    wait_for(lambda: len(receiver.requests) >= 3, 120, "the re-run's ready notice")
    time.sleep(FAILURE_SENSOR_SETTLE_S)
    kinds = sorted(b["type"] for b in webhooks(receiver))
    assert kinds == ["export.failed", "export.ready", "export.ready"]
    print(
        f"\nFAILURE {failed_after:.1f} s after SIGKILL; queued run left the queue after "
        f"{queued_started_after:.1f} s; error file after {error_written_after:.1f} s; "
        f"export.failed webhook after {notified_after:.1f} s; "
        f"test body {time.monotonic() - began:.0f} s"
    )
