"""What executions and export tasks share: a Dagster run read through GraphQL, checked to
be the caller's, its status in the seeds' words, and what it published (DESIGN.md: the
manifests of its windows, written last, and the error files of failed windows).

A run id from a request is never trusted: the run must be of the expected job and carry
the caller's `tenant` tag, or it answers 404 exactly like a run that does not exist.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import Depends
from pydantic import BaseModel, ValidationError

from exporter_pipeline.api.context import Services
from exporter_pipeline.api.dagster_client import tag_dict
from exporter_pipeline.api.errors import ApiError, not_found
from exporter_pipeline.api.pagination import PageRequest, page_request
from exporter_pipeline.api.ranges import Window
from exporter_pipeline.api.signed_urls import SECRET_NAME, download_url
from exporter_pipeline.destinations.base import Destination
from exporter_pipeline.errors import ExporterError
from exporter_pipeline.exports.manifest import ErrorRecord, Manifest
from exporter_pipeline.exports.naming import TIME_FORMAT, error_key, manifest_key, manifests_prefix
from exporter_pipeline.store.api_keys import service_secret

log = logging.getLogger(__name__)

# Dagster's run statuses in the words of seed 004 (executions) and seed 000 (tasks).
EXECUTION_STATUS: Final = {
    "QUEUED": "PENDING",
    "NOT_STARTED": "PENDING",
    "STARTING": "PENDING",
    "MANAGED": "PENDING",
    # Paused by Dagster, to be resumed: not running, not ended.
    "SUSPENDED": "PENDING",
    "STARTED": "RUNNING",
    "SUCCESS": "SUCCEEDED",
    "FAILURE": "FAILED",
    "CANCELING": "CANCELED",
    "CANCELED": "CANCELED",
}
TASK_STATUS: Final = {
    "QUEUED": "QUEUED",
    "NOT_STARTED": "QUEUED",
    "STARTING": "QUEUED",
    "MANAGED": "QUEUED",
    "SUSPENDED": "QUEUED",
    "STARTED": "STARTED",
    "SUCCESS": "FINISHED",
    "FAILURE": "ERROR",
    "CANCELING": "CANCELED",
    "CANCELED": "CANCELED",
}
ENDED: Final = frozenset({"SUCCESS", "FAILURE", "CANCELED", "CANCELING"})
GRAPHQL_INT_MAX: Final = 2**31 - 1
RUN_ID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Manifests read at once for a run of many windows (each is one GET on a cloud output).
READERS: Final = 8


def execution_status(dagster_status: str) -> str:
    return EXECUTION_STATUS.get(dagster_status, "PENDING")


def task_status(dagster_status: str) -> str:
    return TASK_STATUS.get(dagster_status, "QUEUED")


def moment(timestamp: float | None) -> datetime | None:
    """A Dagster time (epoch seconds) as UTC, to the millisecond."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(round(timestamp, 3), UTC)


def owned_run(
    services: Services,
    run_id: str,
    *,
    job: str,
    tags: dict[str, str],
    what: str,
    with_config: bool = False,
) -> dict[str, Any]:
    """Run `run_id` if it is a run of `job` carrying every tag of `tags` (the caller's
    tenant among them); else 404, the same for a missing run and another tenant's."""
    if not RUN_ID.fullmatch(run_id):
        raise not_found(what, run_id)
    run = services.dagster.run(run_id, with_config=with_config)
    if run is None or run.get("jobName") != job:
        raise not_found(what, run_id)
    found = tag_dict(run)
    if any(found.get(k) != v for k, v in tags.items()):
        raise not_found(what, run_id)
    return run


# Runs a list of runs may skip: Dagster reads every run up to the page's end (offset +
# limit), so a deeper page is refused rather than read (narrow the list instead).
MAX_RUN_OFFSET: Final = 100_000


def run_page_request(asked: Annotated[PageRequest, Depends(page_request)]) -> PageRequest:
    """`_page` and `_limit` of a list of runs (executions, export tasks): the items before
    the page at most MAX_RUN_OFFSET; else 422 at `_page`."""
    if asked.offset > MAX_RUN_OFFSET:
        raise ApiError(
            422,
            "invalid_parameter",
            f"_page {asked.page} of {asked.limit} starts after run {asked.offset:,}: lists of "
            f"runs are read up to {MAX_RUN_OFFSET:,} runs deep",
            title="Invalid request",
            parameter="_page",
        )
    return asked


