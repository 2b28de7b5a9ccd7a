"""kill -9 at seeded random points of an export's publication, on a local output: a real
child process (kill_child.py) runs run B over a window that run A published and SIGKILLs
itself before, during or after the k-th call that changes the output. After each kill
the visible state is the old window or the new one (no name ever holds other bytes),
and after the next run it is exactly the new window, with no temporary or work folder
left behind."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter_pipeline.destinations.local import LocalDestination
from exporter_pipeline.exports.execution import export_window
from exporter_pipeline_tests.exports.conftest import Lake, definition
from exporter_pipeline_tests.exports.kill_child import RUN_B, KillAt
from exporter_pipeline_tests.exports.publish_checks import (
    END,
    MANIFEST,
    START,
    contents,
    listed,
)
from exporter_pipeline_tests.files import file_digests

SEED = 19
POINTS = 24
RUN_A = {"format": "parquet", "max_file_bytes": 100_000}


@pytest.fixture
def export_name() -> Iterator[str]:
    """An export name of its own, so its work folders are this test's alone."""
    name = f"kill_{uuid.uuid4().hex[:8]}"
    yield name
    for folder in Path(tempfile.gettempdir()).glob(f"export-{name}-*"):
        shutil.rmtree(folder, ignore_errors=True)


def visible_state(out: Path, old: bytes, new: dict[str, str], seen: dict[str, str]) -> str:
    """ "old" or "new": the manifest present and every file it lists, checked; and no data
    file under a name seen before holds other bytes."""
    manifest = (out / MANIFEST).read_bytes()
    contents(LocalDestination(out), manifest)  # every listed file, bytes and sha256
    state = "old" if manifest == old else "new"
    if state == "new":
        assert {k: e["sha256"] for k, e in listed(manifest).items()} == new
    for key, digest in file_digests(out).items():
        if "/.tmp-" not in key and "/_manifests/" not in key:
            assert seen.setdefault(key, digest) == digest, f"{key} changed content"
    return state


def kill_points(calls: list[str]) -> list[tuple[int, str]]:
    every = [
        (k, when)
        for k, kind in enumerate(calls, start=1)
        for when in ("before", "after", *(("during",) if kind == "put" else ()))
    ]
    # The manifest's put (the switch) always, before, during and after; the rest seeded.
    switch = [(calls.index("put") + 1, when) for when in ("before", "during", "after")]
    others = [point for point in every if point not in switch]
    return sorted(switch + random.Random(SEED).sample(others, POINTS - len(switch)))


def test_kill_9_anywhere_leaves_the_old_or_the_new_window(
    lake: Lake, tmp_path: Path, export_name: str
) -> None:
    pristine, reference, out = tmp_path / "old", tmp_path / "reference", tmp_path / "out"
    export = definition(name=export_name, **RUN_B)
    export_window(
        definition(name=export_name, **RUN_A),
        START,
        END,
        lake.store,
        LocalDestination(pristine),
        "a",
    )
    old = (pristine / MANIFEST).read_bytes()
    seen = {k: d for k, d in file_digests(pristine).items() if "/_manifests/" not in k}
    # The new window, and the calls a run makes, from a run on a copy that is not killed.
    shutil.copytree(pristine, reference)
    recorder = KillAt(reference)
    export_window(export, START, END, lake.store, recorder, "reference")
    new = {k: e["sha256"] for k, e in listed((reference / MANIFEST).read_bytes()).items()}
    switch = recorder.calls.index("put") + 1  # the manifest: the first put after the moves
    assert recorder.calls == ["move"] * len(new) + ["put"] + ["delete"] * 5  # 4 old, 1 error
    points = kill_points(recorder.calls)
    assert len(points) == POINTS and {k < switch for k, _ in points} == {True, False}

    child = [sys.executable, "-m", "exporter_pipeline_tests.exports.kill_child"]
    child += [str(lake.root), str(out), export_name]
    for number, (k, when) in enumerate(points):
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(pristine, out)
        killed = subprocess.run(
            [*child, str(k), when],
            check=False,
        )
        assert killed.returncode == -signal.SIGKILL
        switched = k > switch or (k == switch and when == "after")
        assert visible_state(out, old, new, seen) == ("new" if switched else "old")

        # The next run of the window: exactly the new window, nothing else anywhere.
        export_window(export, START, END, lake.store, LocalDestination(out), f"next-{number}")
        assert visible_state(out, old, new, seen) == "new"
        assert sorted(file_digests(out)) == sorted([MANIFEST, *new])
        assert list(Path(tempfile.gettempdir()).glob(f"export-{export_name}-*")) == []
