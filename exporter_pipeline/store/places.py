"""Where outputs and exports write, as keys the store looks up (`neighbours.py`).

A location is `exports.ownership`'s: its output's root (`output_root`: the type, then the
folder, or the bucket or container and prefix), then the export's path, segment by
segment. Two exports meet only when one location holds the other, so the store finds
the entries around a location by keys: the places of outputs whose root is the
location or above it (equal keys, through an index), or below it (keys that start with
it), and on each such output the paths above or below the rest of the location.

An output's place is its root as text (`s3/acme-exports/pre`, `local/srv/exports`),
computed from the output alone, so the same in every process. A relative local folder
is made absolute by the process that reads it (its working directory), as
`output_root` does: its place is `local./<segments>` and a reader looks it up relative
to its own working directory. A folder under `~` or above the working directory (`..`)
has no place (NULL): every lookup includes those outputs and judges them by
`output_root`. Pure: no database, no Dagster.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exporter_pipeline.exports.ownership import segments

LOCAL = "local"
# The first part of a relative local folder's place: under the reader's working directory.
RELATIVE = "local."


def key(parts: Sequence[str]) -> str:
    return "/".join(parts)


def path_key(path: str) -> str:
    """An export's path as stored for lookups: its segments (`a//b/` is `a/b`)."""
    return key(segments(path))


def export_path_key(definition: Any) -> str:
    """The path key of an export's definition (its YAML keys); empty when it has none."""
    output = definition.get("output") if isinstance(definition, dict) else None
    path = output.get("path", "") if isinstance(output, dict) else ""
    return path_key(path) if isinstance(path, str) else ""


def _local_place(path: Any) -> str | None:
    if not isinstance(path, str) or path.startswith("~"):
        return None
    folder = os.path.normpath(path)
    if os.path.isabs(folder):
        return key((LOCAL, *segments(folder)))
    if folder == ".." or folder.startswith("../"):
        return None
    return key((RELATIVE, *(() if folder == "." else segments(folder))))


def output_place(kind: str, settings: Mapping[str, Any]) -> str | None:
    """The place of an output (its `type` and other keys), or None when it depends on
    the reading process beyond its working directory (or cannot be told)."""
    if kind == LOCAL:
        return _local_place(settings.get("path"))
    # As `output_root` reads a bucket or container and its prefix.
    bucket = settings.get("container") or settings.get("bucket") or ""
    return key((kind, str(bucket), *segments(str(settings.get("prefix") or ""))))


def holds(outer: Sequence[str], inner: Sequence[str]) -> bool:
    """Whether location `outer` is `inner` or above it."""
    return tuple(inner[: len(outer)]) == tuple(outer)


@dataclass(frozen=True)
class PlaceLookup:
    """The places of outputs that may meet a location: equal to one of `keys` (the
    location and the places above it), or starting with one of `below` and `/`."""

    keys: tuple[str, ...]
    below: tuple[str, ...]


def lookup(location: Sequence[str], cwd: str) -> PlaceLookup:
    """The places around `location` (an `output_root` plus path segments, made absolute
    in a process whose working directory is `cwd`)."""
    keys = [key(location[:end]) for end in range(1, len(location) + 1)]
    below = [key(location)]
    if location and location[0] == LOCAL:
        here = (LOCAL, *segments(os.path.normpath(cwd)))
        if holds(here, location):
            rest = tuple(location[len(here) :])
            keys += [key((RELATIVE, *rest[:end])) for end in range(len(rest) + 1)]
            below.append(key((RELATIVE, *rest)))
        elif holds(location, here):  # every relative folder lies below the location
            keys.append(RELATIVE)
            below.append(RELATIVE)
    return PlaceLookup(tuple(keys), tuple(below))


@dataclass(frozen=True)
class PathLookup:
    """The exports of one output that meet a location: all of them (`every`), or those
    whose path key is one of `keys` (above the location, or at it) or starts with
    `below` and `/`."""

    every: bool
    keys: tuple[str, ...] = ()
    below: str = ""


def paths_around(root: Sequence[str], location: Sequence[str]) -> PathLookup | None:
    """Which paths of an output whose root is `root` meet `location`; None: none."""
    if holds(location, root):  # the location holds the whole output
        return PathLookup(every=True)
    if not holds(root, location):
        return None
    rest = tuple(location[len(root) :])
    return PathLookup(
        every=False,
        keys=tuple(key(rest[:end]) for end in range(len(rest) + 1)),
        below=key(rest),
    )
