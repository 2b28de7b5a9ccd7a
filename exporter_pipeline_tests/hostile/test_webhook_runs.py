"""Hostile webhooks in real in-process Dagster delivery runs.

A `?token=` in the webhook URL appears in no exception, log line, event or metadata of
a run (the run's metadata shows the redacted URL), and a receiver that trickles its
answer one byte at a time is cut off per attempt and, across the run's Dagster retries,
at the delivery limit. Real servers: the raw TCP servers of `loopback` on 127.0.0.1.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from exporter_pipeline.defs.webhooks import WebhooksResource
from exporter_pipeline_tests.delivery.test_delivery import SECRET, Deployment
from exporter_pipeline_tests.exports.conftest import Lake, lake  # noqa: F401 (shared lake)
from exporter_pipeline_tests.hostile.loopback import (
    SLOW_HEAD,
    LoopbackServer,
    replies,
    trickle,
)


def test_query_token_appears_in_no_error_log_event_or_metadata_of_a_real_run(
    lake: Lake,  # noqa: F811 (the shared lake fixture)
    servers: Callable[..., LoopbackServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    marker = "SECRET123"
    monkeypatch.setenv("EXPORTER_WEBHOOK_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("T_HOOK_SECRET", SECRET)
    receiver = servers(replies(500, 400))
    hook = type("Hook", (), {"url": receiver.url(f"/hooks/exports?token={marker}")})()
    output = {"type": "local", "path": str(tmp_path / "b")}
    deployment = Deployment(tmp_path, lake, output, hook, None, {})
    assert deployment.export().success
    result = deployment.deliver(deployment.tick()[0])

    assert not result.success
    # The token did go to the receiver, on both attempts: 500 is retried, 400 is not.
    assert [r.target for r in receiver.requests] == [f"/hooks/exports?token={marker}"] * 2
    error = result.get_step_failure_events()[0].step_failure_data.error
    assert error is not None
    assert error.message.strip().endswith(
        f"webhook http://127.0.0.1:{receiver.port}/hooks/exports?… "
        "refused the delivery with 400; not retried"
    )
    records = deployment.instance.all_logs(result.run_id)
    messages = [r.user_message for r in records]
    assert any(m.startswith("webhook attempt 1: 500, retrying in") for m in messages)
    assert "webhook attempt 2: 400, not retried" in messages
    # The one webhooks resource holds limits only: no URL, no secret.
    resource = deployment.defs.resources["webhooks"]
    assert isinstance(resource, WebhooksResource)
    assert marker not in repr(resource) and SECRET not in repr(resource)
    run = deployment.instance.get_run_by_id(result.run_id)
    captured = capfd.readouterr()
    everything = "\n".join(
        [
            *(repr(r) for r in records),
            error.to_string(),
            repr(run),
            repr(resource),
            captured.out,
            captured.err,
            *(r.getMessage() for r in caplog.records),
        ]
    )
    # The scanned text does hold the URL, in its redacted form only.
    assert f"127.0.0.1:{receiver.port}/hooks/exports?…" in everything
    assert len(records) > 10 and marker not in everything


def test_delivered_run_shows_the_redacted_url_in_its_metadata(
    lake: Lake,  # noqa: F811 (the shared lake fixture)
    servers: Callable[..., LoopbackServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXPORTER_WEBHOOK_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("T_HOOK_SECRET", SECRET)
    receiver = servers(replies(503))
    hook = type("Hook", (), {"url": receiver.url("/hooks?token=SECRET123")})()
    output = {"type": "local", "path": str(tmp_path / "b")}
    deployment = Deployment(tmp_path, lake, output, hook, None, {})
    assert deployment.export().success
    result = deployment.deliver(deployment.tick()[0])
    assert result.success
    event = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
    metadata = event.event_specific_data.metadata
    assert metadata["webhook_url"] == dg.TextMetadataValue(
        f"http://127.0.0.1:{receiver.port}/hooks?…"
    )
    assert (metadata["webhook_status"].value, metadata["webhook_attempts"].value) == (200, 2)


def test_trickled_answers_stop_at_the_delivery_limit_across_dagster_retries(
    lake: Lake,  # noqa: F811 (the shared lake fixture)
    servers: Callable[..., LoopbackServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXPORTER_WEBHOOK_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("T_HOOK_SECRET", SECRET)
    receiver = servers(trickle(SLOW_HEAD))
    hook = type("Hook", (), {"url": receiver.url("/hooks")})()
    output = {"type": "local", "path": str(tmp_path / "b")}
    limits = {"EXPORTER_WEBHOOK_ATTEMPT_TIMEOUT_S": "1", "EXPORTER_WEBHOOK_TOTAL_TIMEOUT_S": "2"}
    deployment = Deployment(tmp_path, lake, output, hook, None, {}, settings=limits)
    assert deployment.export().success
    request = deployment.tick()[0]
    started = time.monotonic()
    result = deployment.deliver(request)
    elapsed = time.monotonic() - started
    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    assert error is not None
    # Each attempt ends at its own limit; the delivery limit cuts the retries (4 allowed).
    assert re.search(
        rf"webhook {re.escape(receiver.url())} not delivered within the delivery limit of 2s "
        r"after [123] attempts \(last answer: timeout\)$",
        error.message.strip(),
    ), error.message
    assert 1 <= len(receiver.requests) < 4
    assert elapsed < 5.0, elapsed
