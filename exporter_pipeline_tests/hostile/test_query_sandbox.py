"""Hostile SQL exports: a tenant's query tries files, URLs, other tenants, DDL, settings,
comment and quoting tricks, recursion, cross joins and huge series.

A random marker is written to a secrets file on disk and into another tenant's (globex)
landing records, which are ingested into the real lake the exports read. Each query is
refused by `validate` with its exact message, or runs and fails with its exact error (an
error file, no data file, no manifest), or runs and returns only acme's rows; the
marker never appears in an exception, an error file, an output file, a failure webhook
body, or a Dagster run's event log and metadata. The caps are exercised on the real
DuckDB child process while another tenant's export runs at the same time.
"""

from __future__ import annotations

import json
import secrets
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import psutil
import pytest
import yaml

from exporter_pipeline.delivery.notices import failed_notice
from exporter_pipeline.derived.delivery_metrics import delivery_metrics
from exporter_pipeline.derived.view_segments import view_segments
from exporter_pipeline.destinations import Destination, destination_from_url
from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.events.ingest import ingest_hour
from exporter_pipeline.events.simulate import simulate
from exporter_pipeline.exports import query_worker
from exporter_pipeline.exports.execution import ExportFailed, export_window
from exporter_pipeline.exports.manifest import ErrorRecord
from exporter_pipeline.exports.naming import error_key, manifest_key
from exporter_pipeline.exports.query import (
    ONLY_TABLES,
    QueryLimits,
    QueryRejected,
    limit_message,
    run_query,
)
from exporter_pipeline.exports.spec import ExportDefinition, parse_definitions
from exporter_pipeline.lake import hourly_key, write_hourly

HOUR = datetime(2026, 10, 1, tzinfo=UTC)
START, END = HOUR, HOUR + timedelta(hours=1)
NOW = datetime(2026, 10, 2, tzinfo=UTC)
SINGLE_SELECT = "the query must be a single SELECT (or WITH … SELECT), nothing else"


class Marked:
    """A lake of acme and globex, with a secret marker on disk and in globex's records."""

    def __init__(self, root: Path, events_per_hour: int = 400) -> None:
        self.marker = f"MARK{secrets.token_hex(12)}"
        self.root = root
        self.secret = root / "secret.env"
        self.secret.write_text(f"event_id,value\nSECRET_TOKEN,{self.marker}\n")
        self.landing = root / "landing"
        simulate(self.landing, ["acme", "globex"], START, END, events_per_hour, seed=5)
        folder = self.landing / f"dt={HOUR:%Y-%m-%d}" / f"hour={HOUR:%H}"
        self.globex_file = folder / "globex-private.jsonl"
        self.globex_file.write_text(
            "\n".join(
                json.dumps(
                    {
                        "event_id": f"globex-{self.marker}-{n}",
                        "tenant": "globex",
                        "event_time": f"{HOUR:%Y-%m-%dT%H}:{n:02d}:00Z",
                        "event_type": "impression",
                        "user_id": self.marker,
                        "page": self.marker,
                        "content_id": "c1",
                        "data": {"note": self.marker},
                    }
                )
                for n in range(20)
            )
            + "\n"
        )
        self.store = destination_from_url(str(root / "lake"))
        ingest_hour(HOUR, destination_from_url(str(self.landing)), self.store)
        self.lake_file = root / "lake" / hourly_key("raw_events", HOUR)
        raw = pl.scan_parquet(self.lake_file)
        assert raw.filter(pl.col("user_id") == self.marker).select(pl.len()).collect().item() == 20
        for name, transform in (
            ("view_segments", view_segments),
            ("delivery_metrics", delivery_metrics),
        ):
            work = root / f"work-{name}"
            work.mkdir()
            write_hourly(self.store, name, HOUR, transform(raw), work)

    def paths(self) -> dict[str, str]:
        return {
            "secret": str(self.secret),
            "landing": str(self.globex_file),
            "lake": str(self.lake_file),
            "folder": str(self.root),
        }


