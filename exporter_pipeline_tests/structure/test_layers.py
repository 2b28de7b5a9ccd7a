"""The package's layers: a pure core that never loads Dagster, under a thin Dagster shell.

Layers, lowest first (a module imports only its own layer or lower ones):

    base          settings, errors, checksums, windows, names, shards, progress
    schema        events.schema
    destinations  destinations.* (each backend a leaf; the registry beside them)
    lake          lake (key layout and hourly files)
    core          events, derived, exports, delivery, privacy
    store         store.* (the definitions store: SQLAlchemy models, migrations, apply)
    api           api.* (the HTTP API: FastAPI over the store and Dagster's GraphQL)
    shell         defs.* (assets, jobs, schedules, sensors, resources)
    app           definitions, cli, demo
"""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "exporter_pipeline"
LAYERS = (
    ("base", ("settings", "errors", "checksums", "windows", "names", "shards", "progress")),
    ("schema", ("events.schema",)),
    ("destinations", ("destinations",)),
    ("lake", ("lake",)),
    ("core", ("events", "derived", "exports", "delivery", "privacy")),
    ("store", ("store",)),
    ("api", ("api",)),
    ("shell", ("defs",)),
    ("app", ("definitions", "cli", "demo", "__init__")),
)


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "__init__"
        found[name] = path
    return found


def layer_of(module: str) -> int:
    """The index of the most specific layer prefix matching `module`."""
    best, best_length = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    assert best is not None, f"module {module} is in no layer: add it to LAYERS"
    return best


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every package module `path` imports, at any depth of the file (lazy imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if not name.startswith("exporter_pipeline"):
                continue
            short = name.removeprefix("exporter_pipeline").lstrip(".") or "__init__"
            if short in known:
                found.add(short)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(path, known) - {name} for name, path in found.items()}


def test_no_import_cycle() -> None:
    try:
        tuple(graphlib.TopologicalSorter(graph()).static_order())
    except graphlib.CycleError as error:
        pytest.fail(f"import cycle: {' -> '.join(error.args[1])}")


def test_each_module_imports_only_its_layer_or_lower() -> None:
    wrong = [
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for module, targets in sorted(graph().items())
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert not wrong, "\n".join(wrong)


def test_core_modules_do_not_load_dagster() -> None:
    shell = layer_of("defs")
    core = [f"exporter_pipeline.{m}" for m in modules() if layer_of(m) < shell]
    script = (
        "import importlib, sys\n"
        f"for name in {core!r}:\n"
        "    importlib.import_module(name)\n"
        "    if 'dagster' in sys.modules:\n"
        "        print(name)\n"
        "        break\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout == "", f"importing {result.stdout.strip()} loads dagster"
