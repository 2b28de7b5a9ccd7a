"""Helpers for reading what tests wrote: one sha256 per file of a folder tree."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_digests(root: Path) -> dict[str, str]:
    """Every file under `root` (relative POSIX path) with its sha256: equal trees, equal maps."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
