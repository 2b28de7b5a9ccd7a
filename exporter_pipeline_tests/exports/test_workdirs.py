"""Work folders of executions (exports/workdirs.py), against real processes: a child that
holds a folder is SIGKILLed, and the next folder of that export removes what it left,
while the folder of a live child, and those of other exports, stay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter_pipeline.exports.workdirs import LOCK_NAME, remove_dead_folders, work_folder

# A child that makes a work folder, writes a partial file in it, says where, and waits.
CHILD = """
import sys, time
from pathlib import Path
from exporter_pipeline.exports.workdirs import work_folder
with work_folder(sys.argv[1], Path(sys.argv[2])) as work:
    (work / "2026100100.000").write_bytes(b"x" * 4096)
    print(work, flush=True)
    time.sleep(120)
"""


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for child in started:  # whatever a failed assertion left running
        if child.poll() is None:
            child.kill()
        child.wait()


def hold(export: str, base: Path, children: list[subprocess.Popen[str]]) -> Path:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, export, str(base)], stdout=subprocess.PIPE, text=True
    )
    children.append(child)
    assert child.stdout is not None
    return Path(child.stdout.readline().strip())


def test_a_killed_runs_folder_is_removed_by_the_next_folder_of_that_export(
    tmp_path: Path, children: list[subprocess.Popen[str]]
) -> None:
    dead = hold("acme_daily", tmp_path, children)
    live = hold("acme_daily", tmp_path, children)
    other = hold("acme_daily-eu", tmp_path, children)  # a name the first one prefixes
    children[0].send_signal(signal.SIGKILL)
    assert children[0].wait() == -signal.SIGKILL
    other_dead = hold("acme_daily-eu", tmp_path, children)
    children[3].send_signal(signal.SIGKILL)
    children[3].wait()
    # The kill left the folder and its partial file behind.
    assert (dead / "2026100100.000").stat().st_size == 4096

    with work_folder("acme_daily", tmp_path) as mine:
        assert mine.name.startswith("export-acme_daily-") and (mine / LOCK_NAME).is_file()
        assert oct(mine.stat().st_mode & 0o777) == "0o700"
        assert not dead.exists()
        # A live run's folder stays, and so do another export's, dead or alive: they are
        # that export's next run's to remove.
        assert (live / "2026100100.000").is_file()
        assert other.is_dir() and other_dead.is_dir()
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [mine.name, live.name, other.name, other_dead.name]
        )
    assert not mine.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, other.name, other_dead.name]
    )


def test_a_folder_is_removed_when_its_block_ends_even_on_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), work_folder("e", tmp_path) as work:
        (work / "part").write_bytes(b"1")
        raise RuntimeError("the export failed")
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_leaves_this_process_own_open_folder(tmp_path: Path) -> None:
    # flock locks belong to an open file, not a process: a second sweep from the same
    # process (another thread's execution) cannot take a folder still in use.
    with work_folder("e", tmp_path) as first:
        assert remove_dead_folders("e", tmp_path) == []
        with work_folder("e", tmp_path) as second:
            assert first.is_dir() and second.is_dir() and first != second
        assert first.is_dir()


def test_unrelated_and_unlocked_lookalikes_are_left_alone(tmp_path: Path) -> None:
    # A folder named like ours without a lock file is not ours to judge (e.g. made by the
    # previous TemporaryDirectory naming); a file is never removed.
    (tmp_path / "export-e-0123456789abcdef").write_text("a file")
    (tmp_path / "export-e-abc123xy").mkdir()  # tempfile's naming: 8 characters
    left = sorted(p.name for p in tmp_path.iterdir())
    assert remove_dead_folders("e", tmp_path) == []
    with work_folder("e", tmp_path):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == left
    assert os.listdir(tmp_path / "export-e-abc123xy") == []
