"""The committed snapshot of the whole Definitions matches the code (see definitions_snapshot.py to update it)."""

from __future__ import annotations

import difflib
import os

from orchestration.definitions import defs
from tests.defs.definitions_snapshot import SNAPSHOT, UPDATE_ENV, render


def test_definitions_match_the_committed_snapshot(monkeypatch):
    current = render(defs)
    if os.environ.get(UPDATE_ENV):
        SNAPSHOT.write_text(current)
    committed = SNAPSHOT.read_text() if SNAPSHOT.exists() else ""
    diff = "".join(difflib.unified_diff(committed.splitlines(True), current.splitlines(True),
                                        str(SNAPSHOT.name), "the Definitions now"))
    assert not diff, (
        f"the Definitions differ from {SNAPSHOT} (a wiring change). If it is deliberate, regenerate the snapshot "
        f"with `{UPDATE_ENV}=1 PYTHONPATH=$PWD .venv/bin/python -m pytest {__file__}` and commit it "
        f"(CHARTLAKE_FETCH_CRON, if set, changes daily_schedule's line):\n{diff}")
