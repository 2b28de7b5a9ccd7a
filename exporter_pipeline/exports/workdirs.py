"""Local work folders of executions, and the removal of those a dead run left behind.

An execution writes a window's files into a work folder before publishing them. When
its process ends normally the folder goes with it; when the process is killed (out of
memory, a SIGKILL, a max-runtime stop that escalates) nothing removes it, and a large
window can leave gigabytes in the temporary folder. So each folder holds an exclusive
`flock` on a lock file inside it for as long as it is in use; the kernel drops that lock
when the holding process dies, however it dies. When the next folder of the same export
is made, every sibling folder of that export whose lock can be taken belongs to a dead
process and is removed; folders of runs still working keep their lock and stay.

A folder appears under its final name only after its lock is held (it is made under a
staging name and renamed), so a concurrent sweep never mistakes a folder being born for
a dead one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

LOCK_NAME: Final = ".lock"
# `export-<name>-<16 hex>`: the random part has no dash, so the folders of export `a`
# never match those of export `a-b` (names may contain dashes).
_SUFFIX: Final = r"-[0-9a-f]{16}"


def _prefix(export: str, kind: str = "export") -> str:
    return f"{kind}-{export}-"


def _is_folder_of(export: str, name: str, kind: str = "export") -> bool:
    return re.fullmatch(re.escape(f"{kind}-{export}") + _SUFFIX, name) is not None


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive lock on `path`, or None if it is held."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:  # gone: another sweep removed the folder first
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def remove_dead_folders(export: str, base: Path, kind: str = "export") -> list[Path]:
    """Remove the work folders of `export` under `base` that no live process holds."""
    removed = []
    for folder in sorted(base.glob(f"{_prefix(export, kind)}*")):
        if not _is_folder_of(export, folder.name, kind) or not folder.is_dir():
            continue
        fd = _try_lock(folder / LOCK_NAME)
        if fd is None:
            continue
        try:
            # Holding the lock while removing: a second sweep cannot take it meanwhile.
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(fd)
        removed.append(folder)
    return removed


@contextlib.contextmanager
def work_folder(export: str, base: Path | None = None, kind: str = "export") -> Iterator[Path]:
    """A fresh work folder of `export`, locked for the life of the block, removed after.

    Making it first removes the folders of the same export that dead processes left.
    `kind` names other users of the same scheme (`exporter-ingest`: one hour's ingest).
    """
    base = Path(base or tempfile.gettempdir())
    name = f"{_prefix(export, kind)}{secrets.token_hex(8)}"
    staging = base / f".{name}.new"  # no sweep matches this name
    staging.mkdir(mode=0o700)
    fd = os.open(staging / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # new and ours: never blocks
        folder = base / name
        staging.rename(folder)
        remove_dead_folders(export, base, kind)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        os.close(fd)
        shutil.rmtree(staging, ignore_errors=True)  # only if the rename never happened
