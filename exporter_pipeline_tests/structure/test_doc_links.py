"""The repository's Markdown links: every relative link (and every `../` path named in
code) names a file inside the repository that exists (the README once named
`../shared/DESIGN.md`, outside a clone)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ["README.md", "CONTRIBUTING.md", "deploy/README.md", "docs/design.md"]
# A Markdown link or image: `[text](target)`; only relative targets are checked.
LINK = re.compile(r"\]\(([^)\s]+)\)")
# A path named in code that climbs out of the document's folder: `../shared/DESIGN.md`.
CLIMBING = re.compile(r"`(\.\./[^`\s]+)`")


# The design's own copy keeps its words on the seeds, which live beside the repository.
VERBATIM = {"docs/design.md"}


def relative_links(document: Path) -> list[str]:
    text = document.read_text(encoding="utf-8")
    targets = [t.split("#")[0] for t in LINK.findall(text)]
    if document.relative_to(ROOT).as_posix() not in VERBATIM:
        targets += CLIMBING.findall(text)
    return [t for t in targets if t and "://" not in t and not t.startswith("mailto:")]


@pytest.mark.parametrize("name", DOCUMENTS)
def test_relative_links_stay_in_the_repository_and_exist(name: str) -> None:
    document = ROOT / name
    wrong = []
    for target in relative_links(document):
        path = (document.parent / target).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            wrong.append(target)
    assert wrong == []


def test_the_readme_links_the_design() -> None:
    assert "docs/design.md" in relative_links(ROOT / "README.md")