def runs_page(
    services: Services,
    asked: PageRequest,
    *,
    job: str,
    tags: dict[str, str],
    with_config: bool = False,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the runs of `job` with `tags`, newest first, and how many there are."""
    # GraphQL's Int is 32 bits: a page past 2**31 runs is empty anyway.
    limit = min(asked.offset + asked.limit, GRAPHQL_INT_MAX)
    found, total = services.dagster.runs(job=job, tags=tags, limit=limit, with_config=with_config)
    return found[asked.offset :], total


class WindowOut(BaseModel):
    start: datetime
    end: datetime


class FileOut(BaseModel):
    key: str
    rows: int
    bytes: int
    sha256: str
    url: str
    expires_at: datetime
    window: WindowOut


class ErrorsOut(BaseModel):
    data: list[ErrorRecord]


@dataclass
class Published:
    """What a run published: the manifests and error files it wrote, by window."""

    manifests: list[Manifest] = field(default_factory=list)
    errors: list[ErrorRecord] = field(default_factory=list)

    @property
    def files(self) -> int:
        return sum(len(m.files) for m in self.manifests)

    @property
    def rows(self) -> int:
        return sum(m.rows for m in self.manifests)

    @property
    def bytes(self) -> int:
        return sum(m.bytes for m in self.manifests)


def _read(destination: Destination, key: str, model: type[Manifest] | type[ErrorRecord]) -> Any:
    try:
        return model.from_bytes(destination.get_bytes(key))
    except (FileNotFoundError, ValidationError, ExporterError):
        return None  # removed meanwhile, or not a file of ours


def _window_files(destination: Destination, path: str, windows: list[Window]) -> set[str]:
    """The keys under the manifests folder that can be the windows' manifests or error
    files: one listing, of the windows' longest common name prefix."""
    names = [f"{start.astimezone(UTC):{TIME_FORMAT}}" for start, _ in windows]
    common = os.path.commonprefix(names)  # noqa: RUF071  # names, not paths: by character
    return {o.key for o in destination.list(manifests_prefix(path) + common)}


def read_published(
    destination: Destination, path: str, windows: list[Window], run_id: str
) -> Published:
    """The manifests and error files of `windows` under `path` that run `run_id` wrote."""
    if not windows:
        return Published()
    present = _window_files(destination, path, windows)
    wanted: list[tuple[str, type[Manifest] | type[ErrorRecord]]] = []
    for window in windows:
        for key, model in (
            (manifest_key(path, *window), Manifest),
            (error_key(path, *window), ErrorRecord),
        ):
            if key in present:
                wanted.append((key, model))
    if len(wanted) > 1:
        with ThreadPoolExecutor(min(READERS, len(wanted))) as pool:
            read = list(pool.map(lambda w: _read(destination, *w), wanted))
    else:
        read = [_read(destination, *w) for w in wanted]
    mine = [r for r in read if r is not None and r.run_id == run_id]
    return Published(
        manifests=[r for r in mine if isinstance(r, Manifest)],
        errors=[r for r in mine if isinstance(r, ErrorRecord)],
    )


class PublishedCache:
    """What ended runs published, kept in memory: an ended run writes nothing more, and a
    list page would otherwise read every manifest of every run again."""

    def __init__(self, size: int = 10_000) -> None:
        self._found: dict[str, Published] = {}
        self._size = size
        self._lock = threading.Lock()

    def get(self, run_id: str) -> Published | None:
        with self._lock:
            return self._found.get(run_id)

    def put(self, run_id: str, published: Published) -> None:
        with self._lock:
            if len(self._found) >= self._size:
                self._found.clear()
            self._found[run_id] = published


PUBLISHED = PublishedCache()


def published_by(
    services: Services, run: dict[str, Any], output: str, path: str, windows: list[Window]
) -> Published:
    """What `run` published to `output` for `windows`; nothing when the output cannot be
    read now (logged): counts are then 0, as for a run that published nothing."""
    # Only a successful run's answer is final: a failed or canceled one gets its error
    # files from the failure sensor, a little after it ended.
    run_id, ended = str(run["runId"]), run.get("status") == "SUCCESS"
    cached = PUBLISHED.get(run_id) if ended else None
    if cached is not None:
        return cached
    try:
        with services.store.open_output(output, services.output_environ()) as destination:
            found = read_published(destination, path, windows, run_id)
    except ExporterError as error:
        log.warning("run %s: output %s not read: %s", run_id, output, error)
        return Published()
    if ended:
        PUBLISHED.put(run_id, found)
    return found


def file_links(services: Services, output: str, manifests: Iterable[Manifest]) -> list[FileOut]:
    """Every file of `manifests` with a download URL valid 7 days."""
    secret = service_secret(services.store.engine, SECRET_NAME)
    found = []
    try:
        with services.store.open_output(output, services.output_environ()) as destination:
            for manifest in manifests:
                window = WindowOut(start=manifest.window.start, end=manifest.window.end)
                for file in manifest.files:
                    url, expires_at = download_url(
                        destination,
                        output,
                        file.key,
                        base_url=services.settings.api_url,
                        secret=secret,
                    )
                    found.append(
                        FileOut(
                            key=file.key,
                            rows=file.rows,
                            bytes=file.bytes,
                            sha256=file.sha256,
                            url=url,
                            expires_at=expires_at,
                            window=window,
                        )
                    )
    except ExporterError as error:
        log.warning("output %s not read: %s", output, error)
        raise ApiError(
            502, "output_unavailable", f"the output {output!r} cannot be read now"
        ) from None
    return found


def errors_of(published: Published, what: str, run_id: str) -> ErrorsOut:
    if not published.errors:
        raise ApiError(404, "not_found", f"{what} {run_id!r} has no error file", title="Not found")
    return ErrorsOut(data=published.errors)
