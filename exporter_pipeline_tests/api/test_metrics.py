"""`GET /v1/metrics` (seed 001) against the API served by uvicorn on loopback over a real
lake on disk: every answer is compared with DuckDB's sums over the same
delivery_metrics Parquet files; another tenant's rows never count; CSV parses to the
JSON answer; every bad request is a 422 naming its parameter, with its exact words."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter_pipeline.api.metrics import MetricsAnswer
from exporter_pipeline.derived.delivery_metrics import DIMENSIONS
from exporter_pipeline.exports.fields import METRIC_INTERVALS, METRIC_NAMES
from exporter_pipeline.settings import Settings
from exporter_pipeline_tests.api.conftest import Api
from exporter_pipeline_tests.api.query_lake import (
    FIRST_HOUR,
    HOURS,
    duck_rows,
    epoch_ms,
    lake_settings,
    query_lake,
)
from exporter_pipeline_tests.exports.conftest import Lake

DAY_MS = 86_400_000
FROM = epoch_ms(FIRST_HOUR)
TO = epoch_ms(FIRST_HOUR + timedelta(hours=HOURS))
SUMS = {"http": "http_bytes", "p2p": "p2p_bytes", "played": "played_ms"}
SUMS |= {"rebuffered": "rebuffered_ms"}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return query_lake(tmp_path_factory.mktemp("metrics-lake"))


@pytest.fixture
def api(make_api: Callable[[Settings], Api], api_settings: Settings, lake: Lake) -> Api:
    return make_api(lake_settings(api_settings, lake))


def expected(lake: Lake, tenant: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """DuckDB's answer to the same request, straight from the Parquet files."""
    step = METRIC_INTERVALS[params["interval"]] * 1000
    dimensions = params.get("dimensions", [])
    columns = ["(epoch_ms(minute) // $step) * $step AS timestamp"]
    columns += [f'{DIMENSIONS[d]} AS "{d}"' for d in dimensions]
    for metric in params["metrics"]:
        if metric == "sessions":
            columns.append(f"ROUND(SUM(sessions) / {step // 60_000}, 6) AS sessions")
        else:
            columns.append(f"SUM({SUMS[metric]}) AS {metric}")
    where = "tenant = $tenant AND epoch_ms(minute) >= $from AND epoch_ms(minute) < $to"
    for name, values in json.loads(params.get("filters", "{}")).items():
        where += f" AND {DIMENSIONS[name]} IN ({', '.join(repr(v) for v in values)})"
    sql = f"SELECT {', '.join(columns)} FROM lake WHERE {where} GROUP BY ALL"
    return duck_rows(
        sql,
        lake.files("delivery_metrics"),
        step=step,
        tenant=tenant,
        **{"from": params["from"], "to": params["to"]},
    )


def keyed(rows: list[dict[str, Any]], params: dict[str, Any]) -> dict[tuple[Any, ...], Any]:
    keys = ["timestamp", *params.get("dimensions", [])]
    return {
        tuple(row[k] for k in keys): {m: pytest.approx(row[m]) for m in params["metrics"]}
        for row in rows
    }


