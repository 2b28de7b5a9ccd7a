"""Tenants split over code locations: `EXPORTER_SHARD=k/N` loads the tenants of shard k.

A tenant's shard is a stable hash of its name (SHA-256, not Python's salted `hash`), so
every process of a deployment, and every later one, agrees on it without a lookup table.
Shard 0 also holds what belongs to no tenant: the lake's assets (raw events and the data
sets derived from them) and the definitions that could not be loaded. Shards count from
0 (DESIGN.md: the default `0/1` is one location holding everything).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from exporter_pipeline.errors import DefinitionError

_PATTERN = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def shard_of(tenant: str, count: int) -> int:
    """The shard (0 … count - 1) holding `tenant`."""
    digest = hashlib.sha256(tenant.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True)
class Shard:
    number: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard | None:
        """`k/N` with 0 ≤ k < N; `0/1` (the default) or empty text is the whole
        deployment in one location."""
        if not text.strip():
            return None
        match = _PATTERN.fullmatch(text)
        number, count = (int(match[1]), int(match[2])) if match else (-1, 0)
        if not 0 <= number < count:
            raise DefinitionError(
                f"EXPORTER_SHARD={text!r}: expected k/N with 0 <= k < N, e.g. 0/4"
            )
        return cls(number, count) if count > 1 else None

    @property
    def location_name(self) -> str:
        return f"exporter_pipeline_shard_{self.number}_of_{self.count}"

    def holds(self, tenant: str) -> bool:
        return shard_of(tenant, self.count) == self.number

    @property
    def holds_lake(self) -> bool:
        """Shard 0 holds the lake's assets and what belongs to no tenant."""
        return self.number == 0


def holds(shard: Shard | None, tenant: str) -> bool:
    return shard is None or shard.holds(tenant)


def holds_lake(shard: Shard | None) -> bool:
    return shard is None or shard.holds_lake


def wrong_location(shard: Shard | None, tenant: str) -> str | None:
    """Why this location must not act for `tenant`, or None when it holds the tenant.

    A job every shard has (erasure) acts on the tenant's exports, which only the tenant's
    own shard knows: launched elsewhere it would miss them without an error.
    """
    if holds(shard, tenant):
        return None
    assert shard is not None
    home = Shard(shard_of(tenant, shard.count), shard.count)
    return (
        f"tenant {tenant!r} belongs to shard {home.number}/{home.count} (code location "
        f"{home.location_name}), not to this location's shard {shard.number}/{shard.count}: "
        f"launch it in {home.location_name}, which holds the tenant's exports"
    )


def workspace_yaml(count: int, host: str = "127.0.0.1", port: int = 4000) -> str:
    """A Dagster `workspace.yaml` for `count` shards, each a gRPC code server on its port,
    with the command that starts each server above its entry."""
    lines = [
        f"# {count} shards of exporter_pipeline, one gRPC code server each. Start each with",
        "# its own EXPORTER_SHARD (same settings otherwise), then point the webserver and",
        "# the daemon at this file: dagster-webserver -w workspace.yaml; dagster-daemon run -w …",
        "load_from:",
    ]
    for number in range(count):
        shard = Shard(number, count)
        lines += [
            f"  # EXPORTER_SHARD={number}/{count} dagster code-server start"
            f" -m exporter_pipeline.definitions -h {host} -p {port + number}"
            f" --location-name {shard.location_name}",
            "  - grpc_server:",
            f"      host: {host}",
            f"      port: {port + number}",
            f"      location_name: {shard.location_name}",
        ]
    return "\n".join(lines) + "\n"
