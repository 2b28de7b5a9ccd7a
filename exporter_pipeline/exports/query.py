"""SQL exports (seed 004): one read-only SELECT over the tenant's own tables, sandboxed.

A query is a stranger's code, so it is held by three layers, each enough on its own
against reading a file, the network or another tenant's rows:

1. **The statement, parsed.** DuckDB's own parser (`json_serialize_sql`, which parses
   and executes nothing) turns the query into a syntax tree before anything runs. It
   must be one SELECT; every table it names must be one of `QUERY_TABLES` or a CTE of
   the query; table functions (`read_csv`, `glob`, `query`, `generate_series`, …) are
   refused, and so are the functions that show the server's settings or catalog. Text
   is never judged with literals blanked or comments stripped: what the engine would
   run is what is checked.
2. **The engine, locked.** The query runs in DuckDB over an in-memory database that
   holds only the tables loaded here: the tenant's rows of the window, cut by our own
   code before DuckDB sees them. Then external access is switched off and the
   configuration locked (no file, no URL, no ATTACH, no extension, no SET), with
   DuckDB's own memory, thread and temp-disk limits.
3. **The process, capped from outside.** DuckDB runs in a child process
   (`query_worker`) with no environment secrets, CPU-time and file-size rlimits, and a
   parent-death signal; this process watches its wall time, resident memory and
   temp folder, and kills it past a cap. A recursive CTE cannot outrun that.

DuckDB rather than polars SQL: polars opens a path named in a query while planning it
(before any plan check can run), and its errors quote what it read; DuckDB has a
parser that executes nothing, an off switch for external access that cannot be
switched back on, and limits of its own.

Error texts a tenant sees are our own, or the engine's parser, binder and conversion
messages, which can quote only the query and the tenant's own rows and columns.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
import psutil

from exporter_pipeline.errors import ExporterError

# Tables a query can name, and the lake data set each one comes from.
QUERY_TABLES: Final = {
    "events": "raw_events",
    "view_segments": "view_segments",
    "delivery_metrics": "delivery_metrics",
}
ONLY_TABLES: Final = "the query may read only the tables events, view_segments, delivery_metrics"
SINGLE_SELECT: Final = "the query must be a single SELECT (or WITH … SELECT), nothing else"

# Table references DuckDB's parser may produce that stay within the query's own tables.
_SAFE_TABLE_REFS: Final = {"BASE_TABLE", "SUBQUERY", "JOIN", "EXPRESSION_LIST", "EMPTY"}
# The kinds of query a statement may be.
_SELECT_NODES: Final = {"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"}
# Functions that show the server rather than the data: settings (paths), variables, the
# catalog, the session. External access is off anyway; these would still leak paths.
_REFUSED_FUNCTION_PREFIXES: Final = ("duckdb_", "pragma_", "pg_", "read_", "parquet_", "glob")
_REFUSED_FUNCTIONS: Final = frozenset(
    {
        "current_setting",
        "getenv",
        "getvariable",
        "query",
        "query_table",
        "current_database",
        "current_catalog",
        "current_schema",
        "current_schemas",
        "current_query",
        "current_user",
        "session_user",
        "user",
        "sniff_csv",
        "which_secret",
        "has_table_privilege",
        "has_schema_privilege",
        "has_database_privilege",
    }
)


class QueryRejected(ExporterError, ValueError):
    """The SQL of a query export is not a single read-only SELECT over the tenant's tables."""


class QueryLimitExceeded(ExporterError):
    """A query run went past one of its caps (memory, time, rows, temp disk)."""


@dataclass(frozen=True)
class QueryLimits:
    """The caps of one query run: the operator's settings, lowered per export."""

    memory_mb: int = 2048
    timeout_s: float = 600.0
    max_rows: int = 50_000_000
    temp_mb: int = 10240

    def lowered(self, **export_limits: float | int | None) -> QueryLimits:
        """These caps, each lowered to an export's own value when it sets a smaller one."""
        values = {
            name: min(current, export_limits[name])
            if export_limits.get(name) is not None
            else current
            for name, current in vars(self).items()
        }
        return QueryLimits(**values)  # type: ignore[arg-type]  # same fields, same types


# What each cap's message names: the setting and the export key that set it.
_CAP_SOURCES: Final = {
    "memory_mb": "EXPORTER_QUERY_MEMORY_MB / limits.memory_mb",
    "timeout_s": "EXPORTER_QUERY_TIMEOUT_S / limits.timeout_s",
    "max_rows": "EXPORTER_QUERY_MAX_ROWS / limits.max_rows",
    "temp_mb": "EXPORTER_QUERY_TEMP_MB / limits.temp_mb",
}


def limit_message(cap: str, limits: QueryLimits) -> str:
    """The error of a run stopped by `cap`: which cap, its value, and where it is set."""
    text = {
        "memory_mb": f"the query used more than its memory limit of {limits.memory_mb} MB",
        "timeout_s": f"the query ran longer than its time limit of {limits.timeout_s:g} s",
        "max_rows": f"the query returned more than its row limit of {limits.max_rows} rows",
        "temp_mb": (f"the query used more than its temporary disk limit of {limits.temp_mb} MB"),
    }[cap]
    return f"{text} ({_CAP_SOURCES[cap]})"


@functools.cache
def _parser() -> Any:
    import duckdb  # imported when first needed: loading definitions without queries skips it

    return duckdb.connect(config={"enable_external_access": False, "lock_configuration": True})


