"""All-or-nothing publication of one export window: a name never changes content.

The window is what its manifest lists. New files go only to names that are not live: the
plain contract name when the window was never published and no name of it was ever used
(no manifest, no object there, no error file of a run that had put files), else a
versioned name carrying the content's sha256 prefix
(`2026-10-01-05-00.3f9a2b1c4d5e.csv.gz`), which can only ever hold that content. A file
identical to the one the old manifest lists is not uploaded again. Writing the manifest
is the switch (a put is atomic on every destination); only then are the old manifest's
other files, and data files of the window's times a killed run left unlisted, removed.

A failure before the switch removes what this run uploaded and leaves the old window as
it was; a kill leaves unlisted files at names nobody was promised, which the next run of
the window removes. A failure after the switch (removing old files) leaves the new window
published: the run succeeds and reports the keys it could not remove.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from exporter_pipeline.destinations import Destination, ObjectInfo
from exporter_pipeline.exports.manifest import ErrorRecord, Manifest, ManifestFile, sha256_of
from exporter_pipeline.exports.naming import (
    TIME_FORMAT,
    VERSION_CHARS,
    data_key,
    data_key_prefix,
    data_key_time,
    error_key,
    manifest_key,
    manifest_window,
    manifests_prefix,
)
from exporter_pipeline.windows import hours_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Staged:
    """A complete local file of the window, before it has a final name."""

    local: Path
    moment: datetime
    part: int | None
    rows: int


@dataclass(frozen=True)
class Live:
    """What the output holds for the window before this run publishes."""

    manifest: Manifest | None
    # Data files of the window's times, listed once: key -> size.
    keys: dict[str, int]
    # An earlier run of the window failed after putting files at final names.
    tried: bool
    # Files of the window's times another window's manifest lists (an on-demand task in
    # a definition's folder): never removed as this window's leftovers.
    theirs: frozenset[str] = frozenset()

    def listed(self) -> dict[str, ManifestFile]:
        return {f.key: f for f in self.manifest.files} if self.manifest else {}


def final_key(
    live: Live, path: str, staged: Staged, suffix: str, sha256: str, size: int
) -> tuple[str, bool]:
    """The name a new file of the window is published under, and whether it must be
    uploaded (not when that name is already live with this content)."""
    listed = live.listed()
    plain = data_key(path, staged.moment, suffix, staged.part)
    versioned = data_key(path, staged.moment, suffix, staged.part, sha256[:VERSION_CHARS])
    for key in (plain, versioned):
        entry = listed.get(key)
        if entry is not None and entry.sha256 == sha256 and live.keys.get(key) == size:
            return key, False
    if live.manifest is None and not live.tried and plain not in live.keys:
        return plain, True
    return versioned, True


@dataclass
class Published:
    files: list[ManifestFile]
    removed: list[str]
    # Keys the clean-up after the switch could not remove (the next run removes them).
    left: list[str]


@dataclass
class Publication:
    """One run's publication of one window: `switched` once its manifest is written."""

    output: Destination
    path: str
    start: datetime
    end: datetime
    uploaded: list[str] = field(default_factory=list)
    switched: bool = False
    # The manifest's put failed and reading it back did too: whether it landed is unknown.
    uncertain: bool = False

    @property
    def manifest_key(self) -> str:
        return manifest_key(self.path, self.start, self.end)

    def live(self, began: datetime) -> Live:
        """The window as the output holds it; first removes what writes killed before
        `began` left (a local folder's temporaries of the window's names)."""
        data_prefix = data_key_prefix(self.path, _common_name(self.start, self.end))
        self.output.remove_temporaries(data_prefix, began)
        beside_prefix = self.manifest_key.removesuffix(".json")  # the manifest, the error file
        self.output.remove_temporaries(beside_prefix, began)
        listing = _window_listing(self.output, self.path, self.start, self.end)
        keys = {info.key: info.size for info in listing}
        # One listing finds both the manifest and the error file (`<window>.error.json`).
        beside = {info.key for info in self.output.list(beside_prefix)}
        manifest = None
        tried = self._uploaded_before(beside)
        if self.manifest_key in beside:
            try:
                manifest = Manifest.from_bytes(self.output.get_bytes(self.manifest_key))
            except ValidationError:
                tried = True  # not a manifest we can read: publish under new names only
        return Live(manifest, keys, tried, self._listed_by_others(keys))

    def _listed_by_others(self, keys: dict[str, int]) -> frozenset[str]:
        """Of `keys`, those listed by the manifest of another window sharing a time."""
        ours = {*hours_of(self.start, self.end), self.start}
        theirs: set[str] = set()
        for info in self.output.list(manifests_prefix(self.path)):
            window = manifest_window(self.path, info.key)
            if window is None or info.key == self.manifest_key:
                continue
            if ours.isdisjoint({*hours_of(*window), window[0]}):
                continue
            try:
                listed = Manifest.from_bytes(self.output.get_bytes(info.key)).files
            except (ValidationError, FileNotFoundError):
                continue  # an unreadable or vanished manifest keeps nothing
            theirs |= {f.key for f in listed if f.key in keys}
        return frozenset(theirs)

    def _uploaded_before(self, beside: set[str]) -> bool:
        """Whether an earlier run of the window failed after putting files at final names
        (its error file says how many; it removed them, but a consumer may have seen
        them). A run that failed before putting any, or died (what it put is still
        there), leaves the plain names free."""
        key = error_key(self.path, self.start, self.end)
        if key not in beside:
            return False
        try:
            return ErrorRecord.from_bytes(self.output.get_bytes(key)).files_uploaded > 0
        except FileNotFoundError:  # removed since the listing: a run published since
            return False
        except ValidationError:
            return True  # not an error file we can read: new names only

    def publish(
        self,
        staged: Sequence[Staged | ManifestFile],
        suffix: str,
        manifest_of: Callable[[list[ManifestFile]], bytes],
        began: datetime,
    ) -> Published:
        """Upload, switch, clean up (see the module docstring). A `ManifestFile` is a
        file the old manifest lists, kept as it is (erasure's untouched files)."""
        live = self.live(began)
        files = []
        for item in staged:
            if isinstance(item, ManifestFile):
                files.append(item)
                continue
            size, sha256 = item.local.stat().st_size, sha256_of(item.local)
            key, fresh = final_key(live, self.path, item, suffix, sha256, size)
            if fresh:
                self.uploaded.append(key)  # before the put: a failed put may have landed
                self.output.move_file(item.local, key)  # a rename for a local folder
            files.append(ManifestFile(key, item.rows, size, sha256))
        self._switch(manifest_of(files))
        keep = {f.key for f in files}
        stale = sorted((set(live.keys) | set(live.listed())) - keep - live.theirs)
        removed, left = [], []
        for key in [*stale, error_key(self.path, self.start, self.end)]:
            try:
                self.output.delete(key)
            except Exception as error:  # the new window stands; the next run retries
                log.warning(
                    "published %s but could not remove %s: %s", self.manifest_key, key, error
                )
                left.append(key)
                continue
            if key in stale:
                removed.append(key)
        return Published(files, removed, left)

    def _switch(self, data: bytes) -> None:
        try:
            self.output.put_bytes(data, self.manifest_key)
        except Exception:
            landed = self._landed(data)
            self.uncertain = landed is None
            if not landed:
                raise
        self.switched = True

    def _landed(self, data: bytes) -> bool | None:
        """Whether the manifest at its key is `data` (None: the output cannot say)."""
        try:
            return self.output.get_bytes(self.manifest_key) == data
        except FileNotFoundError:
            return False
        except Exception:
            return None

    def abandon(self) -> None:
        """After a failure before the switch: remove what this run uploaded (never live
        names), best effort. Left alone when the manifest may have landed."""
        if self.switched or self.uncertain:
            return
        for key in self.uploaded:
            with contextlib.suppress(Exception):  # the run's own error is the one to report
                self.output.delete(key)


def _common_name(start: datetime, end: datetime) -> str:
    names = [f"{moment.astimezone(UTC):{TIME_FORMAT}}" for moment in {*hours_of(start, end), start}]
    return os.path.commonprefix(names)  # noqa: RUF071  # names, not paths: by character


def _window_listing(
    output: Destination, path: str, start: datetime, end: datetime
) -> list[ObjectInfo]:
    """Data files of the window's times under `path`, listing only the keys that share
    the window's longest common name prefix (a day's files for a daily window)."""
    times = {*hours_of(start, end), start}
    return [
        info
        for info in output.list(data_key_prefix(path, _common_name(start, end)))
        if data_key_time(path, info.key) in times
    ]
