"""The export definition spec in one import: the models (`definition.py`), the data set
registry they are chosen by (`catalog.py`), and the file's loading (`definitions_file.py`).
"""

from __future__ import annotations

from exporter_pipeline.exports.definition import (
    ExportBase,
    ExportDefinition,
    MetricsExport,
    QueryExport,
    RowsExport,
    ViewersExport,
    ViewsExport,
)
from exporter_pipeline.exports.definition_parts import (
    Delivery,
    OutputRef,
    QueryLimitsSpec,
    Schedule,
    WebhookDelivery,
)
from exporter_pipeline.exports.definitions_file import (
    DefinitionsDocument,
    DefinitionsFile,
    RejectedExport,
    load_definitions_file,
    parse_definitions,
    read_definitions_text,
)
from exporter_pipeline.exports.validation import describe_errors, validate_export

__all__ = [
    "DefinitionsDocument",
    "DefinitionsFile",
    "Delivery",
    "ExportBase",
    "ExportDefinition",
    "MetricsExport",
    "OutputRef",
    "QueryExport",
    "QueryLimitsSpec",
    "RejectedExport",
    "RowsExport",
    "Schedule",
    "ViewersExport",
    "ViewsExport",
    "WebhookDelivery",
    "describe_errors",
    "load_definitions_file",
    "parse_definitions",
    "read_definitions_text",
    "validate_export",
]
