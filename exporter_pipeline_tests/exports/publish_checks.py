"""What the publish tests assert about a window, on any destination: the manifest at its
key is the one expected, every file it lists is there with its bytes and an sha256
computed here with hashlib, and nothing else is under the export's path."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from exporter_pipeline.destinations import Destination
from exporter_pipeline_tests.exports.conftest import DAY

START, END = DAY, DAY + timedelta(hours=2)
MANIFEST = "exp/_manifests/2026-10-01-00-00_2026-10-01-02-00.json"
ERROR = "exp/_manifests/2026-10-01-00-00_2026-10-01-02-00.error.json"


def listed(manifest: bytes) -> dict[str, dict[str, Any]]:
    """The manifest's files by key."""
    return {f["key"]: f for f in json.loads(manifest)["files"]}


def contents(output: Destination, manifest: bytes) -> dict[str, bytes]:
    """The bytes of every file `manifest` lists, each checked against its entry."""
    found = {}
    for key, entry in listed(manifest).items():
        data = output.get_bytes(key)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], key
        assert len(data) == entry["bytes"], key
        found[key] = data
    return found


def assert_window(
    output: Destination, manifest: bytes, files: dict[str, bytes], also: tuple[str, ...] = ()
) -> None:
    """The window is exactly `manifest` with `files` (and the keys `also`) under `exp/`."""
    assert output.get_bytes(MANIFEST) == manifest
    assert contents(output, manifest) == files
    assert [o.key for o in output.list("exp/")] == sorted([MANIFEST, *files, *also])
