"""Hostile export definitions: what a stranger's file may try, and its exact outcome.

Covers the names of exports, tenants and outputs (length, case, leading `-`/`_`, spaces,
`../`, unicode, empty, numbers and lists instead of text, names whose Dagster names meet),
dates outside 2000-2100, tenant-owned outputs, exports of different tenants sharing an
output location (equal, nested and empty paths, two outputs naming one bucket or folder),
wrong types, and files that cannot be read (not UTF-8, a directory, a missing path) through
the real `exporter-pipeline` console script. Each refused case asserts the exact `validate`
lines (file, export, JSON pointer, text). Each accepted edge case (63-character names,
hyphens, same-tenant sharing) is built into the code location's `Definitions` and its
jobs resolved. Last, the defence in depth: an export that validates but fails to become
Dagster objects, or that a lenient load rejects, is left out and reported while the
others load. No server is needed: the definitions are built in process.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from exporter_pipeline.definitions import build_definitions
from exporter_pipeline.defs import loading
from exporter_pipeline.defs.resources import OutputsResource
from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.exports.ownership import Placed, location_conflicts
from exporter_pipeline.exports.spec import parse_definitions
from exporter_pipeline.settings import Settings

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
FILE = Path("defs.yaml")
SCRIPT = Path(sys.executable).parent / "exporter-pipeline"
LOCAL = {"local": {"type": "local", "path": "/srv/exports"}}
NAME_CHARS = "may contain only lowercase letters, digits, '_' and '-'"
DATES = "is not between 2000-01-01 and 2100-12-31 (UTC)"
SHARED = "exports of different tenants may not share an output location"


def export(name: Any = "acme_x", **overrides: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "tenant": "acme",
        "dataset": "raw",
        "format": "csv",
        "cadence": "daily",
        "start": "2026-11-01",
        "output": {"name": "local", "path": "acme"},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def doc(*exports: Any, outputs: dict[Any, Any] | None = None) -> dict[str, Any]:
    return {"outputs": LOCAL if outputs is None else outputs, "exports": list(exports)}


def at(label: str, pointer: str) -> str:
    return f"defs.yaml: export {label} ({pointer})"


def problems_of(document: dict[str, Any]) -> list[str]:
    with pytest.raises(DefinitionError) as raised:
        parse_definitions(document, FILE, now=NOW)
    return str(raised.value).splitlines()


A = "'acme_x'"
LONG_300 = "'" + "a" * 66 + "..."
S3_A = {"type": "s3", "bucket": "shared-bucket", "prefix": "exports"}
S3_B = {"type": "s3", "bucket": "shared-bucket", "prefix": "/exports/globex/"}

REFUSED = [
    # --- export names
    pytest.param(
        doc(export("a" * 300)),
        [
            f"{at(LONG_300, '/exports/0/name')}: name must have at most 63 characters "
            "(this one has 300)"
        ],
        id="name-300-chars",
    ),
    pytest.param(
        doc(export("a" * 64)),
        [
            f"{at(repr('a' * 64), '/exports/0/name')}: name must have at most 63 characters "
            "(this one has 64)"
        ],
        id="name-64-chars",
    ),
    pytest.param(
        doc(export("Acme_Daily")),
        [f"{at(repr('Acme_Daily'), '/exports/0/name')}: name {NAME_CHARS} (not 'A', 'D')"],
        id="name-uppercase",
    ),
    pytest.param(
        doc(export("-acme")),
        [
            f"{at(repr('-acme'), '/exports/0/name')}: name must start with a lowercase letter "
            "or digit"
        ],
        id="name-leading-hyphen",
    ),
    pytest.param(
        doc(export("_acme")),
        [
            f"{at(repr('_acme'), '/exports/0/name')}: name must start with a lowercase letter "
            "or digit"
        ],
        id="name-leading-underscore",
    ),
    pytest.param(
        doc(export("acme daily")),
        [f"{at(repr('acme daily'), '/exports/0/name')}: name {NAME_CHARS} (not ' ')"],
        id="name-space",
    ),
    pytest.param(
        doc(export("../globex")),
        [f"{at(repr('../globex'), '/exports/0/name')}: name {NAME_CHARS} (not '.', '/')"],
        id="name-dot-dot-slash",
    ),
    pytest.param(
        doc(export("acmé")),
        [f"{at(repr('acmé'), '/exports/0/name')}: name {NAME_CHARS} (not 'é')"],
        id="name-unicode",
    ),
    pytest.param(
        doc(export("acme\n")),
        [f"{at(repr('acme' + chr(10)), '/exports/0/name')}: name {NAME_CHARS} (not '\\n')"],
        id="name-trailing-newline",
    ),
    pytest.param(
        doc(export("")),
        [f"{at(repr(''), '/exports/0/name')}: name must not be empty"],
        id="name-empty",
    ),
    pytest.param(
        doc(export(123)),
        [f"{at('#0', '/exports/0/name')}: Input should be a valid string"],
        id="name-number",
    ),
    pytest.param(
        doc(export(["acme"])),
        [f"{at('#0', '/exports/0/name')}: Input should be a valid string"],
        id="name-list",
    ),
    pytest.param(
        doc(export("on_demand")),
        [
            f"{at(repr('on_demand'), '/exports/0/name')}: name 'on_demand' is reserved (the job "
            "export_on_demand already exists)"
        ],
        id="name-reserved",
    ),
    pytest.param(
        doc(export("on-demand")),
        [
            f"{at(repr('on-demand'), '/exports/0/name')}: name 'on-demand' is reserved (the job "
            "export_on_demand already exists)"
        ],
        id="name-reserved-as-dagster-name",
    ),
    pytest.param(
        doc(export("acme-x"), export("acme_x", output={"name": "local", "path": "acme/2"})),
        [
            f"{at(A, '/exports/1/name')}: name 'acme_x' and export 'acme-x' (/exports/0) both "
            "become the Dagster job 'export_acme_x'; rename one"
        ],
        id="names-meeting-in-dagster",
    ),
    # --- tenants
    pytest.param(
        doc(export(tenant="acme corp/../globex")),
        [f"{at(A, '/exports/0/tenant')}: tenant {NAME_CHARS} (not ' ', '.', '/')"],
        id="tenant-path-traversal",
    ),
    pytest.param(
        doc(export(tenant="t" * 500)),
        [
            f"{at(A, '/exports/0/tenant')}: tenant must have at most 63 characters "
            "(this one has 500)"
        ],
        id="tenant-500-chars",
    ),
    pytest.param(
        doc(export(tenant=" ")),
        [f"{at(A, '/exports/0/tenant')}: tenant {NAME_CHARS} (not ' ')"],
        id="tenant-space",
    ),
    pytest.param(
        doc(export(tenant="")),
        [f"{at(A, '/exports/0/tenant')}: tenant must not be empty"],
        id="tenant-empty",
    ),
    pytest.param(
        doc(export(tenant=["acme", "globex"])),
        [f"{at(A, '/exports/0/tenant')}: Input should be a valid string"],
        id="tenant-list",
    ),
    pytest.param(
        doc(export(tenant=42)),
        [f"{at(A, '/exports/0/tenant')}: Input should be a valid string"],
        id="tenant-number",
    ),
    # --- outputs
    pytest.param(
        doc(export(), outputs={**LOCAL, "Acme S3": {"type": "s3", "bucket": "b"}}),
        [
            f"defs.yaml: output 'Acme S3' (/outputs/Acme S3): output name {NAME_CHARS} "
            "(not ' ', 'A', 'S')"
        ],
        id="output-name-bad-chars",
    ),
    pytest.param(
        doc(export(), outputs={**LOCAL, "a/b": {"type": "local", "path": "/x"}}),
        [f"defs.yaml: output 'a/b' (/outputs/a~1b): output name {NAME_CHARS} (not '/')"],
        id="output-name-slash-escaped-in-pointer",
    ),
    pytest.param(
        doc(export(), outputs={**LOCAL, 7: {"type": "local", "path": "/x"}}),
        ["defs.yaml: output 7 (/outputs/7): output name must be a string (got int 7)"],
        id="output-name-number",
    ),
    pytest.param(
        doc(
            export(),
            outputs={
                **LOCAL,
                "a-b": {"type": "local", "path": "/a"},
                "a_b": {"type": "local", "path": "/b"},
            },
        ),
        [
            "defs.yaml: output 'a_b' (/outputs/a_b): output name 'a_b' and output 'a-b' both "
            "become the Dagster name 'a_b'; rename one"
        ],
        id="output-names-meeting-in-dagster",
    ),
    pytest.param(
        doc(export(), outputs={**LOCAL, "o": {"type": "local", "path": "/o", "tenant": "Acme"}}),
        [f"defs.yaml: output 'o' (/outputs/o/tenant): tenant {NAME_CHARS} (not 'A')"],
        id="output-tenant-bad",
    ),
    pytest.param(
        doc(
            export(output={"name": "globex_s3", "path": "x"}),
            outputs={"globex_s3": {"type": "s3", "bucket": "globex", "tenant": "globex"}},
        ),
        [
            f"{at(A, '/exports/0/output/name')}: output 'globex_s3' belongs to tenant 'globex'; "
            "an export of tenant 'acme' may not use it"
        ],
        id="output-of-another-tenant",
    ),
    pytest.param(
        doc(export(output={"name": "nowhere"})),
        [f"{at(A, '/exports/0/output/name')}: unknown output 'nowhere' (outputs: local)"],
        id="output-unknown",
    ),
    pytest.param(
        doc(export(output={"name": "Bad Name"})),
        [
            f"{at(A, '/exports/0/output/name')}: output name {NAME_CHARS} (not ' ', 'B', 'N')",
            f"{at(A, '/exports/0/output/name')}: unknown output 'Bad Name' (outputs: local)",
        ],
        id="output-reference-bad-name",
    ),
    pytest.param(
        doc(export(output="local")),
        [
            f"{at(A, '/exports/0/output')}: Input should be a valid dictionary or instance of "
            "OutputRef"
        ],
        id="output-reference-string",
    ),
    # --- dates
    pytest.param(
        doc(export(start="0001-01-01")),
        [f"{at(A, '/exports/0/start')}: start 0001-01-01 {DATES}"],
        id="start-year-1",
    ),
    pytest.param(
        doc(export(start="2101-01-01")),
        [f"{at(A, '/exports/0/start')}: start 2101-01-01 {DATES}"],
        id="start-2101",
    ),
    pytest.param(
        doc(export(start="1999-12-31")),
        [f"{at(A, '/exports/0/start')}: start 1999-12-31 {DATES}"],
        id="start-1999",
    ),
    pytest.param(
        doc(export(cadence="hourly", start="2000-01-01T00:00:00+01:00")),
        [f"{at(A, '/exports/0/start')}: start 2000-01-01T00:00:00+01:00 {DATES}"],
        id="start-before-2000-in-utc",
    ),
    pytest.param(
        doc(export(start="0001-01-01T00:00:00+01:00")),
        [f"{at(A, '/exports/0/start')}: start 0001-01-01T00:00:00+01:00 {DATES}"],
        id="start-that-would-overflow-in-utc",
    ),
    pytest.param(
        doc(export(end="2101-01-01")),
        [f"{at(A, '/exports/0/end')}: end 2101-01-01 {DATES}"],
        id="end-2101",
    ),
    pytest.param(
        doc(export(start="2026-11-10", end="2026-11-01")),
        [f"{at(A, '/exports/0/end')}: end 2026-11-01 00:00 is before start 2026-11-10 00:00"],
        id="end-before-start",
    ),
    pytest.param(
        doc(export(start="0000-01-01")),
        [
            f"{at(A, '/exports/0/start')}: start must be a date (YYYY-MM-DD) or an ISO 8601 "
            "date and time, not '0000-01-01'"
        ],
        id="start-year-0",
    ),
    pytest.param(
        doc(export(start=["2026-11-01"])),
        [
            f"{at(A, '/exports/0/start')}: start must be a date (YYYY-MM-DD) or an ISO 8601 "
            "date and time, not ['2026-11-01']"
        ],
        id="start-list",
    ),
    # --- shared output locations
    pytest.param(
        doc(
            export(output={"name": "local", "path": "shared"}),
            export("globex_x", tenant="globex", output={"name": "local", "path": "shared"}),
        ),
        [
            f"{at(repr('globex_x'), '/exports/1/output')}: local:shared of export 'globex_x' "
            f"(tenant 'globex') overlaps local:shared of export 'acme_x' (tenant 'acme', "
            f"/exports/0); {SHARED}"
        ],
        id="shared-equal-paths",
    ),
    pytest.param(
        doc(
            export(output={"name": "local", "path": "shared/acme"}),
            export("globex_x", tenant="globex", output={"name": "local", "path": "shared"}),
        ),
        [
            f"{at(repr('globex_x'), '/exports/1/output')}: local:shared of export 'globex_x' "
            f"(tenant 'globex') overlaps local:shared/acme of export 'acme_x' (tenant 'acme', "
            f"/exports/0); {SHARED}"
        ],
        id="shared-nested-paths",
    ),
    pytest.param(
        doc(
            export(output={"name": "local", "path": "globex/raw"}),
            export("globex_x", tenant="globex", output={"name": "local", "path": "/"}),
        ),
        [
            f"{at(repr('globex_x'), '/exports/1/output')}: local:/ of export 'globex_x' "
            f"(tenant 'globex') overlaps local:globex/raw of export 'acme_x' (tenant 'acme', "
            f"/exports/0); {SHARED}"
        ],
        id="shared-empty-path",
    ),
    pytest.param(
        doc(
            export(output={"name": "acme_s3"}),
            export("globex_x", tenant="globex", output={"name": "globex_s3", "path": "raw"}),
            outputs={"acme_s3": S3_A, "globex_s3": S3_B},
        ),
        [
            f"{at(repr('globex_x'), '/exports/1/output')}: globex_s3:raw of export 'globex_x' "
            f"(tenant 'globex') overlaps acme_s3:/ of export 'acme_x' (tenant 'acme', "
            f"/exports/0); {SHARED}"
        ],
        id="shared-two-outputs-one-s3-bucket",
    ),
    pytest.param(
        doc(
            export(output={"name": "acme_dir", "path": "out"}),
            export("globex_x", tenant="globex", output={"name": "globex_dir", "path": "out"}),
            outputs={
                "acme_dir": {"type": "local", "path": "/srv/exports/"},
                "globex_dir": {"type": "local", "path": "/srv/./tmp/../exports"},
            },
        ),
        [
            f"{at(repr('globex_x'), '/exports/1/output')}: globex_dir:out of export 'globex_x' "
            f"(tenant 'globex') overlaps acme_dir:out of export 'acme_x' (tenant 'acme', "
            f"/exports/0); {SHARED}"
        ],
        id="shared-two-outputs-one-local-folder",
    ),
    pytest.param(
        doc(
            export(output={"name": "acme_az", "path": "x"}),
            export("globex_x", tenant="globex", output={"name": "globex_az", "path": "p/x/y"}),
            outputs={
                "acme_az": {"type": "azure", "container": "c", "prefix": "p"},
                "globex_az": {"type": "azure", "container": "c"},
            },
        ),
        [
            f"{at(repr('globex_x'), '/exports/1/output')}: globex_az:p/x/y of export 'globex_x' "
            f"(tenant 'globex') overlaps acme_az:x of export 'acme_x' (tenant 'acme', "
            f"/exports/0); {SHARED}"
        ],
        id="shared-azure-prefix-and-path",
    ),
    # --- types and schedule fields Dagster would refuse later
    pytest.param(
        doc(export(format=["csv"])),
        [f"{at(A, '/exports/0/format')}: Input should be a valid string"],
        id="format-list",
    ),
    pytest.param(
        doc(export(schedule={"timezone": "Europe"})),
        [
            f"{at(A, '/exports/0/schedule/timezone')}: unknown time zone 'Europe' (use an IANA "
            "name like Europe/Berlin)"
        ],
        id="timezone-folder",
    ),
    pytest.param(
        doc(export(schedule={"timezone": "x" * 300})),
        [
            f"{at(A, '/exports/0/schedule/timezone')}: unknown time zone {'x' * 300!r} (use an "
            "IANA name like Europe/Berlin)"
        ],
        id="timezone-overlong",
    ),
    pytest.param(
        doc(export(schedule={"minute": 60})),
        [f"{at(A, '/exports/0/schedule/minute')}: Input should be less than or equal to 59"],
        id="schedule-minute",
    ),
    pytest.param(
        doc(["name", "acme_x"]),
        [f"{at('#0', '/exports/0')}: must be a mapping"],
        id="export-list",
    ),
]


@pytest.mark.parametrize(("document", "expected"), REFUSED)
def test_refused_definition_has_its_exact_message(
    document: dict[str, Any], expected: list[str]
) -> None:
    assert problems_of(document) == expected


ACCEPTED = [
    pytest.param(
        doc(
            export(output={"name": "local", "path": "shared"}),
            export("acme_y", output={"name": "local", "path": "shared"}),
            export("acme_z", output={"name": "local", "path": ""}),
        ),
        id="same-tenant-shares",
    ),
    pytest.param(
        doc(
            export(output={"name": "local", "path": "shared"}),
            export("globex_x", tenant="globex", output={"name": "local", "path": "shared2"}),
        ),
        id="segment-not-string-prefix",
    ),
    pytest.param(
        doc(
            export(output={"name": "acme_s3"}),
            export("globex_x", tenant="globex", output={"name": "globex_gcs"}),
            outputs={
                "acme_s3": {"type": "s3", "bucket": "same"},
                "globex_gcs": {"type": "gcs", "bucket": "same"},
            },
        ),
        id="same-bucket-name-other-service",
    ),
    pytest.param(
        doc(
            export(output={"name": "acme_only"}),
            outputs={"acme_only": {"type": "local", "path": "/a", "tenant": "acme"}},
        ),
        id="tenant-owned-output-by-its-tenant",
    ),
    pytest.param(doc(export(start="2000-01-01", end="2000-01-30")), id="first-days-of-2000"),
    pytest.param(doc(export(start="2100-12-02", end="2100-12-31")), id="last-days-of-2100"),
]


@pytest.mark.parametrize("document", ACCEPTED)
def test_accepted_edge_case_validates(document: dict[str, Any]) -> None:
    parsed = parse_definitions(document, FILE, now=NOW)
    assert len(parsed.exports) == len(document["exports"])


def test_conflicts_are_found_without_comparing_pairs() -> None:
    """20,000 exports of 200 tenants: linear in the path segments, one conflict found."""
    placed = [
        Placed(i, f"t{i % 200}", ("local", "srv", f"t{i % 200}", f"e{i}")) for i in range(20_000)
    ]
    placed.append(Placed(20_000, "intruder", ("local", "srv", "t7")))
    conflicts = location_conflicts(placed)
    assert [(a.index, b.index) for a, b in conflicts] == [(20_000, 7)]


# --- the code location built from accepted edge cases

N63 = "a" + "b" * 61 + "c"  # 63 characters
EDGE_FILE = {
    "outputs": {
        f"o{'-' * 61}1": {"type": "local", "path": "OUT/hyphen", "tenant": "acme-corp"},
        "o" + "x" * 62: {"type": "local", "path": "OUT/long"},
    },
    "exports": [
        export(
            N63,
            tenant="t" + "-" * 61 + "t",
            output={"name": "o" + "x" * 62, "path": "long"},
            delivery={"email": ["data@long.example"]},
        ),
        export(
            "acme-daily-raw",
            tenant="acme-corp",
            output={"name": f"o{'-' * 61}1", "path": "raw"},
            schedule={"hour": 2, "timezone": "Europe/Berlin"},
            delivery={
                "webhook": {"url": "https://hooks.acme.example/x", "secret_env": "ACME_HOOK"},
                "email": ["data@acme.example"],
            },
        ),
        export(
            "0-weekly",
            tenant="acme-corp",
            cadence="weekly",
            start="2026-11-02",
            schedule={"hour": 3, "day_of_week": "monday"},
            output={"name": f"o{'-' * 61}1", "path": "weekly"},
        ),
    ],
}


def write_file(tmp_path: Path, document: dict[str, Any]) -> Settings:
    text = yaml.safe_dump(document).replace("OUT", str(tmp_path / "out"))
    (tmp_path / "exports.yaml").write_text(text)
    return Settings.from_env(
        {
            "EXPORTER_LANDING_URL": str(tmp_path / "landing"),
            "EXPORTER_LAKE_URL": str(tmp_path / "lake"),
            "EXPORTER_EXPORTS_FILE": str(tmp_path / "exports.yaml"),
        }
    )


def test_edge_names_build_a_loadable_code_location(tmp_path: Path) -> None:
    defs = build_definitions(write_file(tmp_path, EDGE_FILE))
    dg.Definitions.validate_loadable(defs)
    jobs = {job.name for job in defs.resolve_all_job_defs()}
    assert {f"export_{N63}", "export_acme_daily_raw", "export_0_weekly"} <= jobs
    repository = defs.get_repository_def()
    assert {s.name for s in repository.schedule_defs} >= {
        "export_acme_daily_raw_schedule",
        "export_0_weekly_schedule",
    }
    assert {s.name for s in repository.sensor_defs} == {
        "deliver_manifests_sensor",  # one for every delivering export, whatever its output
        "export_failure_notice_sensor",
        "export_canceled_notice_sensor",
    }
    resources = set(repository.get_top_level_resources())
    assert {"outputs", "webhooks", "smtp"} <= resources
    outputs = (defs.resources or {})["outputs"]
    assert isinstance(outputs, OutputsResource)
    assert set(outputs.outputs()) == {f"o{'-' * 61}1", f"o{'x' * 62}"}
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey(["exports", "acme-daily-raw"]))
    assert node.owners == ["team:acme-corp"] and node.group_name == "tenant_acme_corp"
    assert node.tags["tenant"] == "acme-corp" and node.tags["export"] == "acme-daily-raw"
    assert graph.get(dg.AssetKey(["exports", N63])).tags["tenant"] == "t" + "-" * 61 + "t"
    job = defs.resolve_job_def("export_acme_daily_raw")
    assert job.tags["export"] == "acme-daily-raw"


def test_an_export_that_fails_to_build_is_left_out_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = write_file(
        tmp_path,
        doc(
            export("acme_ok", output={"name": "local", "path": "ok"}),
            export(
                "acme_broken",
                output={"name": "local", "path": "broken"},
                schedule={"hour": 1},
                delivery={"webhook": {"url": "https://h.example/", "secret_env": "HOOK"}},
            ),
            export("globex_ok", tenant="globex", output={"name": "local", "path": "globex"}),
            outputs={"local": {"type": "local", "path": str(tmp_path / "out")}},
        ),
    )
    build_job = loading.build_export_job

    def fails_for_one(definition: Any, *args: Any) -> Any:
        if definition.name == "acme_broken":
            raise dg.DagsterInvalidDefinitionError("Invalid tag value for key: tenant")
        return build_job(definition, *args)

    monkeypatch.setattr(loading, "build_export_job", fails_for_one)
    with caplog.at_level(logging.WARNING, logger=loading.__name__):
        defs = build_definitions(settings)
    jobs = {job.name for job in defs.resolve_all_job_defs()}
    assert {"export_acme_ok", "export_globex_ok"} <= jobs
    assert "export_acme_broken" not in jobs
    repository = defs.get_repository_def()
    assert [s.name for s in repository.schedule_defs] == ["retention_schedule"]
    # Only the failure-notice sensors: no delivery sensor is left for the broken export.
    assert {s.name for s in repository.sensor_defs} == {
        "export_failure_notice_sensor",
        "export_canceled_notice_sensor",
    }
    resources = set(repository.get_top_level_resources())
    assert not any(key.startswith("webhook_") for key in resources)
    reason = "DagsterInvalidDefinitionError: Invalid tag value for key: tenant"
    assert caplog.messages == [f"export acme_broken is not loaded: {reason}"]
    spec = defs.resolve_asset_graph().get(dg.AssetKey(["exports", "acme_broken"]))
    assert spec.description == f"Not loaded: {reason}"
    assert not spec.is_executable


def test_a_lenient_load_leaves_out_only_the_bad_entries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = write_file(
        tmp_path,
        doc(
            export("acme_ok", output={"name": "local", "path": "ok"}),
            export("acme_old", start="0001-01-01"),
            export("Bad Name"),
            export("acme_ok", output={"name": "local", "path": "again"}),
            export("globex_in_acme", tenant="globex", output={"name": "local", "path": "ok"}),
            outputs={"local": {"type": "local", "path": str(tmp_path / "out")}},
        ),
    )
    with caplog.at_level(logging.WARNING, logger=loading.__name__):
        defs = build_definitions(settings)
    assert {j.name for j in defs.resolve_all_job_defs() if j.name.startswith("export_")} == {
        "export_acme_ok",
        "export_on_demand",
    }
    where = tmp_path / "exports.yaml"
    assert caplog.messages == [
        f"export acme_old is not loaded: {where}: export 'acme_old' (/exports/1/start): "
        f"start 0001-01-01 {DATES}",
        f"export #2 is not loaded: {where}: export 'Bad Name' (/exports/2/name): "
        f"name {NAME_CHARS} (not ' ', 'B', 'N')",
        f"export acme_ok is not loaded: {where}: export 'acme_ok' (/exports/3/name): name "
        "'acme_ok' is already used by /exports/0",
        f"export globex_in_acme is not loaded: {where}: export 'globex_in_acme' "
        "(/exports/4/output): local:ok of export 'globex_in_acme' (tenant 'globex') overlaps "
        f"local:ok of export 'acme_ok' (tenant 'acme', /exports/0); {SHARED}",
    ]
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey(["exports", "acme_old"])).description.startswith("Not loaded:")
    assert graph.get(dg.AssetKey(["exports_not_loaded", "export_2"])).metadata["not_loaded"]
    assert graph.get(dg.AssetKey(["exports_not_loaded", "export_3"])) is not None


# --- files that cannot be read, through the console script


def validate(path: str, cwd: Path) -> tuple[int, str, str]:
    done = subprocess.run(
        [str(SCRIPT), "validate", path], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.servers  # runs the console script: a process loading Dagster
def test_cli_refuses_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes("exports: []\n# café\n".encode("latin-1"))
    assert validate("latin1.yaml", tmp_path) == (
        1,
        "",
        "latin1.yaml: not UTF-8 text (byte 0xe9 at offset 17)\n",
    )


@pytest.mark.servers  # runs the console script: a process loading Dagster
def test_cli_refuses_a_directory(tmp_path: Path) -> None:
    (tmp_path / "defs").mkdir()
    assert validate("defs", tmp_path) == (1, "", "defs: is a directory, not a definitions file\n")


@pytest.mark.servers  # runs the console script: a process loading Dagster
def test_cli_refuses_a_missing_file(tmp_path: Path) -> None:
    assert validate("nofile.yaml", tmp_path) == (1, "", "nofile.yaml: no such file\n")


@pytest.mark.servers  # runs the console script: a process loading Dagster
def test_cli_refuses_a_path_through_a_file(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("")
    assert validate("plain/exports.yaml", tmp_path) == (
        1,
        "",
        "plain/exports.yaml: cannot be read (Not a directory)\n",
    )


@pytest.mark.servers  # runs the console script: a process loading Dagster
@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_cli_refuses_an_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "secret.yaml").write_text("exports: []\n")
    (tmp_path / "secret.yaml").chmod(0)
    assert validate("secret.yaml", tmp_path) == (
        1,
        "",
        "secret.yaml: cannot be read (permission denied)\n",
    )


@pytest.mark.servers  # runs the console script: a process loading Dagster
def test_cli_reports_a_yaml_date_python_cannot_hold(tmp_path: Path) -> None:
    body = yaml.safe_dump(doc(export()), sort_keys=False).replace("'2026-11-01'", "0000-01-01")
    (tmp_path / "defs.yaml").write_text(body)
    assert validate("defs.yaml", tmp_path) == (
        1,
        "",
        "defs.yaml: export 'acme_x' (/exports/0/start): start must be a date (YYYY-MM-DD) or "
        "an ISO 8601 date and time, not '0000-01-01'\n",
    )


@pytest.mark.servers  # runs the console script: a process loading Dagster
def test_cli_reports_a_yaml_date_out_of_range(tmp_path: Path) -> None:
    body = yaml.safe_dump(doc(export()), sort_keys=False).replace("'2026-11-01'", "0001-01-01")
    (tmp_path / "defs.yaml").write_text(body)
    assert validate("defs.yaml", tmp_path) == (
        1,
        "",
        f"defs.yaml: export 'acme_x' (/exports/0/start): start 0001-01-01 {DATES}\n",
    )


@pytest.mark.servers  # runs the console script: a process loading Dagster
def test_cli_reports_yaml_nested_too_deeply(tmp_path: Path) -> None:
    (tmp_path / "deep.yaml").write_text("exports: " + "[" * 5000 + "]" * 5000 + "\n")
    assert validate("deep.yaml", tmp_path) == (
        1,
        "",
        "deep.yaml: not valid YAML: nested too deeply\n",
    )
