"""Writing a lazy frame to local files in an export's format: whole, or in numbered parts
when it would exceed a size. The sink of each format is in `formats.FILE_FORMATS`."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import polars as pl

from exporter_pipeline.exports.formats import FILE_FORMATS


def write_file(frame: pl.LazyFrame, fmt: str, compression: str | None, path: Path) -> int:
    """Stream `frame` to `path`; the rows written, counted in the same pass."""
    _, count = pl.collect_all(
        [FILE_FORMATS[fmt].writer(frame, path, compression), frame.select(pl.len())]
    )
    return int(count.item())


def write_parts(
    frame: pl.LazyFrame,
    fmt: str,
    compression: str | None,
    path_for: Callable[[int | None], Path],
    max_bytes: int | None,
) -> list[tuple[Path, int]]:
    """Write `frame` as one file, or as numbered parts when it would exceed `max_bytes`.

    The whole file is written first; only when it is too large is it written again in
    row slices sized from what the first write measured. Returns (file, rows) pairs.
    """
    whole = path_for(None)
    rows = write_file(frame, fmt, compression, whole)
    size = whole.stat().st_size
    if max_bytes is None or size <= max_bytes or rows < 2:
        return [(whole, rows)]
    parts = max(2, math.ceil(size * 1.1 / max_bytes))
    per_part = max(1, math.ceil(rows / parts))
    whole.unlink()
    written = []
    for number, offset in enumerate(range(0, rows, per_part), start=1):
        part = path_for(number)
        written.append((part, write_file(frame.slice(offset, per_part), fmt, compression, part)))
    return written
