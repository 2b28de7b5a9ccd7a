"""The child process of a query export run: load the tenant's tables, lock DuckDB, run.

Started by `query.run_query` as `python -m exporter_pipeline.exports.query_worker`, with
the request as JSON on stdin; answers one JSON object on stdout:
`{"rows", "columns"}`, `{"rejected": message}` or `{"cap": name}`. Its own rlimits (CPU
time, file size, no core dumps) and a parent-death signal hold even if the watching
process dies; the watcher's kill covers wall time and resident memory.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
from typing import TYPE_CHECKING, Any, Final

import orjson

if TYPE_CHECKING:
    import duckdb

_PR_SET_PDEATHSIG: Final = 1
# Rows per Arrow batch fetched from DuckDB: the result is never held whole.
_BATCH_ROWS: Final = 64 * 1024


def _confine(request: dict[str, Any]) -> None:
    """Die with the parent; stop past the CPU-time and file-size caps."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != request["parent"]:  # the parent died before the line above
            os._exit(1)
    cpu = int(request["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    size = int(request["temp_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _engine_error(error: Exception) -> dict[str, Any]:
    """A DuckDB error as the tenant may see it: our words for anything beyond the query."""
    import duckdb

    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    if isinstance(error, duckdb.OutOfMemoryException):
        return {"cap": "temp_mb" if "temp" in text.lower() else "memory_mb"}
    if isinstance(error, duckdb.PermissionException):
        from exporter_pipeline.exports.query import ONLY_TABLES

        return {"rejected": ONLY_TABLES}
    # Parser, binder, catalog, conversion and arithmetic errors quote only the query, the
    # tenant's own columns and values; every other kind (I/O, internal) is named only.
    quoted = (
        duckdb.ParserException,
        duckdb.BinderException,
        duckdb.CatalogException,
        duckdb.ConversionException,
        duckdb.OutOfRangeException,
        duckdb.InvalidInputException,
        duckdb.NotImplementedException,
        duckdb.TypeMismatchException,
    )
    if isinstance(error, quoted):
        return {"rejected": f"the query failed: {first}"}
    return {"rejected": f"the query failed: {type(error).__name__}"}


def _plain(batch: Any) -> Any:
    """A batch with DuckDB's HUGEINT sums (Arrow decimal(38, 0)) as 64-bit integers."""
    import pyarrow as pa

    columns = []
    for column in batch.columns:
        kind = column.type
        if pa.types.is_decimal(kind) and kind.scale == 0 and kind.precision == 38:
            try:
                column = column.cast(pa.int64())
            except pa.ArrowInvalid:  # too large for 64 bits: keep the exact decimal
                pass
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _sealed_connection(request: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding the request's tables, then closed to the outside:
    no file, network or extension access, and its settings locked."""
    import duckdb

    con = duckdb.connect(
        config={
            "threads": 1,  # one core per query: the other tenants' runs keep theirs
            "memory_limit": f"{request['memory_mb']}MB",
            "temp_directory": request["temp_directory"],
            "max_temp_directory_size": f"{request['temp_mb']}MB",
            "autoload_known_extensions": False,
            "autoinstall_known_extensions": False,
            "allow_community_extensions": False,
        }
    )
    con.execute("SET TimeZone = 'UTC'")
    for table, path in request["tables"].items():
        con.execute(f'CREATE TABLE "{table}" AS FROM read_parquet({_sql_string(path)})')
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def run(request: dict[str, Any]) -> dict[str, Any]:
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from exporter_pipeline.exports.query import SINGLE_SELECT, check_query

    problem = check_query(request["sql"])
    if problem:
        return {"rejected": problem}
    con = _sealed_connection(request)
    # The engine's own word on the statement's kind, beside the syntax-tree check.
    try:
        statements = con.extract_statements(request["sql"])
    except duckdb.Error as error:
        return _engine_error(error)
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        return {"rejected": SINGLE_SELECT}
    rows = 0
    writer = None
    try:
        reader = con.sql(request["sql"]).to_arrow_reader(_BATCH_ROWS)
        names = list(reader.schema.names)
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            return {
                "rejected": f"the query returns the column {repeated[0]!r} more than once: "
                "name each column of the result once (… AS name)"
            }
        for batch in reader:
            rows += batch.num_rows
            if rows > request["max_rows"]:
                return {"cap": "max_rows"}
            plain = _plain(batch)
            if writer is None:
                writer = pq.ParquetWriter(request["result"], plain.schema)
            writer.write_batch(plain)
        if writer is None:  # no rows: the file still carries the columns
            empty = _plain(pa.RecordBatch.from_pylist([], schema=reader.schema))
            writer = pq.ParquetWriter(request["result"], empty.schema)
            writer.write_batch(empty)
    except duckdb.Error as error:
        return _engine_error(error)
    finally:
        if writer is not None:
            writer.close()
    return {"rows": rows, "columns": list(reader.schema.names)}


def main() -> None:
    request = orjson.loads(sys.stdin.buffer.read())
    _confine(request)
    answer = run(request)
    sys.stdout.buffer.write(orjson.dumps(answer))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
