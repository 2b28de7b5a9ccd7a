"""Where outputs write, as the store's lookup keys (`store/places.py`, pure): a key is the
output's root as `exports.ownership` places it, the same in every process; a relative
folder is keyed relative to the reader's working directory; what depends on more
(`~`, `..`) has no key and is judged by every lookup."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from exporter_pipeline.destinations.outputs import Output
from exporter_pipeline.exports.ownership import output_root
from exporter_pipeline.store.places import PathLookup, lookup, output_place, paths_around

OUTPUT: TypeAdapter[Output] = TypeAdapter(Output)


@pytest.mark.parametrize(
    ("body", "place"),
    [
        ({"type": "local", "path": "/srv/exports/"}, "local/srv/exports"),
        ({"type": "local", "path": "/srv/a/../exports"}, "local/srv/exports"),
        ({"type": "local", "path": "/"}, "local"),
        ({"type": "s3", "bucket": "b", "prefix": "p/q/"}, "s3/b/p/q"),
        ({"type": "gcs", "bucket": "b"}, "gcs/b"),
        (
            {"type": "azure", "container": "c", "prefix": "p", "account_url": "https://a"},
            "azure/c/p",
        ),
    ],
)
def test_a_place_is_the_outputs_root(body: dict[str, Any], place: str) -> None:
    assert output_place(body["type"], body) == place
    assert place == "/".join(output_root(OUTPUT.validate_python(body)))


@pytest.mark.parametrize(
    ("path", "place"),
    [("data/exports", "local./data/exports"), ("./data/../x", "local./x"), (".", "local."),
     ("~/exports", None), ("../exports", None), ("a/../../x", None)],
)  # fmt: skip
def test_a_relative_folder_is_keyed_relative(path: str, place: str | None) -> None:
    assert output_place("local", {"path": path}) == place


def test_lookup_finds_places_above_at_and_below_a_location() -> None:
    found = lookup(("local", "repo", "data", "x"), "/repo")
    assert found.keys == (
        "local", "local/repo", "local/repo/data", "local/repo/data/x",
        "local.", "local./data", "local./data/x",
    )  # fmt: skip
    assert found.below == ("local/repo/data/x", "local./data/x")
    # A location above the working directory holds every relative folder.
    assert lookup(("local", "repo"), "/repo/sub").below == ("local/repo", "local.")
    assert lookup(("s3", "b", "p"), "/repo") == type(found)(("s3", "s3/b", "s3/b/p"), ("s3/b/p",))


def test_paths_of_an_output_that_meet_a_location() -> None:
    assert paths_around(("s3", "b"), ("s3", "b", "p", "q")) == PathLookup(
        every=False, keys=("", "p", "p/q"), below="p/q"
    )
    assert paths_around(("s3", "b", "p"), ("s3", "b")) == PathLookup(every=True)
    assert paths_around(("s3", "b", "p"), ("s3", "b", "p")) == PathLookup(every=True)
    assert paths_around(("s3", "b", "r"), ("s3", "b", "p")) is None
