"""`exporter-pipeline api` (serve the HTTP API) and `exporter-pipeline api-keys` (create,
list, revoke the keys it takes)."""

from __future__ import annotations

import argparse
import sys

from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.settings import Settings


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from exporter_pipeline.api.access_log import log_config

    uvicorn.run(
        # By import string, so that each of `--workers` processes builds its own app.
        "exporter_pipeline.api.app:create_app",
        factory=True,
        workers=args.workers,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        # Longer than a client's pause between two requests under load: with uvicorn's 5 s,
        # a client reusing a connection the server is closing at that moment reads an
        # error (seen at 50 concurrent clients, benchmarks/api.py).
        timeout_keep_alive=args.keep_alive,
        # API keys travel in headers, but a download link of a local output carries its
        # credential in the query string (`?expires=…&signature=…`, valid 7 days): the
        # access log keeps every line and drops the query string of `/v1/files/` paths.
        access_log=True,
        log_config=log_config(),
    )
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    from exporter_pipeline.store.api_keys import create_key
    from exporter_pipeline.store.store import DefinitionsStore

    try:
        record, key = create_key(
            DefinitionsStore.from_settings().engine, args.tenant, admin=args.admin
        )
    except DefinitionError as error:
        print(error, file=sys.stderr)
        return 2
    kind = "admin key" if record.admin else "key"
    print(f"{kind} {record.id} for tenant {record.tenant} (shown once; only its hash is kept):")
    print(key)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from exporter_pipeline.store.api_keys import list_keys
    from exporter_pipeline.store.store import DefinitionsStore

    keys = list_keys(DefinitionsStore.from_settings().engine, args.tenant)
    print(f"{'id':>5}  {'tenant':<24} {'key':<12} {'admin':<5}  created           revoked")
    for key in keys:
        revoked = f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "-"
        admin = "yes" if key.admin else "no"
        print(
            f"{key.id:>5}  {key.tenant:<24} {key.prefix + '…':<12} {admin:<5}"
            f"  {key.created_at:%Y-%m-%d %H:%M}  {revoked}"
        )
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from exporter_pipeline.store.api_keys import revoke_key
    from exporter_pipeline.store.store import DefinitionsStore

    if not revoke_key(DefinitionsStore.from_settings().engine, args.id):
        print(f"no live key {args.id}", file=sys.stderr)
        return 1
    print(f"key {args.id} revoked")
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    """One run of an export's job over the windows of [--from, --to): what the UI's
    backfill of a range and `POST /v1/exports/{name}/executions` launch."""
    from datetime import UTC, datetime

    from exporter_pipeline.api.dagster_client import DagsterClient, DagsterError
    from exporter_pipeline.api.errors import ApiErrors
    from exporter_pipeline.api.ranges import range_tags, requested_range, requested_windows
    from exporter_pipeline.names import export_job_name
    from exporter_pipeline.store.store import DefinitionsStore

    settings = Settings.from_env()
    loaded = DefinitionsStore.from_settings(settings).load_named(args.export)
    if not loaded.exports:
        # Refused by the rules (as the code location refuses it), or missing.
        print(
            "\n".join(loaded.rejected_problems)
            or f"no export {args.export!r} in the definitions store",
            file=sys.stderr,
        )
        return 1
    export = loaded.exports[0]
    try:
        given = datetime.fromisoformat(args.start), datetime.fromisoformat(args.end)
        start, end = requested_range(*given)
        windows = requested_windows(export, start, end, datetime.now(UTC))
    except ValueError as error:
        print(f"--from/--to: {error}", file=sys.stderr)
        return 2
    except ApiErrors as errors:
        for problem in errors.errors:  # "start …" is --from, "end …" is --to
            print(problem.detail, file=sys.stderr)
        return 2
    tags = {"tenant": export.tenant, "export": export.name, **range_tags(export.cadence, windows)}
    client = DagsterClient(args.dagster_url or settings.dagster_url, settings.api_shards)
    try:
        run_id = client.launch(export.tenant, export_job_name(export.name), tags)
    except DagsterError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        client.close()
    print(f"launched run {run_id}: {export.name}, {len(windows)} {export.cadence} windows")
    print(f"{client.url}/runs/{run_id}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Per export: its last windows, their runs, rows and files, the last delivery and
    the failed runs of the last 24 hours (read through the webserver's GraphQL API)."""
    from exporter_pipeline.api.dagster_client import DagsterClient, DagsterError
    from exporter_pipeline.api.status import read_status, status_lines

    settings = Settings.from_env()
    client = DagsterClient(args.dagster_url or settings.dagster_url, settings.api_shards)
    try:
        statuses = read_status(client, args.tenant, args.export, last=args.windows)
    except DagsterError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        client.close()
    if not statuses:
        print("no export matches", file=sys.stderr)
        return 1
    print("\n".join(status_lines(statuses)).rstrip())
    return 0


def add_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]  # argparse's own type
    api = commands.add_parser("api", help="serve the HTTP API v1 (docs at /docs)")
    api.add_argument("--host", default="127.0.0.1", help="address to listen on")
    api.add_argument("--port", type=int, default=8080, help="port to listen on")
    api.add_argument("--log-level", default="info", help="uvicorn's log level")
    api.add_argument(
        "--workers", type=int, default=1, help="processes serving requests (one per core)"
    )
    api.add_argument(
        "--keep-alive", type=int, default=75, help="seconds an idle connection stays open"
    )
    api.set_defaults(run=cmd_api)

    keys = commands.add_parser("api-keys", help="manage the HTTP API's keys")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a new key, printed once on its last line")
    create.add_argument("--tenant", required=True, help="the tenant the key acts for")
    create.add_argument(
        "--admin", action="store_true", help="an operator key: may act for any tenant (?tenant=)"
    )
    create.set_defaults(run=cmd_keys_create)
    listing = actions.add_parser("list", help="the keys (never the keys themselves)")
    listing.add_argument("--tenant", help="only this tenant's keys")
    listing.set_defaults(run=cmd_keys_list)
    revoke = actions.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("id", type=int, help="the key's id (api-keys list)")
    revoke.set_defaults(run=cmd_keys_revoke)

    backfill = commands.add_parser(
        "backfill", help="run an export over the windows of [--from, --to) (one Dagster run)"
    )
    backfill.add_argument("export", help="the export's name in the definitions store")
    backfill.add_argument("--from", dest="start", required=True, help="first window's start")
    backfill.add_argument("--to", dest="end", required=True, help="end (exclusive), ISO 8601")
    backfill.add_argument("--dagster-url", help="the webserver (default: EXPORTER_DAGSTER_URL)")
    backfill.set_defaults(run=cmd_backfill)

    status = commands.add_parser(
        "status", help="per export: last windows, runs, rows, files, delivery, failures"
    )
    status.add_argument("--tenant", help="only this tenant's exports")
    status.add_argument("--export", help="only this export")
    status.add_argument("--windows", type=int, default=5, help="windows per export (default 5)")
    status.add_argument("--dagster-url", help="the webserver (default: EXPORTER_DAGSTER_URL)")
    status.set_defaults(run=cmd_status)
