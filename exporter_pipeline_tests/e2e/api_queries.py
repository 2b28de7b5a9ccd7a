"""Metrics, views and viewers read through the API of the end-to-end deployment
(test_api.py), each compared with DuckDB over the lake's Parquet files: the servers-tier
tests' own reference queries (api/test_metrics.py, api/test_views.py), here against the
API that serves a running Dagster deployment."""

from __future__ import annotations

import httpx

from exporter_pipeline.api.metrics import MetricsAnswer
from exporter_pipeline.api.view_models import View, Viewer
from exporter_pipeline.exports.fields import METRIC_NAMES
from exporter_pipeline_tests.api.query_lake import duck_rows
from exporter_pipeline_tests.api.test_metrics import FROM, TO, expected, keyed
from exporter_pipeline_tests.api.test_views import (
    END,
    RANGE,
    START,
    expected_views,
    presented,
    read,
    segment_where,
    walk,
)
from exporter_pipeline_tests.exports.conftest import Lake


def check_metrics(client: httpx.Client, lake: Lake, tenant: str) -> None:
    case = {"metrics": list(METRIC_NAMES), "interval": "5m", "dimensions": ["country.code"]}
    params = {**case, "from": FROM, "to": TO}
    answer = client.get("/v1/metrics", params=params)
    assert answer.status_code == 200, answer.text
    rows = MetricsAnswer.model_validate(answer.json()).model_dump(by_alias=True)["data"]
    truth = expected(lake, tenant, params)
    assert truth and keyed(rows, case) == keyed(truth, case)


def check_views(client: httpx.Client, lake: Lake, tenant: str) -> None:
    truth = expected_views(lake, tenant, {})
    views, _pages = walk(client, "/v1/views", {**RANGE, "_limit": 50})
    assert truth and [v["attributes"]["view_id"] for v in views] == [t["view_id"] for t in truth]
    for view, row in zip(views, truth, strict=True):
        View.model_validate(view)
        assert read(view["attributes"]) == presented(row)


def check_viewers(client: httpx.Client, lake: Lake, tenant: str) -> None:
    sql = f"""
        SELECT viewer_identifier, count(DISTINCT content_id) AS videos_watched,
               list(view_id ORDER BY started_at, view_id) AS ids
        FROM lake WHERE {segment_where({})}
        GROUP BY viewer_identifier ORDER BY viewer_identifier"""
    truth = duck_rows(sql, lake.files("view_segments"), tenant=tenant, start=START, end=END)
    viewers, _pages = walk(client, "/v1/viewers", {**RANGE, "_limit": 50})
    assert truth and len(viewers) == len(truth)
    for viewer, row in zip(viewers, truth, strict=True):
        Viewer.model_validate(viewer)
        attributes = viewer["attributes"]
        assert attributes["viewer_identifier"] == row["viewer_identifier"]
        assert attributes["videos_watched"] == row["videos_watched"]
        assert [s["id"] for s in attributes["segments"]] == row["ids"]


def check_queries(client: httpx.Client, lake: Lake, tenant: str) -> None:
    check_metrics(client, lake, tenant)
    check_views(client, lake, tenant)
    check_viewers(client, lake, tenant)