CASES = [
    {"metrics": ["http", "p2p"], "interval": "1m"},
    {"metrics": list(METRIC_NAMES), "interval": "5m", "dimensions": ["country.code"]},
    {
        "metrics": ["played", "sessions"],
        "interval": "10m",
        "dimensions": ["browser.name", "os.name"],
        "filters": json.dumps({"country.code": ["US", "DE"], "os.name": "Android"}),
    },
    {"metrics": ["rebuffered", "http"], "interval": "1h", "dimensions": ["isp.name"]},
    {"metrics": ["sessions"], "interval": "3h", "dimensions": ["city.name", "session.page"]},
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['interval']}-{c.get('dimensions')}")
def test_metrics_equal_duckdb_sums(api: Api, lake: Lake, case: dict[str, Any]) -> None:
    step = METRIC_INTERVALS[case["interval"]] * 1000
    params = {**case, "from": FROM - FROM % step, "to": TO + (-TO) % step}
    if case["interval"] == "1m":  # seed 001: at most 6 hours at 1m
        params["from"], params["to"] = FROM + 600_000, TO - 600_000
    with api.client("acme") as acme:
        answer = acme.get("/v1/metrics", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    MetricsAnswer.model_validate(body)
    assert body["error"] is False
    rows = body["data"]
    columns = ["timestamp", *case.get("dimensions", []), *case["metrics"]]
    assert all(list(row) == columns for row in rows)
    if "filters" in case:
        case = {
            **case,
            "filters": json.dumps({"country.code": ["US", "DE"], "os.name": ["Android"]}),
        }
    truth = expected(lake, "acme", {**case, **{k: params[k] for k in ("from", "to")}})
    assert truth and keyed(rows, case) == keyed(truth, case)
    # Ordered by timestamp; every timestamp an interval start within the range.
    stamps = [row["timestamp"] for row in rows]
    assert stamps == sorted(stamps)
    assert all(s % step == 0 and params["from"] <= s < params["to"] for s in stamps)


def test_csv_is_the_json_answer_as_a_download(api: Api) -> None:
    params = {
        "metrics": "http,p2p,sessions",
        "interval": "1h",
        "dimensions": ["country.code", "browser.name"],
        "from": FROM,
        "to": TO,
    }
    with api.client("acme") as acme:
        as_json = acme.get("/v1/metrics", params=params).json()["data"]
        answer = acme.get("/v1/metrics", params={**params, "format": "csv"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == 'attachment; filename="metrics.csv"'
    header = answer.text.splitlines()[0]
    assert header == '"timestamp","country.code","browser.name","http","p2p","sessions"'
    parsed = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(parsed) == len(as_json) > 0
    for got, want in zip(parsed, as_json, strict=True):
        assert int(got["timestamp"]) == want["timestamp"]
        assert got["country.code"] == (want["country.code"] or "")
        assert got["browser.name"] == (want["browser.name"] or "")
        assert (int(got["http"]), int(got["p2p"])) == (want["http"], want["p2p"])
        assert float(got["sessions"]) == pytest.approx(want["sessions"])


def test_only_the_callers_rows_count(api: Api, lake: Lake) -> None:
    midnight = FROM - FROM % DAY_MS
    params = {"metrics": ["http", "sessions"], "interval": "1d", "from": midnight}
    params["to"] = midnight + 2 * DAY_MS
    answers = {}
    for tenant in ("acme", "globex", "initech"):
        with api.client(tenant) as client:
            answers[tenant] = client.get("/v1/metrics", params=params).json()["data"]
    for tenant in ("acme", "globex"):
        truth = expected(lake, tenant, params)
        assert keyed(answers[tenant], params) == keyed(truth, params)
    assert answers["acme"] != answers["globex"]
    assert answers["initech"] == []
    with api.client("initech") as initech:
        empty = initech.get("/v1/metrics", params={**params, "format": "csv"})
    assert empty.text == '"timestamp","http","sessions"\n'


def test_an_hour_the_lake_does_not_hold_has_no_rows(api: Api) -> None:
    later = TO + 3_600_000
    params = {"metrics": "http", "interval": "1h", "from": later, "to": later + 3_600_000}
    with api.client("acme") as acme:
        assert acme.get("/v1/metrics", params=params).json() == {"error": False, "data": []}


OK = {"metrics": "http", "interval": "1m", "from": FROM, "to": FROM + 3_600_000}
BAD = [
    (
        {"metrics": "bits"},
        "metrics",
        "unknown metric 'bits' (choose " + ", ".join(METRIC_NAMES) + ")",
    ),
    ({"metrics": "http,http"}, "metrics", "metrics must not repeat a value"),
    ({"interval": "2m"}, "interval", "interval '2m' is not one of " + ", ".join(METRIC_INTERVALS)),
    (
        {"dimensions": "country.code,browser.name,os.name"},
        "dimensions",
        "at most 2 dimensions, got 3",
    ),
    (
        {"dimensions": "device"},
        "dimensions",
        "unknown dimension 'device' (choose " + ", ".join(DIMENSIONS) + ")",
    ),
    ({"from": FROM + 1}, "from", "from must be aligned to the 1m interval"),
    ({"to": FROM}, "to", "to must be after from"),
    (
        # A Monday: 7d intervals start on Thursdays (issue 20: say why).
        {"interval": "7d", "from": 1_791_158_400_000, "to": 1_792_022_400_000},
        "from",
        "from must be aligned to the 7d interval: 7d intervals start every 7 days from "
        "Thursday 1970-01-01 00:00 UTC (seed 001 rounds timestamps to the interval), so on a "
        "Thursday; the nearest are 2026-10-01 and 2026-10-08, 2026-10-05 is a Monday",
    ),
    ({"to": FROM + 7 * 3_600_000}, "to", "interval 1m allows a range of at most 6 hours"),
    (
        {"from": FROM - 8 * DAY_MS, "to": FROM - 8 * DAY_MS + 60_000},
        "from",
        "interval 1m allows ranges within the last 7 days only",
    ),
    (
        {"interval": "10m", "to": FROM + 8 * DAY_MS},
        "to",
        "interval 10m allows a range of at most 7 days",
    ),
    (
        {"interval": "1h", "from": FROM - 15 * DAY_MS},
        "from",
        "interval 1h allows ranges within the last 14 days only",
    ),
    (
        {
            "interval": "1d",
            "from": FROM - FROM % DAY_MS + 3_600_000,
            "to": FROM - FROM % DAY_MS + DAY_MS,
        },
        "from",
        "from must be aligned to the 1d interval",
    ),
    (
        {"from": -60_000},
        "from",
        "from must be epoch milliseconds from 0 (1970) up to 4133980800000 (2101)",
    ),
    (
        {"from": "yesterday"},
        "from",
        "from: Input should be a valid integer, unable to parse string as an integer",
    ),
    ({"format": "xml"}, "format", "format: Input should be 'json' or 'csv'"),
    (
        {"filters": "country=US"},
        "filters",
        "filters must be a JSON object of dimension to "
        'values, like {"country.code": ["US"]}, not \'country=US\'',
    ),
    (
        {"filters": '{"device": ["tv"]}'},
        "filters",
        "cannot filter metrics on 'device' (filterable: " + ", ".join(DIMENSIONS) + ")",
    ),
    ({"filters": '{"os.name": [1]}'}, "filters", "filters[os.name] must be a list of strings"),
    ({"metrics": None}, "metrics", "metrics: Field required"),
]


@pytest.mark.parametrize(("change", "parameter", "message"), BAD, ids=[b[2][:40] for b in BAD])
def test_each_bad_parameter_is_a_422_naming_it(
    api_server: Api, change: dict[str, Any], parameter: str, message: str
) -> None:
    params = {k: v for k, v in {**OK, **change}.items() if v is not None}
    with api_server.client("acme") as acme:
        answer = acme.get("/v1/metrics", params=params)
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["errors"]
    assert error["source"] == {"parameter": parameter}
    assert error["detail"] == message
    assert error["status"] == "422"


def test_every_problem_is_reported_at_once(api_server: Api) -> None:
    params = {**OK, "metrics": "bits", "dimensions": "a,b,c", "to": FROM + 7 * 3_600_000}
    with api_server.client("acme") as acme:
        errors = acme.get("/v1/metrics", params=params).json()["errors"]
    assert [e["source"]["parameter"] for e in errors] == [
        "metrics",
        "dimensions",
        "dimensions",
        "dimensions",
        "dimensions",
        "to",
    ]
    assert errors[-1]["code"] == "invalid_range"


def test_the_answer_model_is_in_openapi(api_server: Api) -> None:
    with httpx.Client(base_url=api_server.url) as anonymous:
        schema = anonymous.get("/openapi.json").json()
    operation = schema["paths"]["/v1/metrics"]["get"]
    content = operation["responses"]["200"]["content"]
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/MetricsAnswer"}
    assert "text/csv" in content
    names = {p["name"] for p in operation["parameters"]}
    assert {"metrics", "from", "to", "interval", "dimensions", "filters", "format"} <= names
    row = schema["components"]["schemas"]["MetricsRow"]["properties"]
    assert set(row) == {"timestamp", *DIMENSIONS, *METRIC_NAMES}


def test_no_key_is_401(api_server: Api, tmp_path: Path) -> None:
    with api_server.client() as anonymous:
        assert anonymous.get("/v1/metrics", params=OK).status_code == 401
