"""The Kubernetes deployment (deploy/), checked without a cluster: the values for Dagster's
official Helm chart read with PyYAML (one user deployment per shard as `exporter-pipeline
workspace` gives them, one image, no secret written, the instance sections of dagster.yaml),
the Dockerfile and .dockerignore read as text. No server (unit tier). Where helm or a Docker
daemon is installed, the chart is rendered and the image built for real; those two tests
mark themselves `servers` (a chart download, a slow build) and skip, saying why, elsewhere."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from exporter_pipeline.shards import Shard, workspace_yaml

ROOT = Path(__file__).resolve().parents[1]
VALUES = ROOT / "deploy" / "helm" / "values.yaml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
CHART_REPO = "https://dagster-io.github.io/helm"

# What the image is built from: the only paths the Dockerfile copies from the context.
IMAGE_SOURCES = {"pyproject.toml", "uv.lock", "README.md", "exporter_pipeline", "exports.yaml"}
# Words that make a key (or an env variable's name) secret-looking.
SECRET_WORD = re.compile(r"password|secret|token|credential|key", re.IGNORECASE)
# Text that is a credential whatever its key: a URL with a password, a webhook secret, an
# AWS access key id, a PEM block.
CREDENTIAL_TEXT = re.compile(r"://[^/\s:@]+:[^/\s@]+@|whsec_|AKIA[0-9A-Z]{16}|-----BEGIN")


def values() -> dict[str, Any]:
    loaded = yaml.safe_load(VALUES.read_text())
    assert isinstance(loaded, dict)
    return loaded


def deployments() -> list[dict[str, Any]]:
    return values()["dagster-user-deployments"]["deployments"]  # type: ignore[no-any-return]


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in deployment["env"]}


def locked_dagster_version() -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return next(p["version"] for p in lock["package"] if p["name"] == "dagster")


def test_one_user_deployment_per_shard_as_the_workspace_command_gives_them() -> None:
    listed = deployments()
    count = len(listed)
    module = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dagster"]
    workspace = yaml.safe_load(workspace_yaml(count))["load_from"]
    assert count >= 2 and len(workspace) == count
    for number, (deployment, entry) in enumerate(zip(listed, workspace, strict=True)):
        server = entry["grpc_server"]
        assert env_of(deployment)["EXPORTER_SHARD"] == f"{number}/{count}"
        # Kubernetes names allow no `_`: the CLI's location name with `-` instead.
        assert deployment["name"] == Shard(number, count).location_name.replace("_", "-")
        assert deployment["name"] == server["location_name"].replace("_", "-")
        assert deployment["port"] == server["port"]
        assert deployment["codeServerArgs"] == ["-m", module["module_name"]]
        # The name is also the Service's: a DNS-1035 label.
        assert re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", deployment["name"])
    assert len({d["name"] for d in listed}) == count
    assert len({d["port"] for d in listed}) == count


def test_every_shard_runs_the_same_image_with_the_same_settings() -> None:
    first, *others = deployments()
    assert first["image"]["repository"] and first["image"]["tag"]
    for deployment in others:
        for key in ("image", "envSecrets", "volumes", "volumeMounts", "podSecurityContext"):
            assert deployment[key] == first[key], key
        shared = {k: v for k, v in env_of(deployment).items() if k != "EXPORTER_SHARD"}
        assert shared == {k: v for k, v in env_of(first).items() if k != "EXPORTER_SHARD"}
    for deployment in deployments():
        # A run pod gets its location's env, Secrets and volumes: it loads the same shard.
        assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}


def test_run_pods_get_the_secrets_of_the_code_servers() -> None:
    launcher = values()["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    run_secrets = {s["name"] for s in launcher["config"]["k8sRunLauncher"]["envSecrets"]}
    for deployment in deployments():
        assert {s["name"] for s in deployment["envSecrets"]} <= run_secrets


def secret_literals(node: Any, path: tuple[str, ...] = ()) -> Iterator[str]:
    """Where `node` writes a secret: a non-empty text under a secret-looking key that is not
    a reference to a Kubernetes Secret, an env entry whose name looks secret and that has a
    value, or credential-shaped text anywhere."""
    where = "/".join(path)
    if isinstance(node, dict):
        name = node.get("name")
        if "value" in node and isinstance(name, str) and SECRET_WORD.search(name):
            if node["value"] not in (None, ""):
                yield f"{where}: env {name} has a value"
        for key, value in node.items():
            yield from secret_literals(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from secret_literals(item, (*path, str(index)))
    elif isinstance(node, str) and node:
        if CREDENTIAL_TEXT.search(node):
            yield f"{where}: credential-shaped text"
        key = path[-1] if path else ""
        refers_to_secret = key.endswith("SecretName") or any(
            part in ("envSecrets", "secretKeyRef", "secretRef") for part in path
        )
        # The `key` of a tag concurrency limit is a run tag's name.
        tag_name = key == "key" and "tag_concurrency_limits" in path
        if SECRET_WORD.search(key) and not refers_to_secret and not tag_name:
            yield f"{where}: {key} is written here"


def test_no_secret_is_written_in_the_values() -> None:
    assert list(secret_literals(values())) == []
    # Where the secrets are instead: Secrets named for the instance's password and the pods.
    assert values()["global"]["postgresqlSecretName"]
    assert values()["generatePostgresqlPasswordSecret"] is False
    assert values()["postgresql"]["postgresqlPassword"] == ""


@pytest.mark.parametrize(
    "document",
    [
        {"postgresql": {"postgresqlPassword": "hunter2"}},
        {"env": [{"name": "EXPORTER_SECRET_KEY", "value": "c2VjcmV0"}]},
        {"env": [{"name": "EXPORTER_DATABASE_URL", "value": "postgresql://u:pw@db/x"}]},
        {"config": {"secretKey": "abc"}},
        {"env": [{"name": "ACME_HOOK_SECRET", "value": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]},
    ],
)
def test_the_secret_check_finds_secrets(document: dict[str, Any]) -> None:
    assert list(secret_literals(document))


def test_the_instance_sections_are_those_of_dagster_yaml() -> None:
    """The run queue, tenant pools and run monitoring the e2e suite runs with dagster.yaml."""
    local = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    chart = values()
    extra = chart["additionalInstanceConfig"]
    assert chart["telemetry"] == local["telemetry"]
    assert set(extra) == set(local) - {"telemetry"}
    assert extra["nux"] == local["nux"]
    # The same tenant rules; the cluster may run more runs at once than one machine.
    assert extra["concurrency"]["pools"] == local["concurrency"]["pools"]
    runs, local_runs = extra["concurrency"]["runs"], local["concurrency"]["runs"]
    assert runs["tag_concurrency_limits"] == local_runs["tag_concurrency_limits"]
    assert runs["max_concurrent_runs"] >= local_runs["max_concurrent_runs"]
    assert set(extra["run_monitoring"]) == set(local["run_monitoring"])
    for key, value in local["run_monitoring"].items():
        # Only the start timeout is longer in a cluster (node scale-up, image pull).
        if key != "start_timeout_seconds":
            assert extra["run_monitoring"][key] == value, key
    daemon = chart["dagsterDaemon"]
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    # The chart writes no coordinator config (Dagster refuses it beside `concurrency`), and
    # no second run_monitoring section.
    assert not any(daemon["runCoordinator"]["config"]["queuedRunCoordinator"].values())
    assert daemon["runMonitoring"]["enabled"] is False


def test_compute_logs_go_to_the_lake_bucket() -> None:
    manager = values()["computeLogManager"]
    lake = urlsplit(env_of(deployments()[0])["EXPORTER_LAKE_URL"])
    assert manager["type"] == "S3ComputeLogManager"
    assert lake.scheme == "s3"
    assert manager["config"]["s3ComputeLogManager"] == {
        "bucket": lake.netloc,
        "prefix": "compute-logs",
    }


def test_the_chart_version_is_the_locked_dagster() -> None:
    version = locked_dagster_version()
    assert f"chart version {version}" in VALUES.read_text()
    assert f"--version {version}" in VALUES.read_text()
    assert f"--version {version}" in (ROOT / "deploy" / "README.md").read_text()


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_the_image_installs_the_lock_without_dev_tools_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    runs = [arg for op, arg in instructions if op == "RUN"]
    syncs = [arg for arg in runs if "uv sync" in arg]
    assert syncs and all("uv sync --frozen" in arg and "--no-dev" in arg for arg in syncs)
    makefile = (ROOT / "Makefile").read_text()
    uv_version = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert uv_version and any(f'"uv=={uv_version[1]}"' in arg for arg in runs)
    assert [arg.split()[0] for op, arg in instructions if op == "FROM"] == ["python:3.11-slim"] * 2
    user = [arg for op, arg in instructions if op == "USER"][-1]
    assert user.split(":")[0] not in ("root", "0")
    assert ("EXPOSE", "4000") in instructions
    command = [arg for op, arg in instructions if op == "CMD"][-1]
    assert '"code-server", "start", "-m", "exporter_pipeline.definitions"' in command
    copied = [arg.split()[:-1] for op, arg in instructions if op == "COPY"]
    sources = {src.rstrip("/") for args in copied if "--from=build" not in args for src in args}
    assert sources == IMAGE_SOURCES


def test_the_build_context_holds_only_what_the_image_copies() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    assert {p[1:].rstrip("/") for p in patterns if p.startswith("!")} == IMAGE_SOURCES
    for local in (".venv", "data", "tools/azurite/node_modules", ".dagster_home"):
        assert local in patterns


# `servers`: downloads the chart and runs helm (where it is installed).
@pytest.mark.servers
def test_the_chart_renders_the_values(tmp_path: Path) -> None:
    """`helm lint` and `helm template` with the chart of the locked version: the shards'
    servers, the workspace and the instance as Dagster will read them."""
    if shutil.which("helm") is None:
        pytest.skip("helm is not installed: the values were checked as YAML only")
    chart = os.environ.get("EXPORTER_HELM_CHART") or _pull_chart(tmp_path)
    subprocess.run(["helm", "lint", chart, "-f", str(VALUES)], check=True)
    rendered = subprocess.run(
        ["helm", "template", "dagster", chart, "-f", str(VALUES)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    files = {
        name: text
        for document in documents
        if document["kind"] == "ConfigMap"
        for name, text in (document.get("data") or {}).items()
    }
    instance = yaml.safe_load(files["dagster.yaml"])
    extra = values()["additionalInstanceConfig"]
    assert instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert "config" not in instance["run_coordinator"]
    assert instance["concurrency"] == extra["concurrency"]
    assert instance["run_monitoring"] == extra["run_monitoring"]
    assert instance["compute_logs"]["class"] == "S3ComputeLogManager"
    assert instance["run_launcher"]["class"] == "K8sRunLauncher"
    workspace = yaml.safe_load(files["workspace.yaml"])
    servers = [entry["grpc_server"] for entry in workspace["load_from"]]
    assert [(s["location_name"], s["port"]) for s in servers] == [
        (d["name"], d["port"]) for d in deployments()
    ]


def _pull_chart(tmp_path: Path) -> str:
    version = locked_dagster_version()
    subprocess.run(
        ["helm", "pull", "dagster", "--repo", CHART_REPO, "--version", version, "--untar"],
        cwd=tmp_path,
        check=True,
    )
    return str(tmp_path / "dagster")


# `servers`: a whole image build (where a Docker daemon runs).
@pytest.mark.servers
def test_the_image_builds_and_runs_as_non_root() -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True).returncode:
        pytest.skip("no Docker daemon here: the Dockerfile was checked as text only")
    tag = "exporter-pipeline:test-deploy"
    subprocess.run([docker, "build", "-f", str(DOCKERFILE), "-t", tag, str(ROOT)], check=True)
    check = "import os, exporter_pipeline, dagster_k8s, dagster_aws; print(os.getuid())"
    uid = subprocess.run(
        [docker, "run", "--rm", tag, "python", "-c", check],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert int(uid) != 0
    listing = subprocess.run(
        [docker, "run", "--rm", tag, "find", "/app", "-name", "exporter_pipeline_tests"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert listing.strip() == ""
