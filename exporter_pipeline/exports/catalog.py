"""The data sets an export can select: one registry, one object per data set.

Adding a data set is adding its object here (a `datasets.py` class, and a model in
`definition.py` when it has keys of its own) plus its tests; the definition file's
validation, the execution, the asset's lake dependencies and its check all read it.
The order is the order `dataset:`'s message lists them in.
"""

from __future__ import annotations

from typing import Final

from exporter_pipeline.exports.datasets import (
    DataSet,
    EventRows,
    Metrics,
    Query,
    Viewers,
    ViewRows,
)
from exporter_pipeline.exports.definition import (
    MetricsExport,
    QueryExport,
    RowsExport,
    ViewersExport,
    ViewsExport,
)

RAW: Final = ("raw_events",)
SEGMENTS: Final = ("view_segments",)

DATASETS: Final[dict[str, DataSet]] = {
    dataset.name: dataset
    for dataset in (
        EventRows("raw", RowsExport, RAW),
        EventRows("events", RowsExport, RAW, category="events"),
        EventRows("quality", RowsExport, RAW, category="quality"),
        EventRows("ads", RowsExport, RAW, category="ads"),
        Metrics("metrics", MetricsExport, ("delivery_metrics",)),
        ViewRows("views", ViewsExport, SEGMENTS),
        Viewers("viewers", ViewersExport, SEGMENTS),
        Query("query", QueryExport, ("raw_events", "view_segments", "delivery_metrics")),
    )
}
# Every dataset-specific key, so a key set on the wrong data set is named as such.
ALL_DATASET_KEYS: Final = tuple(sorted({k for d in DATASETS.values() for k in d.keys}))
