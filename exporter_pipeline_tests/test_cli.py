"""The `exporter-pipeline` console script, run as a user runs it (a subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from exporter_pipeline.cli import main

SCRIPT = Path(sys.executable).parent / "exporter-pipeline"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.mark.servers  # runs the console script: a process loading Dagster
def test_simulate_writes_landing_files(tmp_path: Path) -> None:
    done = run(
        "simulate",
        "--tenants",
        "acme,globex",
        "--start",
        "2026-10-01T00:00",
        "--end",
        "2026-10-01T02:00",
        "--events-per-hour",
        "100",
        "--seed",
        "3",
        "--landing",
        "land",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "wrote 4 landing files under land: 200 records (0 malformed, 0 duplicates)\n"
    )
    assert sorted(
        p.relative_to(tmp_path / "land").as_posix() for p in (tmp_path / "land").rglob("*.jsonl")
    ) == [
        "dt=2026-10-01/hour=00/acme-000.jsonl",
        "dt=2026-10-01/hour=00/globex-000.jsonl",
        "dt=2026-10-01/hour=01/acme-000.jsonl",
        "dt=2026-10-01/hour=01/globex-000.jsonl",
    ]


@pytest.mark.parametrize("end", ["2026-10-01T00:00", "2026-09-30T23:00"])
def test_simulate_refuses_an_end_not_after_the_start(
    tmp_path: Path, end: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["simulate", "--start", "2026-10-01T00:00", "--end", end, "--landing", str(tmp_path)]
    assert main([*args, "--events-per-hour", "10"]) == 2
    assert capsys.readouterr().err == f"--end {end} is not after --start 2026-10-01T00:00\n"
    assert list(tmp_path.iterdir()) == []


def test_every_demo_option_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "--events-per-hour EVENTS_PER_HOUR simulated events an hour, all tenants" in shown
    assert "--day DAY UTC day to simulate (default: yesterday)" in shown


def test_simulate_rejects_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        main(
            [
                "simulate",
                "--start",
                "2026-10-01",
                "--end",
                "2026-10-01T01",
                "--format",
                "xml",
                "--landing",
                str(tmp_path),
            ]
        )


@pytest.mark.servers  # runs the console script: a process loading Dagster
def test_validate_accepts_an_empty_file_and_refuses_a_missing_one(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("")
    done = run("validate", "empty.yaml", cwd=tmp_path)
    assert done.returncode == 0 and "0 outputs, 0 exports" in done.stdout
    done = run("validate", "absent.yaml", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", "absent.yaml: no such file\n")


@pytest.mark.servers  # runs the console script: a process loading Dagster
def test_validate_lists_every_error_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("outputs: [1]\nexports: {a: 1}\nextra: true\n")
    done = run("validate", "bad.yaml", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "bad.yaml: unknown top-level key 'extra' (expected outputs, exports)",
        "bad.yaml: field 'outputs' must be a mapping of output names",
        "bad.yaml: field 'exports' must be a list of export definitions",
    ]
    (tmp_path / "broken.yaml").write_text("exports: [\n")
    done = run("validate", "broken.yaml", cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.startswith("broken.yaml: not valid YAML")


@pytest.mark.servers  # runs the console script: a process loading Dagster
def test_validate_checks_the_export_schema(tmp_path: Path) -> None:
    (tmp_path / "exports.yaml").write_text(
        "outputs: {local: {type: local, path: out}}\n"
        "exports:\n"
        "  - {name: a, tenant: acme, dataset: metrics, metrics: [http], interval: 2m,\n"
        "     dimensions: [os.name, isp.name, city.name], start: 2026-10-01,\n"
        "     output: {name: local}}\n"
        "  - {name: b, tenant: acme, dataset: raw, start: 2026-10-10, end: 2026-10-01,\n"
        "     output: {name: elsewhere}}\n"
    )
    done = run("validate", "exports.yaml", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "exports.yaml: export 'a' (/exports/0/interval): interval '2m' is not one of 1m, 5m, "
        "10m, 30m, 1h, 3h, 12h, 1d, 7d, 14d",
        "exports.yaml: export 'a' (/exports/0/dimensions): at most 2 dimensions, got 3",
        "exports.yaml: export 'b' (/exports/1/end): end 2026-10-01 00:00 is before start "
        "2026-10-10 00:00",
        "exports.yaml: export 'b' (/exports/1/output/name): unknown output 'elsewhere' "
        "(outputs: local)",
    ]


@pytest.mark.servers  # runs the console script: a process loading Dagster
def test_test_output_checks_a_local_output(tmp_path: Path) -> None:
    (tmp_path / "exports.yaml").write_text("outputs: {here: {type: local, path: out}}\n")
    done = run("test-output", "here", "--file", "exports.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        f"output 'here' ({tmp_path / 'out'}): wrote, read back and deleted _exporter_check/"
    )
    assert list((tmp_path / "out").rglob("*")) == []
    missing = run("test-output", "there", "--file", "exports.yaml", cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "exports.yaml: no output named 'there' (outputs: here)"


@pytest.mark.servers  # runs the console script: a process loading Dagster
def test_test_output_names_a_missing_environment_variable(tmp_path: Path) -> None:
    (tmp_path / "exports.yaml").write_text(
        "outputs: {s3: {type: s3, bucket: b, access_key_id_env: NOT_SET_ANYWHERE_KEY}}\n"
    )
    done = run("test-output", "s3", "--file", "exports.yaml", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "output 's3': check failed: output 's3': environment "
        "variable NOT_SET_ANYWHERE_KEY is not set"
    )
