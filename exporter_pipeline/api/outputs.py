"""Outputs (seed 000): a tenant's own targets; credentials are write-only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from exporter_pipeline.api.context import CallerDep, ServicesDep
from exporter_pipeline.api.pagination import Page, PageRequest, page_of, page_request

router = APIRouter(tags=["outputs"])


class OutputOut(BaseModel):
    name: str
    type: str
    settings: dict[str, Any]
    credentials: list[str]


@router.get("/outputs", response_model=Page[OutputOut], summary="List the tenant's outputs")
def list_outputs(
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    asked: Annotated[PageRequest, Depends(page_request)],
) -> Page[OutputOut]:
    document = services.store.document([caller.tenant])
    mine = [
        (name, body)
        for name, body in sorted(document["outputs"].items())
        if body.get("tenant") == caller.tenant
    ]
    page = mine[asked.offset : asked.offset + asked.limit]
    items = [
        OutputOut(
            name=name,
            type=str(body["type"]),
            settings={k: v for k, v in body.items() if k not in ("type", "tenant")},
            credentials=services.store.credential_names(name),
        )
        for name, body in page
    ]
    return page_of(request, items, len(mine), asked)
