"""Lists of the API (DESIGN.md): `_page` from 1, `_limit` 1 … 10,000 (100 by default);
`{"data": [...], "meta": {"page", "limit", "total"}, "links": {"next", "prev"}}`, where
`next` is null on the last page and `prev` on the first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Query, Request
from pydantic import BaseModel

Item = TypeVar("Item")

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 100


@dataclass(frozen=True)
class PageRequest:
    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def page_request(
    page: Annotated[int, Query(alias="_page", ge=1, le=1_000_000_000, description="From 1.")] = 1,
    limit: Annotated[
        int, Query(alias="_limit", ge=1, le=MAX_LIMIT, description="Items per page.")
    ] = DEFAULT_LIMIT,
) -> PageRequest:
    return PageRequest(page, limit)


class PageMeta(BaseModel):
    page: int
    limit: int
    total: int


class PageLinks(BaseModel):
    next: str | None
    prev: str | None


class Page(BaseModel, Generic[Item]):
    data: list[Item]
    meta: PageMeta
    links: PageLinks


def _link(request: Request, page: int) -> str:
    return str(request.url.include_query_params(_page=page))


def page_of(request: Request, items: list[Item], total: int, asked: PageRequest) -> Page[Item]:
    """One page of a list of `total` items, `items` being this page's."""
    last = asked.offset + len(items) >= total
    return Page(
        data=items,
        meta=PageMeta(page=asked.page, limit=asked.limit, total=total),
        links=PageLinks(
            next=None if last else _link(request, asked.page + 1),
            prev=None if asked.page == 1 else _link(request, asked.page - 1),
        ),
    )


def page_of_all(request: Request, items: list[Item], asked: PageRequest) -> Page[Item]:
    """The asked page of `items`, the whole list (already in memory)."""
    page = items[asked.offset : asked.offset + asked.limit]
    return page_of(request, page, len(items), asked)
