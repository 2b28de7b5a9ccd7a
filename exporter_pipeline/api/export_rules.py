"""An export definition sent to the API, checked as a definitions file checks one, each
problem a JSON:API error whose `source.pointer` is the field (`/columns/1`, `/end`,
`/output/name`). Pure, apart from the caller's outputs it is given.

Beyond a file's rules, for a stranger's definition: its tenant is the caller's; its
output is one of the caller's own (the operator's tenant-less outputs are for the
operator's YAML only, so they answer as missing ones do); no `*_env` key anywhere (a
webhook's `secret_env` would sign with a variable of the service's environment: the
service holds a webhook's secret instead, `api/webhook_secrets.py`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from exporter_pipeline.api.errors import ApiError, ApiErrors
from exporter_pipeline.api.output_rules import invalid
from exporter_pipeline.exports.definition_parts import pointer, shown
from exporter_pipeline.exports.validation import describe_errors, validate_export

# A rule that names one item of a list (or one key of a mapping) points at that item:
# field -> the message's pattern, whose group is the item as `repr` shows it.
ITEM_RULES = {
    "columns": re.compile(r"^unknown column (.+) for dataset "),
    "metrics": re.compile(r"^unknown metric (.+) \(choose "),
    "dimensions": re.compile(r"^unknown dimension (.+) \(choose "),
    "filters": re.compile(r"^cannot filter \S+ on (.+?)(?: \(filterable: .*)?$"),
}
# Error codes by what a message says (the rest are `invalid_field`).
CODES = (
    ("unknown field ", "unknown_field"),
    (" is before start ", "invalid_range"),
    ("unknown output ", "unknown_output"),
)
# A problem line of the store's own check: `<where>: export 'x' (/exports/0/end): ...`.
STORE_LINE = re.compile(r"\((/exports/(\d+))((?:/[^)]*)?)\): (.*)$")


def item_pointer(at: str, message: str, body: dict[str, Any]) -> str:
    """`/columns/1` for a rule on the second column; `at` when no item is named."""
    field = at.removeprefix("/")
    rule = ITEM_RULES.get(field)
    found = rule.match(message) if rule else None
    if found is None:
        return at
    items = body.get(field)
    keys = list(items) if isinstance(items, dict | list) else []
    for index, item in enumerate(keys):
        if repr(item) == found.group(1):
            return pointer((field, item if isinstance(items, dict) else index))
    return at


def definition_error(at: str, message: str) -> ApiError:
    code = next((c for phrase, c in CODES if phrase in message), "invalid_field")
    return ApiError(422, code, message, title="Invalid definition", pointer=at)


def env_keys(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Where a body holds a `*_env` key, at any depth."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if isinstance(key, str) and key.endswith("_env"):
                yield (*at, key)
            else:
                yield from env_keys(inner, (*at, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from env_keys(inner, (*at, index))


def unknown_output(name: str, mine: Collection[str]) -> ApiError:
    """One message for a missing output and for anyone else's: only the caller's own
    outputs are listed."""
    known = ", ".join(sorted(mine)) or "none yet"
    return definition_error("/output/name", f"unknown output {shown(name)} (your outputs: {known})")


def read_export(
    raw: dict[str, Any], tenant: str, outputs: Collection[str], now: datetime | None = None
) -> dict[str, Any]:
    """The definition (its YAML keys, tenant included) `raw` asks for, for `tenant`, whose
    outputs are `outputs`; ApiErrors listing every problem."""
    errors: list[ApiError] = []
    if raw.get("tenant", tenant) != tenant:
        errors.append(invalid("/tenant", f"tenant must be omitted or {tenant!r} (the key's)"))
    for where in env_keys(raw):
        errors.append(
            invalid(
                pointer(where),
                f"{where[-1]} names an environment variable of the service, which the API "
                "does not lend",
                "env_not_allowed",
            )
        )
    # The name first, then the tenant, then the rest as written.
    body = {**{k: raw[k] for k in ("name",) if k in raw}, "tenant": tenant, **raw}
    body["tenant"] = tenant
    try:
        validate_export(body, context={"now": now} if now else None)
    except ValidationError as error:
        for at, message in describe_errors(error, (), union_at=0):
            errors.append(definition_error(item_pointer(at, message, body), message))
    output = body.get("output")
    name = output.get("name") if isinstance(output, dict) else None
    if isinstance(name, str) and name not in outputs:
        errors.append(unknown_output(name, outputs))
    if errors:
        raise ApiErrors(_unique(errors))
    return body


def store_problems(message: str, tenant: str) -> list[ApiError]:
    """The store's refusal of a change to one export (index 0 of its check) as errors,
    worded without what it says about other tenants' definitions."""
    found = []
    for line in message.splitlines():
        match = STORE_LINE.search(line)
        mine = match is not None and match.group(2) == "0"
        text = match.group(4) if match else ""
        if mine and match is not None and "may not share an output location" in text:
            found.append(
                definition_error(
                    "/output",
                    "this output location overlaps one of an export of another tenant; "
                    "choose another output or path",
                )
            )
        elif mine and match is not None and " tenant " not in text.replace(repr(tenant), ""):
            found.append(definition_error(match.group(3) or "", text))
        else:
            found.append(
                definition_error("", "the definition conflicts with another one in the store")
            )
    return _unique(found)


def _unique(errors: list[ApiError]) -> list[ApiError]:
    seen: set[tuple[str | None, str]] = set()
    kept = []
    for error in errors:
        if (error.pointer, error.detail) not in seen:
            seen.add((error.pointer, error.detail))
            kept.append(error)
    return kept
