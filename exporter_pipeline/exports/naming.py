"""Output names (DESIGN.md, Output names): one pure function per kind of key."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

TIME_FORMAT: Final = "%Y-%m-%d-%H-%M"
MANIFEST_FOLDER: Final = "_manifests"
ERROR_SUFFIX: Final = ".error.json"
_DATA_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2}-\d{2}-\d{2})(?:-(\d{3}))?\.[a-z0-9.]+$")
_MANIFEST_NAME = re.compile(
    r"(\d{4}-\d{2}-\d{2}-\d{2}-\d{2})_(\d{4}-\d{2}-\d{2}-\d{2}-\d{2})\.json"
)
# A versioned name carries this many lowercase hex characters of its content's sha256.
VERSION_CHARS: Final = 12


def _join(path: str, name: str) -> str:
    return f"{path.strip('/')}/{name}" if path.strip("/") else name


def data_key(
    path: str, moment: datetime, suffix: str, part: int | None = None, version: str | None = None
) -> str:
    """`<path>/yyyy-MM-dd-HH-mm[-NNN][.<version>].<suffix>` (seed 000's naming, parts when
    split; `version`, the content's sha256 prefix, when the plain name is taken)."""
    number = f"-{part:03d}" if part is not None else ""
    if version is not None and not re.fullmatch(f"[0-9a-f]{{{VERSION_CHARS}}}", version):
        raise ValueError(f"version {version!r} is not {VERSION_CHARS} lowercase hex characters")
    tag = f".{version}" if version is not None else ""
    return _join(path, f"{moment.astimezone(UTC):{TIME_FORMAT}}{number}{tag}.{suffix}")


def data_key_prefix(path: str, name_start: str = "") -> str:
    """The listing prefix of the data files of `path` whose names start with `name_start`."""
    return _join(path, name_start)


def manifests_prefix(path: str) -> str:
    """The folder of the manifests (and error files) of the exports written to `path`."""
    return _join(path, f"{MANIFEST_FOLDER}/")


def manifest_key(path: str, start: datetime, end: datetime) -> str:
    return _join(
        path,
        f"{MANIFEST_FOLDER}/{start.astimezone(UTC):{TIME_FORMAT}}_"
        f"{end.astimezone(UTC):{TIME_FORMAT}}.json",
    )


def manifest_window(path: str, key: str) -> tuple[datetime, datetime] | None:
    """The window a manifest key of `path` names, or None for anything else (error files)."""
    prefix = manifests_prefix(path)
    name = key[len(prefix) :] if key.startswith(prefix) else ""
    found = _MANIFEST_NAME.fullmatch(name)
    if found is None:
        return None
    try:
        start, end = (datetime.strptime(t, TIME_FORMAT).replace(tzinfo=UTC) for t in found.groups())
    except ValueError:  # digits in the right places, but no such date or time
        return None
    return start, end


def error_key(path: str, start: datetime, end: datetime) -> str:
    """The error file of a failed execution (seed 004), beside where its manifest would be."""
    return manifest_key(path, start, end).removesuffix(".json") + ERROR_SUFFIX


def data_key_time(path: str, key: str) -> datetime | None:
    """The time a data file of `path` is named by, or None for anything else."""
    prefix = _join(path, "")
    if not key.startswith(prefix) or "/" in key[len(prefix) :]:
        return None
    match = _DATA_NAME.match(key[len(prefix) :])
    if not match:
        return None
    name = match.group(1)  # yyyy-MM-dd-HH-mm, read by position (strptime is slow)
    try:
        return datetime(
            int(name[0:4]),
            int(name[5:7]),
            int(name[8:10]),
            int(name[11:13]),
            int(name[14:16]),
            tzinfo=UTC,
        )
    except ValueError:  # digits in the right places, but no such date or time
        return None
