"""Views and viewers (seed 003, IBM Video's raw views API): the tenant's view segments of
a time range, page by page, and its unique viewers with their segments.

`start` and `end` (seed 003's `date_time_from` / `date_time_to` are accepted too) are
ISO 8601; without an offset they are read in `timezone` (America/Los_Angeles by default,
as the seed says), which also gives the offset of every time in the answer. The range
rules (`inclusive_range`, `list_unfinished_segments`) and the selection are the export
data sets' own (`exports/selections.py`); a page reads only what it needs of the lake
(`segment_pages.py`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import polars as pl
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from exporter_pipeline.api.context import CallerDep, ServicesDep
from exporter_pipeline.api.errors import ApiError
from exporter_pipeline.api.lake_files import hour_files
from exporter_pipeline.api.pagination import Page, PageRequest, page_of, page_request
from exporter_pipeline.api.params import bad, listed, moment, refusal, time_zone
from exporter_pipeline.api.segment_pages import view_page, viewer_page
from exporter_pipeline.api.view_models import View, Viewer
from exporter_pipeline.exports.definition_parts import shown
from exporter_pipeline.exports.fields import MAX_ON_DEMAND_DAYS
from exporter_pipeline.exports.selections import (
    SegmentQuery,
    viewer_segments,
)

router = APIRouter(tags=["views"])

DEFAULT_ZONE = "America/Los_Angeles"


@dataclass(frozen=True)
class SegmentRequest:
    """A valid request's selection, its range in UTC and the zone of its answer."""

    query: SegmentQuery
    start: datetime
    end: datetime
    zone: ZoneInfo


def segment_request(
    caller: CallerDep,
    start: Annotated[str | None, Query(description="ISO 8601; required.")] = None,
    end: Annotated[str | None, Query(description="ISO 8601, after start; required.")] = None,
    date_time_from: Annotated[str | None, Query(description="Seed 003's name of start.")] = None,
    date_time_to: Annotated[str | None, Query(description="Seed 003's name of end.")] = None,
    timezone: Annotated[
        str, Query(description="IANA zone of times without an offset, and of the answer's.")
    ] = DEFAULT_ZONE,
    inclusive_range: Annotated[
        bool,
        Query(
            description="true: also segments that started before start and finished in the "
            "range; false: only segments that started and finished in the range."
        ),
    ] = True,
    list_unfinished_segments: Annotated[
        bool, Query(description="false: only finished segments.")
    ] = True,
    # Named apart from the path parameter of /views/{content_type}, which FastAPI matches
    # by Python name; the query parameter is still `content_type`.
    content_kind: Annotated[Literal["live", "recorded"] | None, Query(alias="content_type")] = None,
    content_id: Annotated[
        list[str] | None, Query(description="Content ids, comma separated or repeated.")
    ] = None,
) -> SegmentRequest | list[ApiError]:
    """The request's selection, or every problem of it."""
    zone = time_zone(timezone)
    if zone is None:
        return [
            bad(
                "timezone",
                f"unknown time zone {shown(timezone)} (use an IANA name like {DEFAULT_ZONE})",
            )
        ]
    ends, problems = _ends(
        {"start": start, "date_time_from": date_time_from},
        {"end": end, "date_time_to": date_time_to},
        zone=zone,
    )
    if not problems:
        problems += _range_problems(ends["start"], ends["end"], "end" if end else "date_time_to")
    if problems:
        return problems
    query = SegmentQuery(
        tenant=caller.tenant,
        content_type=content_kind,
        content_ids=listed(content_id) or None,
        inclusive_range=inclusive_range,
        list_unfinished_segments=list_unfinished_segments,
    )
    # The lake's times are UTC: the range is compared in UTC, the zone kept for the answer.
    return SegmentRequest(query, ends["start"].astimezone(UTC), ends["end"].astimezone(UTC), zone)


def _ends(
    *pairs: dict[str, str | None], zone: ZoneInfo
) -> tuple[dict[str, datetime], list[ApiError]]:
    """Each end of the range, from its own parameter or seed 003's name of it."""
    ends, problems = {}, []
    for pair in pairs:
        (name, given), (seed_name, seed_given) = pair.items()
        if given is not None and seed_given is not None:
            problems.append(bad(seed_name, f"give {name} or {seed_name}, not both"))
        elif given is None and seed_given is None:
            problems.append(bad(name, f"{name} is required (an ISO 8601 date and time)"))
        else:
            parameter, text = (name, given) if given is not None else (seed_name, seed_given)
            found = moment(parameter, str(text), zone)
            if isinstance(found, str):
                problems.append(bad(parameter, found))
            else:
                ends[name] = found
    return ends, problems