@pytest.fixture(scope="module")
def marked(tmp_path_factory: pytest.TempPathFactory) -> Marked:
    return Marked(tmp_path_factory.mktemp("marked"))


def query_export(
    sql: str, name: str = "hostile", tenant: str = "acme", **fields: Any
) -> ExportDefinition:
    body = {
        "name": name,
        "tenant": tenant,
        "dataset": "query",
        "format": "jsonl",
        "cadence": "hourly",
        "start": "2026-10-01T00:00:00Z",
        "output": {"name": "out", "path": name},
        "query": sql,
        **fields,
    }
    document = {"outputs": {"out": {"type": "local", "path": "/unused"}}, "exports": [body]}
    return parse_definitions(document, Path("hostile.yaml"), now=NOW).exports[0]


# Queries `validate` refuses: (sql with {secret} {landing} {lake} {folder}, message).
REFUSED = [
    # The review's escape: an apostrophe inside a comment hid the code after it.
    (
        "SELECT * FROM events /* it's */ JOIN read_csv('{secret}', skip_rows => 3) USING(event_id)",
        ONLY_TABLES,
    ),
    ("select * from read_csv('{secret}')", ONLY_TABLES),
    ("select * from read_csv_auto('{secret}', header = true)", ONLY_TABLES),
    ("select * from '{secret}'", ONLY_TABLES),
    ('select * from "{secret}"', ONLY_TABLES),
    ("select * from read_text('{secret}')", ONLY_TABLES),
    ("select * from read_blob('{secret}')", ONLY_TABLES),
    ("select * from glob('{folder}/*')", ONLY_TABLES),
    ("select * from read_json_auto('{landing}')", ONLY_TABLES),
    ("select * from read_ndjson_objects('{landing}')", ONLY_TABLES),
    ("select * from read_parquet('{lake}')", ONLY_TABLES),
    ("select * from parquet_scan('{lake}')", ONLY_TABLES),
    ("select * from '{lake}' where tenant = 'globex'", ONLY_TABLES),
    ("select * from read_csv('http://127.0.0.1:9/secret.csv')", ONLY_TABLES),
    ("select * from 's3://bucket/secret.csv'", ONLY_TABLES),
    ("select * from \"read_csv\" ('{secret}')", ONLY_TABLES),
    ("select * from READ_CSV/* x */('{secret}')", ONLY_TABLES),
    ("select 'it''s', * from read_csv('{secret}')", ONLY_TABLES),
    ("select $$it's$$, * from read_csv('{secret}')", ONLY_TABLES),
    ("select * from events -- it's\n join read_csv('{secret}') using (event_id)", ONLY_TABLES),
    ("select * from events union all select * from read_csv('{secret}')", ONLY_TABLES),
    ("with t as (select * from read_csv('{secret}')) select * from t", ONLY_TABLES),
    (
        "select * from events where event_id in (select event_id from read_csv('{secret}'))",
        ONLY_TABLES,
    ),
    ("select * from events, lateral (select * from read_csv('{secret}'))", ONLY_TABLES),
    ("select * from query('select * from read_csv(''{secret}'')')", ONLY_TABLES),
    ("select * from query_table('events')", ONLY_TABLES),
    ("select * from generate_series(1, 1000000000000)", ONLY_TABLES),
    ("select * from range(1000000000000)", ONLY_TABLES),
    ("select * from duckdb_settings()", ONLY_TABLES),
    ("select * from duckdb_databases()", ONLY_TABLES),
    ("select * from information_schema.tables", ONLY_TABLES),
    ("select * from pg_catalog.pg_class", ONLY_TABLES),
    ("select * from other_db.main.events", ONLY_TABLES),
    ("select * from globex_events", ONLY_TABLES),
    ("summarize events", ONLY_TABLES),
    ("describe events", ONLY_TABLES),
    ("show tables", ONLY_TABLES),
    ("select current_setting('temp_directory')", "the query may not call current_setting()"),
    ("select getenv('HOME')", "the query may not call getenv()"),
    ("select getvariable('x')", "the query may not call getvariable()"),
    ("select current_database()", "the query may not call current_database()"),
    ("attach '{secret}' as s", SINGLE_SELECT),
    ("copy events to '{folder}/stolen.csv'", SINGLE_SELECT),
    ("copy (select 1) to 'http://127.0.0.1:9/x'", SINGLE_SELECT),
    ("install httpfs", SINGLE_SELECT),
    ("load httpfs", SINGLE_SELECT),
    ("set enable_external_access = true", SINGLE_SELECT),
    ("pragma database_list", SINGLE_SELECT),
    ("create table stolen as select 1", SINGLE_SELECT),
    ("drop table events", SINGLE_SELECT),
    ("delete from events", SINGLE_SELECT),
    ("insert into events select * from events", SINGLE_SELECT),
    ("explain select 1", SINGLE_SELECT),
    ("select 1; select * from read_csv('{secret}')", "the query must be a single statement"),
    ("select 1; select 2", "the query must be a single statement"),
    ("select * from", 'the query is not valid SQL: syntax error at or near "from"'),
    ("-- only a comment", "the query is empty"),
]


