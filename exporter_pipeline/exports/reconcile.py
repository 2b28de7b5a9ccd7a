"""Reconciliation: rows an event export wrote, against the raw lake, counted a second way.

The expected side is computed here directly from the lake files with plain filters,
not through `datasets.py`, so a bug in the export's selection shows up as a mismatch.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl

from exporter_pipeline.events.schema import event_types_of
from exporter_pipeline.exports.catalog import DATASETS
from exporter_pipeline.exports.definition import ExportDefinition


def _where(export: ExportDefinition) -> pl.Expr:
    condition = pl.col("tenant") == export.tenant
    for field, values in export.filters.items():
        condition &= pl.col(field).cast(pl.String).is_in(values)
    return condition


def expected_event_rows(
    export: ExportDefinition, raw_files: list[Path], start: datetime, end: datetime
) -> int:
    condition = _where(export) & pl.col("event_time").is_between(start, end, closed="left")
    category = DATASETS[export.dataset].category
    if category is not None:
        condition &= pl.col("event_type").is_in(event_types_of(category))
    return int(pl.scan_parquet(raw_files).filter(condition).select(pl.len()).collect().item())
