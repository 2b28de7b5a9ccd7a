"""The export definitions file: every validation rule with its exact message, all errors
reported at once, the repository's own exports.yaml, and the data set registry the
definition models are chosen by (no server involved)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.exports.catalog import ALL_DATASET_KEYS, DATASETS
from exporter_pipeline.exports.definition import ExportFields
from exporter_pipeline.exports.formats import FILE_FORMATS
from exporter_pipeline.exports.spec import (
    load_definitions_file,
    parse_definitions,
    validate_export,
)
from exporter_pipeline.exports.validation import AnyExport

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
FILE = Path("defs.yaml")
REPO = Path(__file__).resolve().parents[2]


def base(**overrides: Any) -> dict[str, Any]:
    export = {
        "name": "acme_x",
        "tenant": "acme",
        "dataset": "raw",
        "format": "csv",
        "cadence": "daily",
        "start": "2026-11-01",
        "output": {"name": "local", "path": "x"},
    }
    export.update(overrides)
    return {k: v for k, v in export.items() if v is not None}


def errors_of(*exports: dict[str, Any], outputs: dict[str, Any] | None = None) -> list[str]:
    document = {
        "outputs": outputs or {"local": {"type": "local", "path": "/tmp/x"}},
        "exports": list(exports),
    }
    with pytest.raises(DefinitionError) as raised:
        parse_definitions(document, FILE, now=NOW)
    return str(raised.value).splitlines()


def one_error(**overrides: Any) -> str:
    errors = errors_of(base(**overrides))
    assert len(errors) == 1, errors
    return errors[0]


P = "defs.yaml: export 'acme_x' (/exports/0"

RULES = [
    # seed 000's own example: end before start
    (
        dict(start="2026-11-10", end="2026-11-01"),
        f"{P}/end): end 2026-11-01 00:00 is before start 2026-11-10 00:00",
    ),
    (
        dict(start="2026-09-01", end="2026-10-15"),
        f"{P}/end): a bounded export covers at most 30 days; this one covers 45",
    ),
    (
        dict(name="Acme-X"),
        "defs.yaml: export 'Acme-X' (/exports/0/name): name may contain only lowercase "
        "letters, digits, '_' and '-' (not 'A', 'X')",
    ),
    (dict(tenant=""), f"{P}/tenant): tenant must not be empty"),
    (
        dict(dataset="logs"),
        f"{P}/dataset): Input should be 'raw', 'events', 'quality', 'ads', "
        "'metrics', 'views', 'viewers' or 'query'",
    ),
    (dict(format="xml"), f"{P}/format): format 'xml' is not one of csv, parquet, jsonl (ndjson)"),
    (
        dict(compression="snappy"),
        f"{P}/compression): compression 'snappy' is not available for csv (choose gzip, zstd)",
    ),
    (
        dict(columns=["event_time", "bogus"]),
        f"{P}/columns): unknown column 'bogus' for dataset raw",
    ),
    (dict(columns=[]), f"{P}/columns): columns must name at least one column"),
    (dict(columns=["event_id", "event_id"]), f"{P}/columns): columns must not repeat"),
    (
        dict(filters={"data": ["x"]}),
        f"{P}/filters): cannot filter raw on 'data' (filterable: "
        "event_id, license_key, event_type, user_id, session_id, device_id, content_id, "
        "content_type, device_type, browser, os, country, city, isp, page, http_bytes, p2p_bytes, "
        "played_ms, rebuffered_ms, position_s, bitrate_kbps)",
    ),
    (dict(cadence="monthly"), f"{P}/cadence): Input should be 'hourly', 'daily' or 'weekly'"),
    (dict(start="2026-11-01T05:00:00Z"), f"{P}/start): a daily export starts at midnight UTC"),
    (
        dict(output={"name": "nowhere"}),
        f"{P}/output/name): unknown output 'nowhere' (outputs: local)",
    ),
    (
        dict(output={"name": "local", "path": "../up"}),
        f"{P}/output/path): path must not contain '.' or '..' segments",
    ),
    (dict(interval="1h"), f"{P}/interval): interval does not apply to dataset raw"),
    (dict(query="select 1"), f"{P}/query): query does not apply to dataset raw"),
    (dict(unknown_key=1), f"{P}/unknown_key): unknown field 'unknown_key'"),
    (dict(tenant=None), f"{P}/tenant): field 'tenant' is required"),
    (dict(schedule={"hour": 25}), f"{P}/schedule/hour): Input should be less than or equal to 23"),
    (
        dict(schedule={"timezone": "Mars/Olympus"}),
        f"{P}/schedule/timezone): unknown time zone 'Mars/Olympus' (use an IANA name like "
        "Europe/Berlin)",
    ),
    (
        dict(schedule={"day_of_week": "monday"}),
        f"{P}/schedule): day_of_week applies to weekly cadence only",
    ),
    (
        dict(cadence="weekly", schedule={"hour": 3}),
        f"{P}/schedule): a weekly schedule needs day_of_week",
    ),
    (
        dict(delivery={"email": ["not-an-address"]}),
        f"{P}/delivery/email): 'not-an-address' is not an email address",
    ),
    (
        dict(delivery={"email": [f"a{i}@example.com" for i in range(21)]}),
        f"{P}/delivery/email): email lists 21 addresses; a delivery mails at most 20 "
        "(use a mailing list's address for more)",
    ),
    (
        dict(delivery={"webhook": {"url": "ftp://x", "secret_env": "S"}}),
        f"{P}/delivery/webhook/url): String should match pattern '^https?://'",
    ),
    (
        dict(delivery={"webhook": {"url": "https://h.example/"}}),
        f"{P}/delivery/webhook/secret_env): field 'secret_env' is required (or "
        "secret_stored: true, when the definitions store holds the webhook's secret)",
    ),
    (
        dict(
            delivery={
                "webhook": {"url": "https://h.example/", "secret_env": "S", "secret_stored": True}
            }
        ),
        f"{P}/delivery/webhook/secret_stored): a webhook takes secret_env or "
        "secret_stored: true, not both",
    ),
    (dict(max_file_bytes=0), f"{P}/max_file_bytes): Input should be greater than 0"),
    (
        dict(dataset="views", content_type="vod"),
        f"{P}/content_type): Input should be 'live' or 'recorded'",
    ),
    (
        dict(dataset="views", columns=["view_id", "event_time"]),
        f"{P}/columns): unknown column 'event_time' for dataset views",
    ),
    (
        dict(dataset="metrics", metrics=["http"], interval="1h", columns=["x"]),
        f"{P}/columns): dataset metrics has a fixed shape; columns does not apply",
    ),
    (
        dict(dataset="query", query="select * from events", format="csv"),
        f"{P}/format): a query export writes NDJSON: set format: jsonl",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), RULES)
def test_rule_has_its_exact_message(overrides: dict[str, Any], message: str) -> None:
    assert one_error(**overrides) == message


def metrics(**overrides: Any) -> dict[str, Any]:
    return base(
        **{"dataset": "metrics", "metrics": ["http", "sessions"], "interval": "1h", **overrides}
    )


METRIC_RULES = [
    (
        dict(metrics=["http", "bits"]),
        f"{P}/metrics): unknown metric 'bits' (choose http, p2p, played, rebuffered, sessions)",
    ),
    (
        dict(metrics=[]),
        f"{P}/metrics): metrics must list some of http, p2p, played, rebuffered, sessions",
    ),
    (
        dict(interval="2m"),
        f"{P}/interval): interval '2m' is not one of 1m, 5m, 10m, 30m, 1h, 3h, 12h, 1d, 7d, 14d",
    ),
    (dict(interval="7d"), f"{P}/interval): interval 7d does not divide a daily window"),
    (
        dict(dimensions=["country.code", "browser.name", "os.name"]),
        f"{P}/dimensions): at most 2 dimensions, got 3",
    ),
    (
        dict(dimensions=["planet"]),
        f"{P}/dimensions): unknown dimension 'planet' (choose "
        "browser.name, country.code, city.name, isp.name, os.name, "
        "session.page)",
    ),
    (
        dict(filters={"country": ["US"]}),
        f"{P}/filters): cannot filter metrics on 'country' "
        "(filterable: browser.name, country.code, city.name, isp.name, os.name, session.page)",
    ),
    # seed 001 range limits, for bounded (on-demand) requests only
    (
        dict(
            interval="1m",
            cadence="hourly",
            start="2026-11-23T00:00:00Z",
            end="2026-11-23T06:00:00Z",
        ),
        f"{P}/end): interval 1m allows a range of at most 6 hours",
    ),
    (
        dict(
            interval="5m",
            cadence="hourly",
            start="2026-11-10T00:00:00Z",
            end="2026-11-10T01:00:00Z",
        ),
        f"{P}/start): interval 5m allows ranges within the last 7 days only",
    ),
    (
        dict(interval="30m", start="2026-11-14", end="2026-11-21"),
        f"{P}/end): interval 30m allows a range of at most 7 days",
    ),
    (
        dict(interval="1h", start="2026-11-01", end="2026-11-02"),
        f"{P}/start): interval 1h allows ranges within the last 14 days only",
    ),
    (
        dict(interval="3h", cadence="hourly", start="2026-11-20T01:00:00Z"),
        f"{P}/start): start must be aligned to the 3h interval",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), METRIC_RULES)
def test_metric_rule_has_its_exact_message(overrides: dict[str, Any], message: str) -> None:
    errors = errors_of(metrics(**overrides))
    assert message in errors, errors


def test_metric_limits_pass_inside_the_window() -> None:
    document = {
        "outputs": {"local": {"type": "local", "path": "/x"}},
        "exports": [
            metrics(
                interval="1m",
                cadence="hourly",
                start="2026-11-23T00:00:00Z",
                end="2026-11-23T04:00:00Z",
            ),
            metrics(name="b", interval="1d", start="2025-01-01", end="2025-01-30"),
            metrics(name="c", interval="1h", start="2025-01-01"),  # unbounded: no seed-001 limit
        ],
    }
    parsed = parse_definitions(document, FILE, now=NOW)
    assert [e.name for e in parsed.exports] == ["acme_x", "b", "c"]


QUERY_RULES = [
    (
        "select * from read_parquet('/etc/passwd')",
        "the query may read only the tables events, view_segments, delivery_metrics",
    ),
    (
        "SELECT * FROM Read_CSV ('x.csv')",
        "the query may read only the tables events, view_segments, delivery_metrics",
    ),
    (
        "select * from \"read_parquet\" ('/lake/x.parquet')",
        "the query may read only the tables events, view_segments, delivery_metrics",
    ),
    (
        "select * from read_ndjson/* hidden */('x')",
        "the query may read only the tables events, view_segments, delivery_metrics",
    ),
    ("select 1; select 2", "the query must be a single statement"),
    ("delete from events", "the query must be a single SELECT (or WITH … SELECT), nothing else"),
    (
        "with x as (select 1) insert into events select * from x",
        "the query must be a single SELECT (or WITH … SELECT), nothing else",
    ),
    ("   ", "a query export needs query: a SQL SELECT"),
]


@pytest.mark.parametrize(("sql", "message"), QUERY_RULES)
def test_query_rules(sql: str, message: str) -> None:
    assert one_error(dataset="query", format="jsonl", query=sql) == f"{P}/query): {message}"


def test_a_query_export_without_format_writes_json_lines() -> None:
    # Seed 004: query results are JSON Lines; `format` need not be said (None drops it).
    document = {
        "outputs": {"local": {"type": "local", "path": "/x"}},
        "exports": [base(dataset="query", format=None, query="select count(*) as n from events")],
    }
    [export] = parse_definitions(document, FILE, now=NOW).exports
    assert (export.dataset, export.format) == ("query", "jsonl")


def test_query_text_in_strings_is_not_mistaken_for_code() -> None:
    document = {
        "outputs": {"local": {"type": "local", "path": "/x"}},
        "exports": [
            base(
                dataset="query",
                format="jsonl",
                query="select * from events where page = 'read_csv(; delete'",
            )
        ],
    }
    assert parse_definitions(document, FILE, now=NOW).exports[0].dataset == "query"


def test_every_error_of_the_file_is_listed_at_once() -> None:
    errors = errors_of(
        base(start="2026-11-10", end="2026-11-01", format="xml"),
        base(name="acme_m", dataset="metrics", metrics=["http"]),
        "not a mapping",  # type: ignore[arg-type]
        outputs={"local": {"type": "local", "path": "/x"}, "s3": {"type": "s3"}},
    )
    assert errors == [
        "defs.yaml: output 's3' (/outputs/s3/bucket): field 'bucket' is required",
        f"{P}/format): format 'xml' is not one of csv, parquet, jsonl (ndjson)",
        "defs.yaml: export 'acme_m' (/exports/1/interval): metrics need an interval",
        "defs.yaml: export #2 (/exports/2): must be a mapping",
    ]


def test_duplicate_names_are_named() -> None:
    errors = errors_of(base(), base())
    assert errors == [
        "defs.yaml: export 'acme_x' (/exports/1/name): name 'acme_x' is already used by /exports/0"
    ]


def test_repository_exports_file_is_valid_and_covers_every_dataset() -> None:
    parsed = load_definitions_file(REPO / "exports.yaml", now=NOW)
    assert {e.dataset for e in parsed.exports} == set(DATASETS)
    raw = yaml.safe_load((REPO / "exports.yaml").read_text())
    assert len(raw["exports"]) == len(parsed.exports)


@pytest.mark.parametrize("name", DATASETS)
def test_each_dataset_is_validated_by_its_own_model(name: str) -> None:
    dataset = DATASETS[name]
    body = base(dataset=name, start="2026-11-20", end="2026-11-20")
    body |= {"metrics": ["http"], "interval": "1h"} if "interval" in dataset.keys else {}
    body |= {"query": "select 1 from events", "format": "jsonl"} if "query" in dataset.keys else {}
    export = validate_export(body, {"now": NOW})
    assert type(export) is dataset.model
    assert export.dataset == name
    # Its own keys exist on its model only; every other data set's key is not there.
    others = set(ALL_DATASET_KEYS) - set(dataset.keys)
    assert not others & set(dataset.model.model_fields)


@pytest.mark.parametrize("name", DATASETS)
def test_each_dataset_declares_what_it_reads_and_writes(name: str) -> None:
    dataset = DATASETS[name]
    assert dataset.name == name
    assert dataset.sources
    assert dataset.shape in ("rows", "aggregate")
    assert set(dataset.keys).isdisjoint(ExportFields.model_fields)


def test_any_export_knows_every_key_so_a_misplaced_key_is_named() -> None:
    assert set(ALL_DATASET_KEYS) <= set(AnyExport.model_fields)
    assert one_error(interval="1h") == f"{P}/interval): interval does not apply to dataset raw"


def test_every_format_has_its_writer() -> None:
    for name, spec in FILE_FORMATS.items():
        assert spec.name == name
        assert callable(spec.writer)


def test_on_demand_config_is_derived_from_the_definition_model() -> None:
    from exporter_pipeline.defs.on_demand import NOT_REQUESTED, OnDemandExportConfig

    config_keys = set(OnDemandExportConfig.model_fields)
    request_keys = {"name", "tenant", "start_time", "end_time", "dataset", "output", "path"}
    assert config_keys == request_keys | (set(AnyExport.model_fields) - NOT_REQUESTED)


@pytest.mark.parametrize(
    ("request_keys", "outcome"),
    [
        ({"dataset": "query", "query": "select 1 as n"}, "jsonl"),
        ({}, "csv"),
        ({"format": "csv"}, "csv"),
        ({"format": "parquet"}, "parquet"),
        (
            {"dataset": "query", "query": "select 1 as n", "format": "csv"},
            "export task 'on_demand' (/format): a query export writes NDJSON: set format: jsonl",
        ),
    ],
)
def test_on_demand_format_defaults_per_data_set(request_keys: dict[str, str], outcome: str) -> None:
    from exporter_pipeline.defs.on_demand import OnDemandExportConfig, request_to_definition

    config = OnDemandExportConfig(
        tenant="acme",
        start_time="2026-11-20T00:00:00Z",
        end_time="2026-11-20T01:00:00Z",
        output="local",
        **request_keys,
    )
    try:
        assert request_to_definition(config)[0].format == outcome
    except DefinitionError as error:
        assert str(error) == outcome


def test_on_demand_end_before_start_is_refused_in_the_requests_words() -> None:
    from exporter_pipeline.defs.on_demand import OnDemandExportConfig, request_to_definition

    config = OnDemandExportConfig(
        tenant="acme",
        start_time="2026-11-20T02:00:00Z",
        end_time="2026-11-20T01:00:00Z",
        output="local",
    )
    with pytest.raises(DefinitionError) as raised:
        request_to_definition(config)
    assert str(raised.value) == (
        "export task 'on_demand' (/end_time): end_time 2026-11-20 01:00 "
        "is before start_time 2026-11-20 02:00"
    )
