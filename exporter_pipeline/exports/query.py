"""SQL exports (seed 004): one read-only SELECT over the tenant's own tables.

The query runs in a polars `SQLContext` that holds only the tables registered here,
each already limited to the export's tenant and window. Polars SQL has table
functions that read files (`read_parquet('...')` and friends); a query naming any of
them is refused, and the query's plan is checked to scan nothing but the registered
tables' own files. There is no network access from polars SQL.
"""

from __future__ import annotations

import re
from typing import Final

import polars as pl

# Tables a query can name, and the lake data set each one comes from.
QUERY_TABLES: Final = {
    "events": "raw_events",
    "view_segments": "view_segments",
    "delivery_metrics": "delivery_metrics",
}
_STRING = re.compile(r"'(?:[^']|'')*'")
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_FILE_FUNCTION = re.compile(r"\b(read|scan)_[a-z_]*\s*\(", re.IGNORECASE)
_FORBIDDEN_WORDS = re.compile(
    r"\b(insert|update|delete|drop|create|alter|truncate|copy|attach|install|load|pragma|"
    r"set|grant|call|explain|show|describe)\b",
    re.IGNORECASE,
)


class QueryRejected(ValueError):
    """The SQL of a query export is not a single read-only SELECT over the tenant's tables."""


def check_query(sql: str) -> str | None:
    """Why `sql` cannot run as an export query, or None when it may."""
    # Judge the code only: string literals emptied, comments and identifier quotes removed
    # (so `"read_parquet" (...)` is seen for what it is).
    code = _COMMENT.sub(" ", _STRING.sub("''", sql))
    code = code.replace('"', "").replace("`", "").strip().rstrip(";").strip()
    if not code:
        return "the query is empty"
    if ";" in code:
        return "the query must be a single statement"
    if not re.match(r"^(select|with)\b", code, re.IGNORECASE):
        return "the query must be a SELECT (or WITH … SELECT)"
    if _FILE_FUNCTION.search(code):
        return "the query may read only the tables events, view_segments, delivery_metrics"
    word = _FORBIDDEN_WORDS.search(code)
    if word:
        return f"the query must be read-only ({word.group(1).upper()} is not allowed)"
    return None


def run_query(sql: str, tables: dict[str, pl.LazyFrame], allowed_sources: set[str]) -> pl.LazyFrame:
    """The query's lazy result over `tables`; raise QueryRejected for anything else."""
    problem = check_query(sql)
    if problem:
        raise QueryRejected(problem)
    context = pl.SQLContext(frames=tables, eager=False)
    try:
        result = context.execute(sql, eager=False)
        plan = result.explain(optimized=False)
    except Exception as error:  # polars raises several SQL error types; all mean a bad query
        raise QueryRejected(f"the query failed: {_first_line(error)}") from None
    for source in re.findall(r"(?:SCAN|Scan)[^\[]*\[([^\]]+)\]", plan):
        for path in (p.strip().strip("\"'") for p in source.split(",")):
            if path and not path.endswith("...") and path not in allowed_sources:
                raise QueryRejected(
                    "the query may read only the tables events, view_segments, delivery_metrics"
                )
    return result


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