@pytest.mark.parametrize(("sql", "message"), REFUSED, ids=[f"{n:02d}" for n in range(len(REFUSED))])
def test_validate_refuses_with_its_exact_message(
    sql: str, message: str, marked: Marked, tmp_path: Path
) -> None:
    query = sql.format(**marked.paths())
    with pytest.raises(DefinitionError) as caught:
        query_export(query)
    assert str(caught.value) == f"hostile.yaml: export 'hostile' (/exports/0/query): {message}"
    # The run refuses it the same way, before any engine starts.
    with pytest.raises(QueryRejected) as refused:
        run_query(query, {}, tmp_path / "work", QueryLimits())
    assert str(refused.value) == message
    assert not (tmp_path / "work" / "worker.log").exists()
    assert marked.marker not in str(caught.value) + str(refused.value)


def test_the_engine_refuses_files_even_when_the_parser_check_is_bypassed(
    marked: Marked, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Layer two alone: DuckDB with external access off and its configuration locked."""
    monkeypatch.setattr("exporter_pipeline.exports.query.check_query", lambda sql: None)
    table = tmp_path / "events.parquet"
    pl.DataFrame({"event_id": ["a"]}).write_parquet(table)
    paths = marked.paths()
    for sql in (
        f"select * from read_csv('{paths['secret']}')",
        f"select * from '{paths['lake']}'",
        f"select * from read_text('{paths['secret']}')",
        f"select * from glob('{paths['folder']}/*')",
        "select * from read_csv('http://127.0.0.1:9/x.csv')",
    ):
        answer = query_worker.run(
            {
                "sql": sql,
                "tables": {"events": str(table)},
                "result": str(tmp_path / "result.parquet"),
                "temp_directory": str(tmp_path / "spill"),
                "memory_mb": 256,
                "temp_mb": 100,
                "max_rows": 10,
            }
        )
        assert answer == {"rejected": ONLY_TABLES}, sql
    for sql in ("set enable_external_access = true", "attach ':memory:' as other"):
        answer = query_worker.run(
            {
                "sql": f"select 1; {sql}",
                "tables": {"events": str(table)},
                "result": str(tmp_path / "result.parquet"),
                "temp_directory": str(tmp_path / "spill"),
                "memory_mb": 256,
                "temp_mb": 100,
                "max_rows": 10,
            }
        )
        assert answer == {
            "rejected": "the query must be a single SELECT (or WITH … SELECT), nothing else"
        }, sql


def outputs_text(root: Path) -> str:
    return "\n".join(
        p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file()
    )


def run_export(
    export: ExportDefinition, marked: Marked, out: Destination, run_id: str = "r1"
) -> tuple[Any, BaseException | None]:
    try:
        return export_window(export, START, END, marked.store, out, run_id), None
    except ExportFailed as error:
        return None, error


# Queries that run: (sql, expected rows or the exact error after "failed: ").
RUNS = [
    ("select count(*) as n from events where tenant = 'globex'", [{"n": 0}]),
    ("select count(*) as n from events where user_id like 'MARK%'", [{"n": 0}]),
    ("select count(distinct tenant) as tenants, min(tenant) as t from events", None),
    ("select * from events -- '; select * from read_csv('/etc/passwd')\nlimit 0", []),
    ("select 'read_csv(''x'')' as s", [{"s": "read_csv('x')"}]),
    (
        "select cast(page as integer) as p from events where page is not null",
        "the query failed: Conversion Error: Could not convert string",
    ),
    ("select nope from events", "the query failed: Binder Error: Referenced column"),
    (
        "select event_id, event_id from events",
        "the query returns the column 'event_id' more than once: "
        "name each column of the result once (… AS name)",
    ),
]


@pytest.mark.servers  # each query runs in the DuckDB child process
@pytest.mark.parametrize(("sql", "expected"), RUNS, ids=[f"{n:02d}" for n in range(len(RUNS))])
def test_queries_that_run_see_only_the_tenant(
    sql: str, expected: Any, marked: Marked, tmp_path: Path
) -> None:
    out = destination_from_url(str(tmp_path / "out"))
    result, error = run_export(query_export(sql), marked, out)
    if isinstance(expected, str):
        assert error is not None
        assert str(error).startswith(
            f"export hostile 2026-10-01T00:00:00Z to 2026-10-01T01:00:00Z failed: {expected}"
        )
        record = json.loads(out.get_bytes(error_key("hostile", START, END)))
        assert record["error"].startswith(expected)
        assert not out.list("hostile/2026") and not out.exists(manifest_key("hostile", START, END))
        key = error_key("hostile", START, END)
        notice = failed_notice(ErrorRecord.model_validate(record), key, out)
        body = json.dumps(notice.body())
        assert marked.marker not in str(error) + body
    else:
        assert error is None, error
        rows = [json.loads(line) for line in out.get_bytes(result.files[0].key).splitlines()]
        if expected is None:
            assert rows == [{"tenants": 1, "t": "acme"}]
        else:
            assert rows == expected
    assert marked.marker not in outputs_text(tmp_path / "out")


def no_children_left() -> bool:
    deadline = time.monotonic() + 5
    while psutil.Process().children(recursive=True) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not psutil.Process().children(recursive=True)


CAPS = [
    # A recursion that never ends: only the time cap stops it.
    (
        "with recursive t(n) as (select 1 union all select n + 1 from t) select count(*) from t",
        {"timeout_s": 4},
        "timeout_s",
    ),
    # The review's huge series, as a scalar list (the table function is refused above).
    (
        "select max(x) as m from (select unnest(generate_series(1, 3000000000)) as x)",
        {"memory_mb": 300},
        "memory_mb",
    ),
    # A three-way cross join of the tenant's events: 400³ rows.
    (
        "select a.event_id, b.event_id as b, c.event_id as c from events a, events b, events c",
        {"max_rows": 100_000},
        "max_rows",
    ),
]


@pytest.mark.servers  # each query runs in the DuckDB child process
@pytest.mark.parametrize(("sql", "limits", "cap"), CAPS, ids=[c[2] for c in CAPS])
def test_caps_stop_the_query_while_another_tenant_exports(
    sql: str, limits: dict[str, Any], cap: str, marked: Marked, tmp_path: Path
) -> None:
    out = destination_from_url(str(tmp_path / "out"))
    hostile = query_export(sql, name=f"cap_{cap}", limits=limits)
    neighbour = query_export("select count(*) as n from events", name="neighbour", tenant="globex")
    answers: dict[str, Any] = {}

    def neighbour_run() -> None:
        time.sleep(0.5)  # starts while the hostile query is running
        answers["neighbour"] = run_export(neighbour, marked, out, "n1")

    thread = threading.Thread(target=neighbour_run)
    began = time.monotonic()
    thread.start()
    result, error = run_export(hostile, marked, out)
    took = time.monotonic() - began
    thread.join()

    effective = QueryLimits().lowered(**limits)
    assert result is None and error is not None
    assert str(error) == (
        f"export cap_{cap} 2026-10-01T00:00:00Z to 2026-10-01T01:00:00Z failed: "
        f"{limit_message(cap, effective)}"
    )
    assert took < effective.timeout_s + 30
    record = json.loads(out.get_bytes(error_key(f"cap_{cap}", START, END)))
    assert record["error"] == limit_message(cap, effective)
    assert record["files_published"] is False
    assert not out.list(f"cap_{cap}/2026") and not out.exists(
        manifest_key(f"cap_{cap}", START, END)
    )
    # The other tenant's export ran at the same time and is complete and correct.
    neighbour_result, neighbour_error = answers["neighbour"]
    assert neighbour_error is None
    globex_rows = (
        pl.scan_parquet(marked.lake_file)
        .filter(pl.col("tenant") == "globex")
        .select(pl.len())
        .collect()
        .item()
    )
    assert json.loads(out.get_bytes(neighbour_result.files[0].key)) == {"n": globex_rows}
    assert no_children_left()
    leftovers = list(Path(tempfile.gettempdir()).glob(f"export-cap_{cap}-*"))
    assert leftovers == []


@pytest.mark.servers  # a whole Dagster run, query in the DuckDB child
def test_a_dagster_run_of_a_hostile_query_records_no_marker(marked: Marked, tmp_path: Path) -> None:
    """Through the job: event log, metadata, run config and tags never hold the marker."""
    from exporter_pipeline.definitions import build_definitions
    from exporter_pipeline.settings import Settings

    out = tmp_path / "out"
    body = {
        "name": "probe",
        "tenant": "acme",
        "dataset": "query",
        "format": "jsonl",
        "cadence": "hourly",
        "start": "2026-10-01T00:00:00Z",
        "output": {"name": "out", "path": "probe"},
        "query": "select cast(user_id as integer) as u from events",
    }
    exports_file = tmp_path / "exports.yaml"
    exports_file.write_text(
        yaml.safe_dump({"outputs": {"out": {"type": "local", "path": str(out)}}, "exports": [body]})
    )
    settings = Settings.from_env(
        {
            "EXPORTER_LANDING_URL": str(marked.landing),
            "EXPORTER_LAKE_URL": str(marked.root / "lake"),
            "EXPORTER_EXPORTS_FILE": str(exports_file),
            "EXPORTER_PARTITIONS_START": "2026-09-01",
        }
    )
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("export_probe").execute_in_process(
        instance=instance, partition_key="2026-10-01-00:00", raise_on_error=False
    )
    assert not result.success
    logs = "\n".join(dg.serialize_value(e) for e in instance.all_logs(result.run_id))
    assert "the query failed: Conversion Error" in logs
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    recorded = logs + dg.serialize_value(run.run_config) + dg.serialize_value(run.tags)
    assert marked.marker not in recorded
    assert marked.marker not in outputs_text(out)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            OSError("No such file or directory: /root/.ssh/id_rsa (os error 2)"),
            "OSError: No such file or directory: <path> (os error 2)",
        ),
        (
            FileNotFoundError(2, "No such file", "/data/lake/raw_events/x.parquet"),
            "FileNotFoundError: [Errno 2] No such file: '<path>'",
        ),
        (ValueError("bad ratio 3/4 in a/b"), "ValueError: bad ratio 3/4 in a/b"),
    ],
)
def test_unexpected_errors_name_no_path_of_the_service(error: Exception, reason: str) -> None:
    from exporter_pipeline.exports.execution import _unexpected

    assert _unexpected(error) == reason
