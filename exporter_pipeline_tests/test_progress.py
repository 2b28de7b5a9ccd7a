"""Progress of long commands off a terminal (CI, pipes): one line when a phase starts,
one when it ends with its steps done; on a terminal the bar draws on its own copy of the
descriptor. No server."""

from __future__ import annotations

import io

from exporter_pipeline.progress import Progress


def test_off_a_terminal_a_phase_is_two_plain_lines() -> None:
    out = io.StringIO()
    progress = Progress(out)
    assert not progress.interactive  # a StringIO is no terminal
    with progress.phase("ingest the hours", 3) as advance:
        advance(1)
        advance(2)
    start, end = out.getvalue().splitlines()
    assert start == "ingest the hours …"
    assert end.startswith("ingest the hours: 3/3 in ") and end.endswith(" s")