def _range_problems(start: datetime, end: datetime, end_name: str) -> list[ApiError]:
    if end <= start:
        return [bad(end_name, f"{end_name} must be after start", "invalid_range")]
    if end - start > timedelta(days=MAX_ON_DEMAND_DAYS):
        return [
            bad(
                end_name,
                f"start and end may be at most {MAX_ON_DEMAND_DAYS} days apart",
                "invalid_range",
            )
        ]
    return []


SegmentRequestDep = Annotated[SegmentRequest | list[ApiError], Depends(segment_request)]
PageDep = Annotated[PageRequest, Depends(page_request)]


def _page_json(request: Request, data: pl.DataFrame, total: int, asked: PageRequest) -> Response:
    """The list envelope around rows already shaped as resources (`type`, `attributes`).

    polars writes the resources as JSON far faster than a model per row could be built
    and dumped (a page of 10,000 views); the tests hold the answers to the models.
    """
    shell = page_of(request, [None] * data.height, total, asked)
    body = b"".join(
        (
            b'{"data":',
            data.write_json().encode() if data.height else b"[]",
            b',"meta":',
            shell.meta.model_dump_json().encode(),
            b',"links":',
            shell.links.model_dump_json().encode(),
            b"}",
        )
    )
    return Response(body, media_type="application/json")


@router.get("/views", response_model=Page[View], summary="List the tenant's view segments")
def list_views(
    request: Request, services: ServicesDep, asked: SegmentRequestDep, page: PageDep
) -> Response:
    """Seed 003 `/views`: every view segment of the range, by start time then id."""
    if isinstance(asked, list):
        return refusal(asked)
    with hour_files(services.settings.lake_url, "view_segments", asked.start, asked.end) as files:
        if not files:
            return _page_json(request, pl.DataFrame(), 0, page)
        found, total = view_page(asked.query, files, asked.start, asked.end, asked.zone, page)
    return _page_json(request, found, total, page)


@router.get("/viewers", response_model=Page[Viewer], summary="List the tenant's unique viewers")
def list_viewers(
    request: Request,
    services: ServicesDep,
    asked: SegmentRequestDep,
    page: PageDep,
    viewer_identifier: Annotated[
        str | None, Query(description="Only viewers whose identifier contains this text.")
    ] = None,
) -> Response:
    """Seed 003 `/viewers`: the unique viewers of the range's segments, by identifier,
    each with those segments."""
    if isinstance(asked, list):
        return refusal(asked)
    query = dataclasses.replace(asked.query, viewer_identifier=viewer_identifier)
    with hour_files(services.settings.lake_url, "view_segments", asked.start, asked.end) as files:
        if not files:
            return _page_json(request, pl.DataFrame(), 0, page)
        segments = viewer_segments(query, files, asked.start, asked.end)
        found, total = viewer_page(query, segments, asked.zone, page)
    return _page_json(request, found, total, page)


# Seed 003's path form of the content type: `/views/live` is `/views?content_type=live`.
ContentTypePath = Annotated[Literal["live", "recorded"], Path(description="live or recorded")]


def _of_type(
    asked: SegmentRequest | list[ApiError], content_type: str
) -> SegmentRequest | list[ApiError]:
    if isinstance(asked, list):
        return asked
    if asked.query.content_type not in (None, content_type):
        return [
            bad(
                "content_type",
                f"the path says content type {content_type}: leave out "
                "?content_type= or make it the same",
            )
        ]
    return dataclasses.replace(
        asked, query=dataclasses.replace(asked.query, content_type=content_type)
    )


@router.get(
    "/views/{content_type}",
    response_model=Page[View],
    summary="List the tenant's view segments of one content type",
)
def list_views_of_type(
    request: Request,
    services: ServicesDep,
    asked: SegmentRequestDep,
    page: PageDep,
    content_type: ContentTypePath,
) -> Response:
    """Seed 003 `/views/{content_type}`: `/views` of live or recorded content only."""
    return list_views(request, services, _of_type(asked, content_type), page)


@router.get(
    "/viewers/{content_type}",
    response_model=Page[Viewer],
    summary="List the tenant's unique viewers of one content type",
)
def list_viewers_of_type(
    request: Request,
    services: ServicesDep,
    asked: SegmentRequestDep,
    page: PageDep,
    content_type: ContentTypePath,
    viewer_identifier: Annotated[
        str | None, Query(description="Only viewers whose identifier contains this text.")
    ] = None,
) -> Response:
    """Seed 003 `/viewers/{content_type}`: `/viewers` over live or recorded content only."""
    narrowed = _of_type(asked, content_type)
    return list_viewers(request, services, narrowed, page, viewer_identifier)
