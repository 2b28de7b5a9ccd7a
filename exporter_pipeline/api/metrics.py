"""Metrics (seed 001, Peer5's export): a synchronous query of the tenant's delivery
metrics per interval, split by up to two dimensions, as JSON or a CSV download.

Seed 001 takes its request as a JSON body; here it is `GET` with query parameters of the
same names: `metrics` and `dimensions` repeated or comma separated, `filters` the same
JSON object (`{"country.code": ["US", "DE"]}`). The rules (known names, at most two
dimensions, aligned ends, the range limits of each interval) are the export data set's
own (`exports/metric_rules.py`), and so are the numbers (`exports/selections.metrics`).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import polars as pl
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from exporter_pipeline.api.context import CallerDep, ServicesDep
from exporter_pipeline.api.errors import ApiError
from exporter_pipeline.api.lake_files import hour_files
from exporter_pipeline.api.params import bad, listed, refusal, repeated
from exporter_pipeline.derived.delivery_metrics import DIMENSIONS
from exporter_pipeline.exports.definition_parts import shown
from exporter_pipeline.exports.fields import METRIC_INTERVALS, METRIC_NAMES
from exporter_pipeline.exports.metric_rules import aligned_message, choice_rules, range_rules
from exporter_pipeline.exports.selections import MetricQuery, metrics

router = APIRouter(tags=["metrics"])

# Epoch milliseconds a request may name: 1970-01-01 up to 2100-12-31 (datetime's range).
LAST_MS = 4_133_980_800_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MetricsRow(BaseModel):
    """One interval (and one value of each dimension asked): `timestamp`, the dimensions
    by their seed names, then the metrics asked, in the order asked. A key is present
    only when asked for; a dimension value may be null (not known for those events)."""

    model_config = ConfigDict(populate_by_name=True)

    timestamp: int = Field(description="Start of the interval, UTC epoch milliseconds.")
    browser_name: str | None = Field(None, alias="browser.name")
    country_code: str | None = Field(None, alias="country.code")
    city_name: str | None = Field(None, alias="city.name")
    isp_name: str | None = Field(None, alias="isp.name")
    os_name: str | None = Field(None, alias="os.name")
    session_page: str | None = Field(None, alias="session.page")
    http: int | None = Field(None, description="Bytes delivered via HTTP.")
    p2p: int | None = Field(None, description="Bytes delivered via P2P.")
    played: int | None = Field(None, description="Milliseconds the players were playing.")
    rebuffered: int | None = Field(None, description="Milliseconds the players were buffering.")
    sessions: float | None = Field(
        None, description="Average over the interval's minutes of the active sessions."
    )


class MetricsAnswer(BaseModel):
    """Seed 001's answer: `error` false and one row per interval and dimension values,
    ordered by timestamp then dimension values (nulls last). Intervals without data
    have no row."""

    error: Literal[False] = False
    data: list[MetricsRow]


CSV_EXAMPLE = '"timestamp","browser.name","http","p2p"\n1509494400000,"Chrome",1000,2500\n'


@router.get(
    "/metrics",
    response_model=MetricsAnswer,
    summary="Query the tenant's delivery metrics",
    responses={200: {"content": {"text/csv": {"example": CSV_EXAMPLE}}}},
)
def get_metrics(
    services: ServicesDep,
    caller: CallerDep,
    metrics_: Annotated[
        list[str],
        Query(
            alias="metrics",
            description=f"Some of {', '.join(METRIC_NAMES)} (repeat or comma separate).",
        ),
    ],
    from_: Annotated[int, Query(alias="from", description="Start, UTC epoch ms (inclusive).")],
    to: Annotated[int, Query(description="End, UTC epoch ms (exclusive).")],
    interval: Annotated[str, Query(description=f"One of {', '.join(METRIC_INTERVALS)}.")],
    dimensions: Annotated[
        list[str] | None,
        Query(description=f"At most 2 of {', '.join(DIMENSIONS)} (repeat or comma separate)."),
    ] = None,
    filters: Annotated[
        str | None,
        Query(description='JSON object: dimension -> values, e.g. {"country.code": ["US"]}.'),
    ] = None,
    format: Annotated[Literal["json", "csv"], Query(description="json or csv.")] = "json",
) -> Response:
    """Seed 001's metrics of [from, to) per `interval`: sums of `http`, `p2p`, `played`,
    `rebuffered` and the average `sessions`, split by `dimensions`, limited to `filters`.

    Limits (seed 001): from and to aligned to the interval; 1m and 5m at most 6 hours
    within the last 7 days; 10m and 30m at most 7 days within the last 14 days; 1h, 3h
    and 12h within the last 14 days; 1d, 7d and 14d unlimited.
    """
    asked = MetricQuery(
        tenant=caller.tenant,
        metrics=listed(metrics_),
        interval=interval,
        dimensions=listed(dimensions),
        filters={},
    )
    found = _filters(filters)
    problems = found if isinstance(found, list) else []
    problems += _request_problems(asked, from_, to, datetime.now(UTC))
    if problems:
        return refusal(problems)
    assert isinstance(found, dict)
    asked = dataclasses.replace(asked, filters=found)
    start, end = _utc(from_), _utc(to)
    with hour_files(services.settings.lake_url, "delivery_metrics", start, end) as files:
        rows = metrics(asked, files, start, end).collect() if files else _no_rows(asked)
    if format == "csv":
        return _csv(rows.write_csv(quote_style="non_numeric"))
    # polars writes the rows as seed 001's objects far faster than a model per row could.
    body = b'{"error":false,"data":' + rows.write_json().encode() + b"}"
    return Response(body, media_type="application/json")


def _csv(text: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="metrics.csv"'},
    )


def _utc(epoch_ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=epoch_ms)


def _no_rows(asked: MetricQuery) -> pl.DataFrame:
    """The answer's columns without a row: the lake holds none of the range's hours."""
    columns = {"timestamp": pl.Int64(), **{d: pl.String() for d in asked.dimensions}}
    columns |= {m: pl.Float64() if m == "sessions" else pl.Int64() for m in asked.metrics}
    return pl.DataFrame(schema=columns)


def _request_problems(
    asked: MetricQuery, from_ms: int, to_ms: int, now: datetime
) -> list[ApiError]:
    problems = [bad(p, m) for p, m in choice_rules(asked.metrics, asked.interval, asked.dimensions)]
    problems += repeated("metrics", asked.metrics) + repeated("dimensions", asked.dimensions)
    ends = {"from": from_ms, "to": to_ms}
    wrong = [
        bad(name, f"{name} must be epoch milliseconds from 0 (1970) up to {LAST_MS} (2101)")
        for name, value in ends.items()
        if not 0 <= value < LAST_MS
    ]
    if wrong:
        return problems + wrong
    if to_ms <= from_ms:
        return [*problems, bad("to", "to must be after from", "invalid_range")]
    if asked.interval not in METRIC_INTERVALS:
        return problems
    start, end = _utc(from_ms), _utc(to_ms)
    # Seed 001's rounding, to the millisecond (the export's rule reads whole seconds).
    step_ms = METRIC_INTERVALS[asked.interval] * 1000
    rules = [
        (name, aligned_message(name, asked.interval, _utc(value)))
        for name, value in ends.items()
        if value % step_ms
    ]
    rules += range_rules(asked.interval, start, end, now, names=("from", "to"))
    return problems + [bad(p, m, "invalid_range") for p, m in rules]


def _filters(text: str | None) -> dict[str, list[str]] | list[ApiError]:
    """Seed 001's `filters` object, given as JSON: dimension -> values (a single value
    may stand alone)."""
    if text is None or not text.strip():
        return {}
    usage = 'filters must be a JSON object of dimension to values, like {"country.code": ["US"]}'
    try:
        given: Any = json.loads(text)
    # Deep nesting (`[[[[…`) is a RecursionError of the parser, not a server failure.
    except (ValueError, RecursionError):
        return [bad("filters", f"{usage}, not {shown(text)}")]
    if not isinstance(given, dict):
        return [bad("filters", usage)]
    found: dict[str, list[str]] = {}
    problems = []
    for name, values in given.items():
        values = [values] if isinstance(values, str) else values
        if name not in DIMENSIONS:
            problems.append(
                bad(
                    "filters",
                    f"cannot filter metrics on {shown(name)} (filterable: {', '.join(DIMENSIONS)})",
                )
            )
        elif not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            problems.append(bad("filters", f"filters[{name}] must be a list of strings"))
        else:
            found[name] = values
    return problems or found
