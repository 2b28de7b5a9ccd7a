"""File formats and compressions as data (PostHog's FILE_FORMAT_EXTENSIONS idea).

Adding a format is adding a row here and a writer in `writers.py`; the tests
parametrize over these same tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class FileFormat:
    name: str
    extension: str
    compressions: tuple[str, ...]
    default_compression: str | None
    # Parquet compresses inside the file: its name keeps `.parquet` whatever the codec.
    compression_in_name: bool


FILE_FORMATS: Final[dict[str, FileFormat]] = {
    "csv": FileFormat("csv", "csv", ("gzip", "zstd"), None, True),
    "jsonl": FileFormat("jsonl", "jsonl", ("gzip", "zstd"), None, True),
    "parquet": FileFormat(
        "parquet", "parquet", ("snappy", "gzip", "zstd", "lz4", "uncompressed"), "snappy", False
    ),
}
FORMAT_ALIASES: Final = {"ndjson": "jsonl", "json": "jsonl", "jsonlines": "jsonl"}
COMPRESSION_EXTENSIONS: Final = {"gzip": "gz", "zstd": "zst"}


def canonical_format(name: str) -> str:
    return FORMAT_ALIASES.get(name.lower(), name.lower())


def file_suffix(fmt: str, compression: str | None) -> str:
    """`csv`, `csv.gz`, `jsonl.zst`, `parquet`: what follows the time in a file's name."""
    spec = FILE_FORMATS[fmt]
    if compression and spec.compression_in_name:
        return f"{spec.extension}.{COMPRESSION_EXTENSIONS[compression]}"
    return spec.extension


def format_compression_pairs() -> list[tuple[str, str | None]]:
    """Every valid (format, compression) pair, `None` meaning the format's default."""
    return [(f, c) for f, spec in FILE_FORMATS.items() for c in (None, *spec.compressions)]
