"""Where an export writes, physically, and which exports of different tenants would meet.

An export writes under `<output root>/<output.path>`. The root is the output's type and
its folder (local, made absolute) or its bucket/container and prefix (s3, gcs, azure),
so two differently named outputs pointing at one bucket or folder are the same place.
The endpoint, region or account of a cloud output is left out on purpose: it may come
from the environment, and two outputs naming one bucket are treated as one place rather
than risk letting two tenants write into it.

Two exports of different tenants conflict when one location is equal to the other or a
segment-wise prefix of it (`a` holds `a/b`, not `ab`; the empty path holds everything of
its output): the second would overwrite, list or delete the first one's files and
manifests. Exports of one tenant may share a place.

`location_conflicts` runs in time linear in the total number of path segments: a trie of
locations whose nodes remember the two earliest exports of distinct tenants that end at,
and below, them; no pair of exports is ever compared.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


def segments(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.split("/") if part)


def output_root(output: Any) -> tuple[str, ...]:
    """The place an output names: its type, then folder or bucket/container and prefix."""
    kind = str(getattr(output, "type", ""))
    if kind == "local":
        folder = os.path.normpath(os.path.abspath(os.path.expanduser(str(output.path))))
        return (kind, *segments(folder))
    bucket = getattr(output, "container", None) or getattr(output, "bucket", "")
    return (kind, str(bucket), *segments(str(getattr(output, "prefix", "") or "")))


@dataclass(frozen=True)
class Placed:
    """One export at its physical location (`index` is its position in the file)."""

    index: int
    tenant: str
    location: tuple[str, ...]


# The earliest export, and the earliest of a tenant other than its tenant: enough to find,
# for any tenant, the earliest export of another tenant.
_Summary = list[Placed]


def _remember(summary: _Summary, placed: Placed) -> None:
    # Exports arrive in file order, so the first entries kept are the earliest.
    if not summary or (len(summary) == 1 and summary[0].tenant != placed.tenant):
        summary.append(placed)


def _other_tenant(summary: _Summary, placed: Placed) -> Placed | None:
    found = next((p for p in summary if p.tenant != placed.tenant), None)
    return found if found is not None and found.index < placed.index else None


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    ends: _Summary = field(default_factory=list)
    below: _Summary = field(default_factory=list)


def location_conflicts(exports: Sequence[Placed]) -> list[tuple[Placed, Placed]]:
    """(export, earlier export of another tenant it overlaps), at most one per export."""
    ordered = sorted(exports, key=lambda p: p.index)
    root = _Node()
    ends: list[list[_Node]] = []
    for placed in ordered:
        node, path = root, [root]
        _remember(root.below, placed)
        for part in placed.location:
            node = node.children.setdefault(part, _Node())
            _remember(node.below, placed)
            path.append(node)
        _remember(node.ends, placed)
        ends.append(path)
    conflicts = []
    for placed, path in zip(ordered, ends, strict=True):
        # Exports ending above this one hold it; exports ending at or below it are held.
        candidates = [_other_tenant(node.ends, placed) for node in path[:-1]]
        candidates.append(_other_tenant(path[-1].below, placed))
        found = [c for c in candidates if c is not None]
        if found:
            conflicts.append((placed, min(found, key=lambda p: p.index)))
    return conflicts
