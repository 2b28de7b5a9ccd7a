"""Reading a JSON Lines landing file as bounded chunks of whole lines, whatever its shape.

Memory never depends on the input's shape: a line longer than the record limit is
skipped as it streams past (only its first bytes are kept, for the quarantine); runs of
blank lines are collapsed before they are split (a gigabyte of newlines is a handful
of chunks, not a billion empty strings); a compressed file stops being read when it
expands past the decompressed-size cap or the decompression ratio. A file that cannot
be read to its end raises `FileFault` after every whole line before the fault was
yielded, so those records are still ingested.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

import polars as pl

from exporter_pipeline.settings import Settings

# Bytes of a JSON Lines file decoded at a time: bounds memory whatever the file's size.
DECODE_CHUNK_BYTES: Final = 16 * 1024 * 1024
# Bytes read (and, for gzip, decompressed) per call: a truncated stream loses at most this.
_READ_BYTES: Final = 1024 * 1024
# Of a record too large to keep, this many leading bytes go to the quarantine.
TOO_LARGE_PREFIX_BYTES: Final = 1024
_BOM: Final = b"\xef\xbb\xbf"
_TRUNCATED: Final = "compressed file ended before the end-of-stream marker was reached"
# From a newline to the last newline after it with only whitespace between: the lines
# in between are blank. (One character class: a repeated group costs memory per repeat.)
_BLANK_RUN: Final = re.compile(rb"\n[\n \t\r]*\n")
# Text with more lines than one per this many bytes has its blank runs collapsed.
_SHORT_LINE_BYTES: Final = 32
# Compressed bytes fed to zlib at a time: what is left over is copied on every call.
_INFLATE_BYTES: Final = 64 * 1024


@dataclass(frozen=True)
class LandingLimits:
    """Caps that bound the memory one landing file can take (README, Settings)."""

    max_record_bytes: int = 1024 * 1024
    max_decompressed_bytes: int = 16 * 1024**3
    max_decompression_ratio: float = 100.0

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> LandingLimits:
        settings = settings or Settings.from_env()
        return cls(
            settings.max_record_bytes,
            settings.max_decompressed_bytes,
            settings.max_decompression_ratio,
        )


class FileFault(Exception):
    """A landing file that could not be read to its end; `unread` records are known lost."""

    def __init__(self, reason: str, unread: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unread = unread


@dataclass(frozen=True)
class LineChunk:
    """Consecutive lines of a file: as read, and split (without their newline).

    `gaps` holds (index in `lines`, blank lines collapsed just before it). A chunk with
    `too_large` set is one record longer than the limit: `lines` holds its first bytes.
    """

    text: bytes
    lines: list[bytes]
    first: int  # line number of lines[0]
    max_record_bytes: int
    gaps: tuple[tuple[int, int], ...] = ()
    too_large: bool = False

    def numbers(self, rows: list[int]) -> list[int]:
        return self.number_series(pl.Series(rows, dtype=pl.Int64)).to_list()

    def number_series(self, rows: pl.Series) -> pl.Series:
        """Line numbers in the file of the lines at `rows`."""
        rows = rows.cast(pl.Int64)
        if not self.gaps:
            return rows + self.first
        at = pl.Series([index for index, _ in self.gaps], dtype=pl.Int64)
        skipped = pl.Series([0, *(extra for _, extra in self.gaps)], dtype=pl.Int64).cum_sum()
        return rows + self.first + skipped.gather(at.search_sorted(rows, side="right"))

    @property
    def line_count(self) -> int:
        """Lines of the file this chunk covers, collapsed blank lines included."""
        return len(self.lines) + sum(extra for _, extra in self.gaps)


def _chunk(text: bytes, first: int, limit: int) -> LineChunk:
    """Whole lines (the last may lack its newline) as a chunk, blank runs collapsed."""
    gaps: list[tuple[int, int]] = []
    # Only text of short lines on average is searched for blank runs (events run to
    # hundreds of bytes): one count is cheaper than the search, which costs when it finds
    # nothing; short lines that are not blank stay few enough to split.
    if text.count(b"\n") > len(text) // _SHORT_LINE_BYTES:
        pieces, start, lines_before = [], 0, 0
        for run in _BLANK_RUN.finditer(text):
            pieces.append(text[start : run.start() + 1])
            lines_before += pieces[-1].count(b"\n")
            gaps.append((lines_before, run.group().count(b"\n") - 1))
            start = run.end()
        pieces.append(text[start:])
        text = b"".join(pieces)
    lines = text.split(b"\n")
    if text.endswith(b"\n"):
        lines.pop()
    return LineChunk(text, lines, first, limit, tuple(gaps))


def _gunzip(raw: IO[bytes]) -> Iterator[bytes]:
    """A gzip stream (members one after another) decompressed a bounded piece at a time.

    zlib itself, not `GzipFile`: a truncated stream keeps what decompressed before the
    cut, and no call expands more than one piece however dense the input.
    """
    step = min(_READ_BYTES, DECODE_CHUNK_BYTES)
    member = zlib.decompressobj(wbits=31)
    pending = b""
    while True:
        if not pending:
            pending = raw.read(_INFLATE_BYTES)
            if not pending:
                if not member.eof:
                    raise FileFault(f"truncated: {_TRUNCATED}")
                return
        if member.eof:  # another member follows the previous one
            member = zlib.decompressobj(wbits=31)
        try:
            piece = member.decompress(pending, step)
        except zlib.error as error:
            raise FileFault(f"unreadable: not a gzip stream ({error})") from None
        pending = member.unused_data if member.eof else member.unconsumed_tail
        if piece:
            yield piece


def _pieces(path: Path, limits: LandingLimits) -> Iterator[bytes]:
    """The file's bytes, a bounded piece at a time, decompressed within the caps."""
    size = path.stat().st_size
    by_ratio = int(limits.max_decompression_ratio * max(size, 1))
    cap = min(limits.max_decompressed_bytes, by_ratio)
    total = 0
    try:
        with open(path, "rb") as raw:
            if not path.name.endswith(".gz"):
                while piece := raw.read(min(_READ_BYTES, DECODE_CHUNK_BYTES)):
                    yield piece
                return
            for piece in _gunzip(raw):
                total += len(piece)
                if total > cap:
                    raise FileFault(_bomb_reason(cap == by_ratio, size, limits))
                yield piece
    except OSError as error:
        raise FileFault(f"unreadable: {error.strerror or error}") from None


