"""The store written back as a definitions file: what `validate` accepts and what
`definitions apply` takes back without a change.

Stored credentials are never written: a comment above the output says which are set.
"""

from __future__ import annotations

import textwrap
from datetime import date
from typing import Any

import yaml
from sqlalchemy import select

from exporter_pipeline.store.models import ExportRow, OutputRow
from exporter_pipeline.store.store import DefinitionsStore

HEADER = "# Written by `exporter-pipeline definitions dump`{scope}.\n"


def _readable(body: dict[str, Any]) -> dict[str, Any]:
    """Dates back as YAML dates (`start: 2026-10-01`); apply reads them as it stored them."""
    shown = dict(body)
    for key in ("start", "end"):
        value = shown.get(key)
        if isinstance(value, str) and len(value) == 10:
            try:
                shown[key] = date.fromisoformat(value)
            except ValueError:
                pass
    return shown


def _yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=100)


def _output_block(row: OutputRow) -> str:
    comment = ""
    if row.secret_names:
        comment = (
            f"# {', '.join(row.secret_names)}: stored encrypted in the definitions store "
            "(not shown)\n"
        )
    return textwrap.indent(comment + _yaml({row.name: row.body()}), "  ")


def dump(store: DefinitionsStore, tenant: str | None = None) -> str:
    """The YAML text of the store, or of one tenant: its exports, its outputs and the
    operator's outputs its exports use."""
    with store.session() as session:
        exports = list(session.scalars(select(ExportRow).order_by(ExportRow.id)))
        outputs = list(session.scalars(select(OutputRow).order_by(OutputRow.name)))
    if tenant is not None:
        exports = [e for e in exports if e.tenant == tenant]
        used = {e.output_name for e in exports}
        outputs = [o for o in outputs if o.tenant == tenant or o.name in used]
    text = HEADER.format(scope="" if tenant is None else f" --tenant {tenant}")
    if outputs:
        text += "outputs:\n" + "".join(_output_block(row) for row in outputs)
    else:
        text += "outputs: {}\n"
    if exports:
        text += _yaml({"exports": [_readable(row.definition) for row in exports]})
    else:
        text += "exports: []\n"
    return text
