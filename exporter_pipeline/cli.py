"""The `exporter-pipeline` command: simulate landing data, validate definitions, manage the
definitions store, run the demo."""

from __future__ import annotations

import argparse
import math
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from exporter_pipeline.api.commands import add_parsers as add_api_parsers
from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.settings import Settings
from exporter_pipeline.shards import workspace_yaml
from exporter_pipeline.windows import parse_utc


def _local_landing(settings: Settings) -> Path:
    if "://" in settings.landing_url and not settings.landing_url.startswith("file://"):
        raise SystemExit("simulate writes to a local landing folder; set EXPORTER_LANDING_URL")
    return Path(settings.landing_url.removeprefix("file://"))


def cmd_simulate(args: argparse.Namespace) -> int:
    from exporter_pipeline.events.simulate import simulate
    from exporter_pipeline.progress import Progress

    landing = Path(args.landing) if args.landing else _local_landing(Settings.from_env())
    start, end = parse_utc(args.start), parse_utc(args.end)
    if end <= start:
        print(f"--end {args.end} is not after --start {args.start}", file=sys.stderr)
        return 2
    first_hour = start.replace(minute=0, second=0, microsecond=0)
    hours = math.ceil((end - first_hour).total_seconds() / 3600)
    # Progress on stderr: stdout keeps only the result line (scripts read it).
    with Progress(sys.stderr).phase("simulate", hours) as advance:
        summary = simulate(
            landing,
            tenants=[t.strip() for t in args.tenants.split(",") if t.strip()],
            start=start,
            end=end,
            events_per_hour=args.events_per_hour,
            seed=args.seed,
            fmt=args.format,
            malformed_rate=args.malformed_rate,
            duplicate_rate=args.duplicate_rate,
            on_hour=lambda _hour: advance(1),
        )
    print(
        f"wrote {len(summary.files)} landing files under {landing}: {summary.records} records "
        f"({summary.malformed} malformed, {summary.duplicates} duplicates)"
    )
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from exporter_pipeline.exports.spec import load_definitions_file

    path = Path(args.file or Settings.from_env().exports_file)
    try:
        # The file named must exist: a typo in its name is not an empty, valid file.
        document = load_definitions_file(path, missing_ok=False)
    except DefinitionError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{path}: {len(document.outputs)} outputs, {len(document.exports)} exports, valid")
    return 0


def cmd_test_output(args: argparse.Namespace) -> int:
    from exporter_pipeline.errors import DestinationError
    from exporter_pipeline.exports.spec import load_definitions_file

    path = Path(args.file or Settings.from_env().exports_file)
    try:
        outputs = load_definitions_file(path, missing_ok=False).outputs
    except DefinitionError as error:
        print(error, file=sys.stderr)
        return 1
    if args.name not in outputs:
        known = ", ".join(sorted(outputs)) or "none declared"
        print(f"{path}: no output named {args.name!r} (outputs: {known})", file=sys.stderr)
        return 1
    try:
        with outputs[args.name].open(args.name) as destination:
            key = destination.check()
    except DestinationError as error:
        print(f"output {args.name!r}: check failed: {error}", file=sys.stderr)
        return 1
    print(f"output {args.name!r} ({destination.uri()}): wrote, read back and deleted {key}")
    return 0


def cmd_definitions_apply(args: argparse.Namespace) -> int:
    from exporter_pipeline.store.reload import location_names, reload_locations
    from exporter_pipeline.store.store import DefinitionsStore

    settings = Settings.from_env()
    path = Path(args.file)
    try:
        changes = DefinitionsStore.from_settings(settings).apply_file(path, prune=args.prune)
    except DefinitionError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{path}: {changes.summary()}")
    if changes.changed:
        url = (args.dagster_url or settings.dagster_url).rstrip("/")
        for line in reload_locations(url, location_names(Path(args.workspace))):
            print(line)
    return 0


def cmd_definitions_dump(args: argparse.Namespace) -> int:
    from exporter_pipeline.store.dump import dump
    from exporter_pipeline.store.store import DefinitionsStore

    sys.stdout.write(dump(DefinitionsStore.from_settings(), args.tenant))
    return 0


def cmd_definitions_new_key(args: argparse.Namespace) -> int:
    from exporter_pipeline.store.crypto import new_key

    print(new_key())
    return 0