def _bomb_reason(by_ratio: bool, size: int, limits: LandingLimits) -> str:
    if by_ratio:
        return (
            f"decompression bomb: expands more than {limits.max_decompression_ratio:g} times "
            f"its {size} compressed bytes (EXPORTER_MAX_DECOMPRESSION_RATIO)"
        )
    return (
        f"decompression bomb: expands past {limits.max_decompressed_bytes} bytes "
        "(EXPORTER_MAX_DECOMPRESSED_BYTES)"
    )


def line_chunks(path: Path, limits: LandingLimits) -> Iterator[LineChunk]:
    """The file's lines, about `DECODE_CHUNK_BYTES` at a time, in bounded memory.

    A leading UTF-8 byte order mark is dropped. On a fault the whole lines read so far
    are yielded first; the `FileFault` counts a partial last record as unread.
    """
    limit = limits.max_record_bytes
    buffer = bytearray()
    first = 1
    skipping = False  # inside a too-large record: its bytes pass unheld up to its newline
    prefix = b""
    partial = 0  # bytes of the buffer's last line, counted per piece (no search of all)
    pieces = _pieces(path, limits)
    try:
        for number, piece in enumerate(pieces):
            if number == 0 and piece.startswith(_BOM):
                piece = piece[len(_BOM) :]
            if skipping:
                end = piece.find(b"\n")
                if end < 0:
                    continue
                yield LineChunk(prefix, [prefix], first, limit, too_large=True)
                first, skipping, piece = first + 1, False, piece[end + 1 :]
            buffer += piece
            newline = piece.rfind(b"\n")
            partial = len(piece) - 1 - newline if newline >= 0 else partial + len(piece)
            if partial > limit:
                # The last line is too long to hold: yield the lines before it, skip it.
                whole, rest = _head(buffer, len(buffer) - partial), buffer[-partial:]
                if whole:
                    chunk = _chunk(whole, first, limit)
                    first += chunk.line_count
                    yield chunk
                prefix, skipping, buffer = bytes(rest[:TOO_LARGE_PREFIX_BYTES]), True, bytearray()
                partial = 0
            # A line longer than a chunk (a record limit above it) is held whole until
            # its newline: a chunk is whole lines, never an empty one counted as a line.
            elif len(buffer) >= DECODE_CHUNK_BYTES and partial < len(buffer):
                chunk = _chunk(_head(buffer, len(buffer) - partial), first, limit)
                first += chunk.line_count
                buffer = buffer[len(buffer) - partial :]
                yield chunk
    except FileFault as fault:
        yield from _before_fault(buffer, first, limit)
        if skipping:
            yield LineChunk(prefix, [prefix], first, limit, too_large=True)
        fault.unread = 1 if buffer.rfind(b"\n") < len(buffer) - 1 else 0
        raise
    if skipping:
        yield LineChunk(prefix, [prefix], first, limit, too_large=True)
    elif buffer:
        yield _chunk(bytes(buffer), first, limit)


def _head(buffer: bytearray, end: int) -> bytes:
    """`buffer[:end]` as bytes, copied once (a slice of a bytearray is a copy already)."""
    with memoryview(buffer) as view:
        return bytes(view[:end])


def _before_fault(buffer: bytearray, first: int, limit: int) -> Iterator[LineChunk]:
    """The whole lines of `buffer` (a partial last line is not a record)."""
    end = buffer.rfind(b"\n")
    if end >= 0:
        yield _chunk(bytes(buffer[: end + 1]), first, limit)
