"""The answers of `GET /v1/views` and `GET /v1/viewers`: seed 003's View and Viewer
resources (`{"type", "attributes"}`) with its field names, inside the API's list
envelope. Times are ISO 8601 with the offset of the request's `timezone`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SegmentFields(BaseModel):
    """What seed 003's View and Segment share."""

    model_config = ConfigDict(populate_by_name=True)

    content_type: Literal["live", "recorded"] | None = Field(description="Watched content type.")
    content_id: str
    started_at: datetime = Field(description="Start of the segment.")
    finished_at: datetime | None = Field(description="Its end; null while unfinished.")
    from_: int | None = Field(alias="from", description="Position at the start, seconds.")
    to: int | None = Field(description="Position at the end (or the last seen), seconds.")
    client_id: str | None = Field(description="Identifier of the player client (device).")
    view_session_id: str = Field(description="Player session identifier.")
    country: str | None
    city: str | None
    is_mobile_view: bool
    view_type: Literal["onsite", "offsite"]


class ViewAttributes(SegmentFields):
    view_id: str = Field(description="The segment's id (a UUID).")
    viewer_identifier: str | None = Field(description="The user, or the device when anonymous.")


class View(BaseModel):
    """One view segment on a content (seed 003 View)."""

    type: Literal["View"] = "View"
    attributes: ViewAttributes


class Segment(SegmentFields):
    """One view segment of a viewer (seed 003 Segment)."""

    id: str = Field(description="The segment's id (a UUID), the view_id of /views.")


class ViewerAttributes(BaseModel):
    viewer_identifier: str | None
    videos_watched: int = Field(description="Distinct contents among the segments.")
    last_activity: datetime = Field(description="The latest start or finish of a segment.")
    segments: list[Segment] = Field(description="The viewer's segments, by start.")


class Viewer(BaseModel):
    """One unique viewer with their segments of the range (seed 003 Viewer)."""

    type: Literal["Viewer"] = "Viewer"
    attributes: ViewerAttributes
