"""File formats, their compressions and their writers as one table (PostHog's
FILE_FORMAT_EXTENSIONS, dlt's WRITER_SPECS).

Adding a format is adding a row here with its sink (`sinks.py`); the tests parametrize
over this same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from exporter_pipeline.exports.sinks import Writer, write_csv, write_jsonl, write_parquet


@dataclass(frozen=True)
class FileFormat:
    name: str
    extension: str
    compressions: tuple[str, ...]
    default_compression: str | None
    # Parquet compresses inside the file: its name keeps `.parquet` whatever the codec.
    compression_in_name: bool
    # Streams a lazy frame to one local file of this format.
    writer: Writer


FILE_FORMATS: Final[dict[str, FileFormat]] = {
    "csv": FileFormat("csv", "csv", ("gzip", "zstd"), None, True, write_csv),
    "jsonl": FileFormat("jsonl", "jsonl", ("gzip", "zstd"), None, True, write_jsonl),
    "parquet": FileFormat(
        "parquet",
        "parquet",
        ("snappy", "gzip", "zstd", "lz4", "uncompressed"),
        "snappy",
        False,
        write_parquet,
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
