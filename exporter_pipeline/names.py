"""Names of tenants, exports and outputs, and the Dagster names made from them.

A name is `[a-z0-9][a-z0-9_-]{0,62}`. What Dagster does with each string of a definition
(checked in the installed dagster 1.13 source):

- export name → job `export_<n>` and schedule `export_<n>_schedule`: `check_valid_name`,
  `^[A-Za-z0-9_]+$` (no hyphen; no length limit);
- export name → asset key `exports/<n>`: any string, but its op is named by
  `AssetKey.to_python_identifier`, which turns `-` and `.` into `_`;
- export name and tenant → tags `export`, `tenant`: strict on assets,
  `[A-Za-z0-9_.-]{0,63}`;
- tenant → pool `tenant_<t>`: `^\\S+$`; tenant → owner `team:<t>`: non-empty after `team:`.

So the name pattern alone satisfies every tag, pool, owner and asset-key rule, and a name
is used as is there. Only the hyphen is foreign to Dagster names:
`dagster_name` maps it to `_`, as Dagster itself does for the asset's op. That mapping
is not injective (`acme-x` and `acme_x` meet), so validation refuses two exports, or two
outputs, whose Dagster names meet (`dagster_name_clashes`); a file of names without
hyphens keeps exactly the names it had. A tenant becomes one Dagster name, its exports'
asset group `tenant_<t>` (`tenant_group_name`, mapped the same way); two tenants meeting
there only share a group in the UI's catalog. This module imports nothing from Dagster:
it is the pure rule, tested directly.

The rest reaches Dagster as free text with no rule to break: `description` (asset
description), `output.name:output.path` (metadata) and
email addresses (metadata); `format` and the output's `type` become kinds, but come from
fixed tables; schedule fields are ints in range and a zone `ZoneInfo` loads, which is what
Dagster checks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

NAME_MAX_LENGTH = 63
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_NAME = re.compile(NAME_PATTERN.strip("^$"))
_NAME_CHAR = re.compile(r"[a-z0-9_-]")

# The export named `on_demand` would own the job `export_on_demand`, the launchpad job.
RESERVED_EXPORT_NAMES = frozenset({"on_demand"})


def name_problem(value: str) -> str | None:
    """Why `value` is not a name, or None; the text completes "<field> ..."."""
    if _NAME.fullmatch(value):
        return None
    if not value:
        return "must not be empty"
    if len(value) > NAME_MAX_LENGTH:
        return f"must have at most {NAME_MAX_LENGTH} characters (this one has {len(value)})"
    bad = sorted({c for c in value if not _NAME_CHAR.fullmatch(c)})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return f"may contain only lowercase letters, digits, '_' and '-' (not {shown})"
    return "must start with a lowercase letter or digit"


def dagster_name(name: str) -> str:
    """The name as used inside Dagster names (`-` becomes `_`)."""
    return name.replace("-", "_")


def tenant_group_name(tenant: str) -> str:
    """The asset group of a tenant's exports, so the catalog lists them by tenant."""
    return f"tenant_{dagster_name(tenant)}"


def export_job_name(export: str) -> str:
    return f"export_{dagster_name(export)}"


def export_schedule_name(export: str) -> str:
    return f"export_{dagster_name(export)}_schedule"


def dagster_name_clashes(names: Iterable[str]) -> list[tuple[str, str]]:
    """(name, earlier name) for each name whose Dagster name an earlier one already has."""
    first: dict[str, str] = {}
    clashes = []
    for name in names:
        earlier = first.setdefault(dagster_name(name), name)
        if earlier != name:
            clashes.append((name, earlier))
    return clashes
