"""Loading an export definitions file (DESIGN.md, Export definitions file).

Every problem is collected and reported at once, each naming the file, the export and
the field, so one run of `exporter-pipeline validate` lists everything to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from exporter_pipeline.errors import DefinitionError

TOP_LEVEL_KEYS = ("outputs", "exports")


def load_definitions_file(path: Path) -> dict[str, Any]:
    """The parsed file; a missing or empty file declares no outputs and no exports."""
    if not path.exists():
        return {"outputs": {}, "exports": []}
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise DefinitionError(f"{path}: not valid YAML: {error}") from None
    errors = []
    if not isinstance(document, dict):
        raise DefinitionError(f"{path}: the top level must be a mapping with outputs/exports")
    for key in document:
        if key not in TOP_LEVEL_KEYS:
            errors.append(f"{path}: unknown top-level key {key!r} (expected outputs, exports)")
    if not isinstance(document.get("outputs") or {}, dict):
        errors.append(f"{path}: field 'outputs' must be a mapping of output names")
    if not isinstance(document.get("exports") or [], list):
        errors.append(f"{path}: field 'exports' must be a list of export definitions")
    if errors:
        raise DefinitionError("\n".join(errors))
    return {"outputs": document.get("outputs") or {}, "exports": document.get("exports") or []}
