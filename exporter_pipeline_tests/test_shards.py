"""Shards: every tenant in exactly one code location, the lake's assets in shard 0 only."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
import yaml

from exporter_pipeline.definitions import build_definitions
from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.settings import Settings
from exporter_pipeline.shards import Shard, shard_of, workspace_yaml

TENANTS = [f"tenant{n}" for n in range(12)]


def expected_shard(tenant: str, count: int) -> int:
    """The documented rule, computed here on its own: the first 8 bytes of SHA-256."""
    return int(hashlib.sha256(tenant.encode()).hexdigest()[:16], 16) % count


def test_a_tenants_shard_is_the_documented_stable_hash() -> None:
    for tenant in ["acme", "globex", "t00000", "ünïcode", *TENANTS]:
        for count in (1, 2, 3, 8, 64):
            assert shard_of(tenant, count) == expected_shard(tenant, count)
    # Stable across processes (Python's own hash() is salted per process).
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            "from exporter_pipeline.shards import shard_of as s; print(s('acme', 8))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(other.stdout) == shard_of("acme", 8)


def test_tenants_spread_over_the_shards() -> None:
    counts = Counter(shard_of(f"t{n:05d}", 8) for n in range(8000))
    assert sorted(counts) == list(range(8))
    assert max(counts.values()) < 1.1 * 1000 and min(counts.values()) > 0.9 * 1000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("  ", None),
        ("0/1", None),  # DESIGN.md's default: one location holding everything
        ("0/2", Shard(0, 2)),
        ("3/8", Shard(3, 8)),
        (" 2 / 4 ", Shard(2, 4)),
    ],
)
def test_shard_setting_parses(text: str, expected: Shard | None) -> None:
    assert Shard.parse(text) == expected


@pytest.mark.parametrize("text", ["4/4", "5/4", "1", "a/b", "1/0", "0/0", "-1/2", "1/2/3"])
def test_a_bad_shard_setting_is_a_clear_error(text: str) -> None:
    with pytest.raises(DefinitionError) as error:
        Shard.parse(text)
    assert str(error.value) == (f"EXPORTER_SHARD={text!r}: expected k/N with 0 <= k < N, e.g. 0/4")


def definitions_file(tmp_path: Path) -> Path:
    outputs = {
        f"out_{t}": {"type": "local", "path": str(tmp_path / "out" / t), "tenant": t}
        for t in TENANTS
    }
    outputs["shared"] = {"type": "local", "path": str(tmp_path / "shared")}
    exports = [
        {
            "name": f"{t}_{kind}",
            "tenant": t,
            "dataset": "raw",
            "format": "csv",
            "cadence": "daily",
            "start": "2026-11-01",
            "output": {"name": f"out_{t}" if kind == "own" else "shared", "path": f"{t}/{kind}"},
        }
        for t in TENANTS
        for kind in ("own", "shared")
    ]
    exports.append({"name": "Bad Name", "tenant": "acme"})  # rejected: no tenant of a shard
    path = tmp_path / "exports.yaml"
    path.write_text(yaml.safe_dump({"outputs": outputs, "exports": exports}))
    return path


def settings(tmp_path: Path, shard: str) -> Settings:
    # A definitions store per load, each applying the file on its first load: every load
    # then sees the file's entries that no store can hold (a bad name), as the whole does.
    store = tmp_path / f"store-{shard.replace('/', '-') or 'whole'}.sqlite3"
    return Settings.from_env(
        {
            "EXPORTER_LANDING_URL": str(tmp_path / "landing"),
            "EXPORTER_LAKE_URL": str(tmp_path / "lake"),
            "EXPORTER_EXPORTS_FILE": str(definitions_file(tmp_path)),
            "EXPORTER_DATABASE_URL": f"sqlite:///{store}",
            "EXPORTER_SHARD": shard,
        }
    )


def export_jobs(defs: dg.Definitions) -> set[str]:
    jobs = {j.name for j in defs.resolve_all_job_defs() if j.name.startswith("export_")}
    return jobs - {"export_on_demand"}


def test_shards_split_the_tenants_and_shard_0_holds_the_lake(tmp_path: Path) -> None:
    whole = build_definitions(settings(tmp_path, ""))
    shards = [build_definitions(settings(tmp_path, f"{k}/3")) for k in (0, 1, 2)]
    jobs = [export_jobs(d) for d in shards]
    assert set().union(*jobs) == export_jobs(whole)
    assert sum(len(j) for j in jobs) == len(export_jobs(whole)) == 2 * len(TENANTS)
    for number, found in enumerate(jobs):
        tenants = {t for t in TENANTS if expected_shard(t, 3) == number}
        assert found == {f"export_{t}_{kind}" for t in tenants for kind in ("own", "shared")}
    lake = {dg.AssetKey("raw_events"), dg.AssetKey(["exports_not_loaded", "export_24"])}
    for number, defs in enumerate(shards):
        dg.Definitions.validate_loadable(defs)
        graph = defs.resolve_asset_graph()
        # Other shards know the lake's assets only as the upstream of their exports.
        defined = {k for k in graph.get_all_asset_keys() if graph.get(k).is_executable}
        defined |= {k for k in graph.get_all_asset_keys() if k.path[0] == "exports_not_loaded"}
        assert (lake <= defined) == (number == 0), number
        assert not (lake & defined) or number == 0
        # Each shard's delivery and on-demand jobs exist on their own.
        assert {"deliver_export", "export_on_demand"} <= {
            j.name for j in defs.resolve_all_job_defs()
        }


def test_workspace_for_n_shards_names_a_code_server_each() -> None:
    document = yaml.safe_load(workspace_yaml(3, "10.0.0.5", 4100))
    assert document == {
        "load_from": [
            {
                "grpc_server": {
                    "host": "10.0.0.5",
                    "port": 4100 + k,
                    "location_name": f"exporter_pipeline_shard_{k}_of_3",
                }
            }
            for k in (0, 1, 2)
        ]
    }
    text = workspace_yaml(2)
    assert (
        "# EXPORTER_SHARD=1/2 dagster code-server start -m exporter_pipeline.definitions"
        " -h 127.0.0.1 -p 4001 --location-name exporter_pipeline_shard_1_of_2" in text
    )