def _definitions_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]  # argparse's own type
    definitions = commands.add_parser(
        "definitions", help="manage the definitions store (EXPORTER_DATABASE_URL)"
    )
    actions = definitions.add_subparsers(dest="action", required=True)
    apply = actions.add_parser(
        "apply", help="upsert every output and export of a file (idempotent), then reload"
    )
    apply.add_argument("file", help="definitions file, checked as `validate` checks it")
    apply.add_argument(
        "--prune", action="store_true", help="also remove what the file no longer has"
    )
    apply.add_argument("--dagster-url", help="webserver to reload (default: EXPORTER_DAGSTER_URL)")
    apply.add_argument(
        "--workspace", default="workspace.yaml", help="names the code locations to reload"
    )
    apply.set_defaults(run=cmd_definitions_apply)
    dump = actions.add_parser("dump", help="write the store as a definitions file (stdout)")
    dump.add_argument("--tenant", help="only this tenant's exports and the outputs they use")
    dump.set_defaults(run=cmd_definitions_dump)
    new_key = actions.add_parser("new-key", help="print a new EXPORTER_SECRET_KEY")
    new_key.set_defaults(run=cmd_definitions_new_key)


def cmd_demo(args: argparse.Namespace) -> int:
    from exporter_pipeline.demo import run_demo

    day = (
        parse_utc(args.day)
        if args.day
        else datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        - timedelta(days=1)
    )
    return run_demo(day, events_per_hour=args.events_per_hour)


def cmd_workspace(args: argparse.Namespace) -> int:
    if args.shards < 1:
        print("--shards must be at least 1", file=sys.stderr)
        return 2
    sys.stdout.write(workspace_yaml(args.shards, args.host, args.port))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="exporter-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    simulate = commands.add_parser("simulate", help="write realistic landing files")
    simulate.add_argument("--tenants", default="acme,globex", help="comma-separated tenants")
    simulate.add_argument("--start", required=True, help="first hour, ISO-8601 (UTC if no offset)")
    simulate.add_argument("--end", required=True, help="end hour (exclusive), ISO-8601")
    simulate.add_argument("--events-per-hour", type=int, default=2000, help="all tenants together")
    simulate.add_argument("--seed", type=int, default=7, help="same seed, same bytes")
    simulate.add_argument(
        "--format", default="jsonl", help="jsonl, jsonl.gz, csv, parquet, or mixed (rotate by hour)"
    )
    simulate.add_argument(
        "--malformed-rate",
        type=float,
        default=0.0,
        help="share of records broken on purpose (each quarantine reason)",
    )
    simulate.add_argument(
        "--duplicate-rate",
        type=float,
        default=0.0,
        help="share of records the collector delivers twice",
    )
    simulate.add_argument("--landing", help="landing folder (default: EXPORTER_LANDING_URL)")
    simulate.set_defaults(run=cmd_simulate)

    validate = commands.add_parser("validate", help="check an export definitions file")
    validate.add_argument(
        "file", nargs="?", help="definitions file (default: EXPORTER_EXPORTS_FILE)"
    )
    validate.set_defaults(run=cmd_validate)

    _definitions_parser(commands)
    add_api_parsers(commands)

    test_output = commands.add_parser(
        "test-output", help="check an output: write, read back and delete a small object"
    )
    test_output.add_argument("name", help="output name in the definitions file")
    test_output.add_argument("--file", help="definitions file (default: EXPORTER_EXPORTS_FILE)")
    test_output.set_defaults(run=cmd_test_output)

    workspace = commands.add_parser(
        "workspace", help="print a Dagster workspace.yaml for N shards (gRPC code servers)"
    )
    workspace.add_argument("--shards", type=int, required=True, help="number of shards, N")
    workspace.add_argument("--host", default="127.0.0.1", help="host of the code servers")
    workspace.add_argument("--port", type=int, default=4000, help="port of shard 0 (k: port+k)")
    workspace.set_defaults(run=cmd_workspace)

    demo = commands.add_parser("demo", help="simulate a day for two tenants and materialize it")
    demo.add_argument("--day", help="UTC day to simulate (default: yesterday)")
    demo.add_argument(
        "--events-per-hour", type=int, default=2000, help="simulated events an hour, all tenants"
    )
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
