"""`exporter-pipeline status`'s table and the delivery answer it reads from the delivery
step's output metadata (as the GraphQL API returns it). No server: the e2e suite runs
the command against `dagster dev` (e2e/test_dagster_dev.py)."""

from __future__ import annotations

from exporter_pipeline.api.status import Delivery, ExportStatus, Window, _answer, status_lines

T = 1_790_000_000.0  # 2026-09-21 14:13 UTC


def test_the_delivery_answer_is_the_webhook_status_and_attempts() -> None:
    output = {
        "__typename": "ExecutionStepOutputEvent",
        "metadataEntries": [
            {"label": "webhook_status", "__typename": "IntMetadataEntry", "intValue": 200},
            {"label": "webhook_attempts", "__typename": "IntMetadataEntry", "intValue": 2},
            {"label": "emailed", "__typename": "JsonMetadataEntry"},
        ],
    }
    assert _answer([{"__typename": "RunStartEvent"}, output]) == (
        "webhook 200 after 2 attempt(s), emailed"
    )
    failure = {"__typename": "ExecutionStepFailureEvent", "error": {"message": "HTTP 500\n…"}}
    assert _answer([failure]) == "HTTP 500"


def test_one_table_per_export_with_its_delivery_and_failures() -> None:
    status = ExportStatus(
        "acme_daily",
        "acme",
        [Window("2026-10-02", "abcdef0123", "SUCCESS", 1733, 24, T)],
        Delivery("0123456789", "SUCCESS", T, "webhook 200 after 1 attempt(s)"),
        failures_24h=2,
    )
    never = ExportStatus("acme_new", "acme")
    lines = status_lines([status, never])
    assert lines[0] == "export acme_daily (tenant acme)"
    assert lines[2].split() == [
        "2026-10-02",
        "abcdef01",
        "SUCCESS",
        "1733",
        "24",
        *"2026-09-21 14:13".split(),
    ]
    assert (
        lines[3]
        == "  last delivery: 01234567 SUCCESS 2026-09-21 14:13: webhook 200 after 1 attempt(s)"
    )
    assert lines[4] == "  failed runs in the last 24 hours: 2"
    assert "  (no window exported yet)" in lines and "  last delivery: none" in lines
