"""A tenant's bucket whose host accepts connections and never answers (a real socket on
loopback, `LoopbackServer`) holds no tick of the delivery sensor, whose evaluation Dagster
would end after 60 s while the S3 client waited 120 s for an answer: the tick ends at
its limit with the other outputs' deliveries and keeps the bucket's news, no later tick
asks the bucket again while that request hangs, and once the host drops it the bucket is
asked again. Real export runs on a SQLite instance (the burst tests' `Fleet`)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import pytest

from exporter_pipeline.defs import delivery_sensor
from exporter_pipeline_tests.delivery.conftest import receiver  # noqa: F401 (a fixture)
from exporter_pipeline_tests.delivery.test_delivery_sensor_burst import (
    MANIFEST_0,
    Fleet,
    burst,
    exports_of,
    fleet,  # noqa: F401 (a fixture)
)
from exporter_pipeline_tests.exports.conftest import lake  # noqa: F401 (a fixture)
from exporter_pipeline_tests.hostile.loopback import LoopbackServer, Request

ERROR_0 = MANIFEST_0.removesuffix(".json") + ".error.json"
LISTING = "/b?list-type=2&prefix=deliveries%2F_manifests%2F2026-10-01&encoding-type=url"


def delivery_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "delivery-listing" and t.is_alive()]


def test_a_bucket_that_never_answers_holds_no_tick(
    fleet: Fleet,  # noqa: F811
    servers: Callable[..., LoopbackServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gone = threading.Event()

    def never(_connection: socket.socket, _request: Request) -> None:
        gone.wait(60)  # then the connection is closed: the host went away

    silent = servers(never)
    monkeypatch.setenv("EXPORTER_WEBHOOK_ALLOW_PRIVATE", "true")  # the receiver, on loopback
    burst(fleet.build(2, budget=10), 2)
    for name, value in {"T_S3_URL": silent.url(""), "T_S3_KEY": "k", "T_S3_SECRET": "s"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("EXPORTER_DESTINATION_ATTEMPTS", "1")
    fleet.move(
        "o1",
        {
            "type": "s3",
            "tenant": "acme",
            "bucket": "b",
            "region": "us-east-1",
            "endpoint_url_env": "T_S3_URL",
            "access_key_id_env": "T_S3_KEY",
            "secret_access_key_env": "T_S3_SECRET",
        },
    )
    monkeypatch.setattr(delivery_sensor, "TICK_LIMIT_SECONDS", 5.0)

    # o1's listing waits on a socket that never answers; the tick ends at its limit with
    # o0's delivery, and keeps o1's news.
    began = time.monotonic()
    assert exports_of(fleet.tick()) == ["acme_o0"]
    assert time.monotonic() - began < 20
    assert [(r.method, r.target) for r in silent.requests] == [("GET", LISTING)]
    kept = fleet.parsed.pending  # the window's manifest and error file, each once
    assert [(h.export, h.key) for h in kept] == [("acme_o1", MANIFEST_0), ("acme_o1", ERROR_0)]
    # While that request hangs, no tick asks the bucket again: one thread, not one a tick.
    assert fleet.tick() == [] and fleet.tick() == []
    assert silent.connections == len(silent.requests) == 1
    assert fleet.parsed.pending == kept

    # The host drops the connection and closes each later one unanswered: the listing
    # ends (one attempt), and the next tick asks the bucket again.
    gone.set()
    deadline = time.monotonic() + 30
    while delivery_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert delivery_threads() == []
    assert fleet.tick() == [] and fleet.parsed.pending == kept
    assert [(r.method, r.target) for r in silent.requests] == [("GET", LISTING)] * 2
