"""Code location load at thousands of export definitions: seconds, peak RSS, growth.

    .venv/bin/python benchmarks/load.py [--sizes 40,400,1000,4000,5000] [--shards 8]
                                        [--rounds 1] [--work DIR]

For each size, a definitions file of size/4 tenants with 4 exports each (the entries of
`exports.yaml` taken in turn, so every data set appears) and one output per tenant. Then,
each in fresh processes:

- `definitions apply` of the whole file into a fresh store (when the store exists);
- `dagster definitions validate`: a gRPC code server loads the location and the CLI fetches
  its snapshot, as the webserver and the daemon do; seconds and peak RSS of the tree;
- the same for one shard of `--shards` (`EXPORTER_SHARD=1/N`, the second);
- run start-up: a fresh Python process that loads the code location and asks it for one
  export job by name, which is what a run worker does before its first step;
- Dagster's floor: the same `validate` of `benchmarks/dagster_floor.py`, a location of as
  many jobs that do nothing (one bare partitioned asset each), what any location with one
  Dagster job per export costs before any of its own work.

The growth line compares the largest size with the smallest, per definition.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EXPORTS_PER_TENANT = 4
# A child measuring its own subprocess: prints seconds and the peak RSS (KiB) of the tree.
TIMED = (
    "import resource, subprocess, sys, time\n"
    "began = time.perf_counter()\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "seconds = time.perf_counter() - began\n"
    "if done.returncode:\n"
    "    sys.exit(done.stdout[-2000:] + done.stderr[-2000:])\n"
    "print(seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)
RUN_START = (
    "import sys, warnings\n"
    "warnings.filterwarnings('ignore')\n"
    "from exporter_pipeline.definitions import defs\n"
    "defs.get_job(sys.argv[1])\n"
)


def definitions_document(size: int, data: Path) -> dict[str, Any]:
    """`size` exports over size/4 tenants, each tenant with its own local output."""
    template = yaml.safe_load((ROOT / "exports.yaml").read_text(encoding="utf-8"))["exports"]
    entries = itertools.cycle(template)
    outputs: dict[str, Any] = {}
    exports: list[dict[str, Any]] = []
    for number in range(max(1, size // EXPORTS_PER_TENANT)):
        tenant = f"t{number:05d}"
        outputs[f"out_{tenant}"] = {"type": "local", "path": str(data / tenant), "tenant": tenant}
        for _ in range(EXPORTS_PER_TENANT):
            entry = dict(next(entries))
            entry["name"] = f"{tenant}_{entry['name']}"
            entry["tenant"] = tenant
            entry["output"] = {"name": f"out_{tenant}", "path": entry["output"]["path"]}
            exports.append(entry)
    return {"outputs": outputs, "exports": exports}


def environment(work: Path, size: int) -> dict[str, str]:
    home = work / f"home_{size}"
    home.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "EXPORTER_EXPORTS_FILE": str(work / f"exports_{size}.yaml"),
        "EXPORTER_DATABASE_URL": f"sqlite:///{home / 'exporter.sqlite3'}",
        "EXPORTER_LAKE_URL": str(work / "lake"),
        "EXPORTER_LANDING_URL": str(work / "landing"),
        "PYTHONWARNINGS": "ignore",
    }


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """(seconds, peak RSS MB of the process tree) of `command`, in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", TIMED, *command],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    seconds, kib = done.stdout.split()
    return float(seconds), int(kib) // 1024


def has_store() -> bool:
    done = subprocess.run(
        [str(BIN / "exporter-pipeline"), "definitions", "--help"],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def measure_size(size: int, shards: int, rounds: int, work: Path) -> dict[str, Any]:
    env = environment(work, size)
    document = definitions_document(size, work / "data")
    Path(env["EXPORTER_EXPORTS_FILE"]).write_text(yaml.safe_dump(document), encoding="utf-8")
    row: dict[str, Any] = {"size": len(document["exports"]), "tenants": len(document["outputs"])}
    if has_store():
        row["apply"] = timed(
            [str(BIN / "exporter-pipeline"), "definitions", "apply", env["EXPORTER_EXPORTS_FILE"]],
            env,
        )
    validate = [str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"]
    job = f"export_{document['exports'][0]['name'].replace('-', '_')}"
    steps = {
        "load": (validate, env),
        "shard": (validate, {**env, "EXPORTER_SHARD": f"1/{shards}"}),
        "run_start": ([sys.executable, "-c", RUN_START, job], env),
        "floor": (
            [str(BIN / "dagster"), "definitions", "validate", "-f", "benchmarks/dagster_floor.py"],
            {**env, "FLOOR_JOBS": str(len(document["exports"]))},
        ),
    }
    for name, (command, step_env) in steps.items():
        results = [timed(command, step_env) for _ in range(rounds)]
        row[name] = (
            statistics.median(s for s, _ in results),
            max(mb for _, mb in results),
        )
    return row


def report(rows: list[dict[str, Any]], shards: int) -> None:
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    print(f"\nMachine: {machine}, Python {platform.python_version()}")
    print(
        f"\n| export definitions | tenants | apply s | load s | load RSS MB | shard of {shards} s "
        "| run start-up s | Dagster floor s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        apply = f"{row['apply'][0]:.1f}" if "apply" in row else "n/a"
        print(
            f"| {row['size']:,} | {row['tenants']:,} | {apply} | {row['load'][0]:.1f} "
            f"| {row['load'][1]} | {row['shard'][0]:.1f} | {row['run_start'][0]:.1f} "
            f"| {row['floor'][0]:.1f} |"
        )
    first, last = rows[0], rows[-1]
    if len(rows) > 1:
        print(
            f"\nload {last['size']:,} / {first['size']:,} definitions: "
            f"{last['load'][0] / first['load'][0]:.1f}x the time for "
            f"{last['size'] / first['size']:.0f}x the definitions; run start-up "
            f"{last['run_start'][0] / first['run_start'][0]:.2f}x; Dagster's floor "
            f"{last['floor'][0] / first['floor'][0]:.1f}x"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="40,400,1000,4000,5000", help="definition counts")
    parser.add_argument("--shards", type=int, default=8, help="N of the shard measured")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per step (median)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/exporter-load-benchmark"))
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        began = time.perf_counter()
        rows.append(measure_size(size, args.shards, args.rounds, args.work))
        print(f"{size} definitions measured in {time.perf_counter() - began:.0f} s", flush=True)
    report(rows, args.shards)
    return 0


if __name__ == "__main__":
    sys.exit(main())
