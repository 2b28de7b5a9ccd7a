"""All-or-nothing publication of one export window: a name never changes content.

The window is what its manifest lists. New files go only to names that are not live: the
plain contract name when the window was never published and no name of it was ever used
(no manifest, no object there, no error file of a run that had put files), else a
versioned name carrying the content's sha256 prefix
(`2026-10-01-05-00.3f9a2b1c4d5e.csv.gz`), which can only ever hold that content. A file
identical to the one the old manifest lists is not uploaded again. Just before the switch
the run checks its files are all there. Writing the manifest is the switch (a put is
atomic on every destination); only then are the files of the manifest it replaced
removed, and data files of the window's times that no manifest in the folder lists
(another window's or another export's manifest may list a file of these times) and that
are older than this run (a killed run's leftovers; younger ones are a running run's).

A failure before the switch removes what this run uploaded and leaves the old window as
it was; a kill leaves unlisted files at names nobody was promised, which the next run of
the window removes. A failure after the switch (removing old files) leaves the new window
published: the run succeeds and reports the keys it could not remove. Two runs of one
window at once: the later switch wins and removes the other's files; a run whose uploads
the other removed as leftovers fails before its switch, leaving the other's window.
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
from exporter_pipeline.errors import RetryableDestinationError
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

    def listed(self) -> dict[str, ManifestFile]:
        return self.manifest.listed() if self.manifest else {}


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
        return Live(manifest, keys, tried)

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
        live, files = self.upload(staged, suffix, began)
        return self.complete(live, files, manifest_of, began)

    def upload(
        self, staged: Sequence[Staged | ManifestFile], suffix: str, began: datetime
    ) -> tuple[Live, list[ManifestFile]]:
        """Put the window's new files at names that are not live; what the manifest will list."""
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
        return live, files

    def complete(
        self,
        live: Live,
        files: list[ManifestFile],
        manifest_of: Callable[[list[ManifestFile]], bytes],
        began: datetime,
    ) -> Published:
        """Check the files are there, switch, then remove what no manifest lists."""
        now = {info.key: info for info in _window_listing(*self._window)}
        gone = [f.key for f in files if f.key not in now or now[f.key].size != f.bytes]
        if gone:
            # Another run of the window took them for a dead run's leftovers.
            raise RetryableDestinationError(
                f"files {gone} of this run are no longer at {self.output.uri(self.path)}: "
                "another run of the window removed them; the window is left as that run "
                "published it (run the window again)"
            )
        replaced = self._replaced()  # another run of the window may have switched since
        self._switch(manifest_of(files))
        keep = {f.key for f in files}
        # The old manifest's files still there (another run may have removed them).
        listed = ((set(live.listed()) & set(now)) | replaced) - keep
        stale = sorted(listed | self._unlisted(now, keep | listed, began))
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

    @property
    def _window(self) -> tuple[Destination, str, datetime, datetime]:
        return self.output, self.path, self.start, self.end

    def _replaced(self) -> set[str]:
        """The files of the manifest this run's switch replaces, read just before it."""
        try:
            return set(Manifest.from_bytes(self.output.get_bytes(self.manifest_key)).listed())
        except (FileNotFoundError, ValidationError):
            return set()

    def _unlisted(self, now: dict[str, ObjectInfo], known: set[str], began: datetime) -> set[str]:
        """Data files of the window's times no manifest lists, written before this run
        began (a killed run's leftovers; younger ones are a running run's uploads)."""
        # A bucket's times are whole seconds: a running run's upload of this run's first
        # second looks older and goes; that run then fails before its switch (`complete`).
        candidates = {k for k, info in now.items() if k not in known and info.modified < began}
        if not candidates:  # the usual case: no manifest folder listing at all
            return set()
        others = overlapping_manifests(*self._window, skip=self.manifest_key)
        if others is None:  # one could not be read: what it lists is unknown, keep all
            log.warning("kept unlisted files %s: a manifest beside could not be read", candidates)
            return set()
        return candidates - others

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
        # Another run of the window may have switched to a manifest listing one of these
        # names (the same content gets the same versioned name): it is live, keep it.
        with contextlib.suppress(Exception):
            live = self._replaced()
            self.uploaded = [key for key in self.uploaded if key not in live]
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


def overlapping_manifests(
    output: Destination, path: str, start: datetime, end: datetime, skip: str
) -> set[str] | None:
    """Every key listed by a manifest of `path` (but `skip`) whose window meets
    [start, end): a task's window of other times, or another export's window in the same
    folder. None when one of them cannot be read. Only those manifests are read."""
    listed: set[str] = set()
    for info in output.list(manifests_prefix(path)):
        window = manifest_window(path, info.key)
        if info.key == skip or window is None or not (window[0] < end and window[1] > start):
            continue
        try:
            listed |= set(Manifest.from_bytes(output.get_bytes(info.key)).listed())
        except FileNotFoundError:
            continue  # replaced or removed since the listing: it lists nothing now
        except ValidationError:
            return None
    return listed