def parse(sql: str) -> dict[str, Any]:
    """DuckDB's syntax tree of `sql` (parsed only: nothing is bound or executed)."""
    row = _parser().execute("select json_serialize_sql(?::varchar)", [sql]).fetchone()
    return orjson.loads(row[0]) if row else {"error": True}


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def check_query(sql: str) -> str | None:
    """Why `sql` cannot run as an export query, or None when it may."""
    if not sql.strip():
        return "the query is empty"
    tree = parse(sql)
    if tree.get("error"):
        message = str(tree.get("error_message", ""))
        if "Only SELECT statements" in message:
            return SINGLE_SELECT
        first = message.strip().splitlines()[0] if message.strip() else "cannot parse"
        return f"the query is not valid SQL: {first}"
    statements = tree.get("statements", [])
    if not statements:
        return "the query is empty"
    if len(statements) > 1:
        return "the query must be a single statement"
    root = statements[0].get("node", {})
    if root.get("type") not in _SELECT_NODES:
        return "the query must be a SELECT (or WITH … SELECT)"
    nodes = list(_nodes(root))
    ctes = {
        str(entry.get("key", "")).lower()
        for node in nodes
        for entry in (node.get("cte_map") or {}).get("map", [])
    }
    for node in nodes:
        kind = node.get("type")
        if "class" not in node and "sample" in node and "modifiers" not in node:
            # A table reference.
            if kind not in _SAFE_TABLE_REFS:
                return ONLY_TABLES
            if kind == "BASE_TABLE":
                name = str(node.get("table_name", "")).lower()
                if node.get("schema_name") or node.get("catalog_name"):
                    return ONLY_TABLES
                if name not in QUERY_TABLES and name not in ctes:
                    return ONLY_TABLES
        if "function_name" in node:
            name = str(node["function_name"]).lower()
            if name in _REFUSED_FUNCTIONS or name.startswith(_REFUSED_FUNCTION_PREFIXES):
                return f"the query may not call {name}()"
    return None


@dataclass(frozen=True)
class QueryResult:
    """A query's rows, as a local Parquet file, and how many there are."""

    path: Path
    rows: int
    columns: list[str]


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:  # DuckDB removes its temp files as it goes
                continue
    return total


# How often the watchdog looks at the child; memory grows at most a few hundred MB in
# that time, which the cap's slack (DuckDB's own limit sits below it) absorbs.
_POLL_S: Final = 0.1
_DISK_POLL_S: Final = 1.0


def run_query(sql: str, tables: dict[str, Path], work: Path, limits: QueryLimits) -> QueryResult:
    """Run `sql` over `tables` (Parquet files of the tenant's rows) in a capped child process.

    Raise QueryRejected for a query that may not run or that the engine refuses, and
    QueryLimitExceeded when a cap stops it; its rows are in the returned Parquet file.
    """
    problem = check_query(sql)
    if problem:
        raise QueryRejected(problem)
    work.mkdir(parents=True, exist_ok=True)
    result = work / "result.parquet"
    request: dict[str, Any] = {
        "sql": sql,
        "tables": {name: str(path) for name, path in tables.items()},
        "result": str(result),
        "temp_directory": str(work / "spill"),
        # DuckDB's own limit sits below the cap, so it usually stops a query with a clean
        # error before the watchdog has to kill the process.
        "memory_mb": max(64, int(limits.memory_mb * 0.75)),
        "temp_mb": limits.temp_mb,
        "max_rows": limits.max_rows,
        "cpu_seconds": int(limits.timeout_s) + 5,
        "parent": os.getpid(),
    }
    stderr = work / "worker.log"
    with stderr.open("wb") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "exporter_pipeline.exports.query_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            cwd=work,
            # No inherited environment: nothing of the service's secrets reaches the engine.
            env={"PATH": os.defpath, "LANG": "C.UTF-8", "TMPDIR": str(work)},
        )
    try:
        answer, cap = _watch(process, request, work, limits)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if cap is not None:
        raise QueryLimitExceeded(limit_message(cap, limits))
    if answer is None:
        raise _died(process.returncode, limits)
    if answer.get("cap"):
        raise QueryLimitExceeded(limit_message(answer["cap"], limits))
    if answer.get("rejected"):
        raise QueryRejected(answer["rejected"])
    return QueryResult(result, answer["rows"], answer["columns"])


def _watch(
    process: subprocess.Popen[bytes], request: dict[str, Any], work: Path, limits: QueryLimits
) -> tuple[dict[str, Any] | None, str | None]:
    """The child's answer, or the cap it was killed for."""
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(orjson.dumps(request))
    process.stdin.close()
    began = last_disk = time.monotonic()
    child = psutil.Process(process.pid)
    memory_cap = limits.memory_mb * 1024 * 1024
    temp_cap = limits.temp_mb * 1024 * 1024
    while process.poll() is None:
        now = time.monotonic()
        cap = None
        if now - began > limits.timeout_s:
            cap = "timeout_s"
        else:
            try:
                if child.memory_info().rss > memory_cap:
                    cap = "memory_mb"
            except psutil.NoSuchProcess:
                break
            if now - last_disk >= _DISK_POLL_S:
                last_disk = now
                if _folder_bytes(work) > temp_cap:
                    cap = "temp_mb"
        if cap is not None:
            process.kill()
            process.wait()
            return None, cap
        time.sleep(_POLL_S)
    output = process.stdout.read()
    if process.wait() != 0 or not output:
        return None, None
    return orjson.loads(output), None


def _died(returncode: int, limits: QueryLimits) -> ExporterError:
    """What a child that ended without an answer tells the tenant (never its stderr)."""
    caps = {
        -signal.SIGXCPU: "timeout_s",
        -signal.SIGXFSZ: "temp_mb",
        -signal.SIGKILL: "memory_mb",  # not ours (we return the cap we killed for): the OOM killer
    }
    if returncode in caps:
        return QueryLimitExceeded(limit_message(caps[returncode], limits))
    return QueryRejected("the query failed: the query engine stopped unexpectedly")
