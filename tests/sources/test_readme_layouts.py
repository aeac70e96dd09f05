"""The README's table of layouts `chartlake import` knows: every format has a row, and every example that names a
file of the real archives (../shared/real_charts) is that format and parses, as the row says."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from orchestration.config import PROJECT_ROOT
from orchestration.sources import parsers
from orchestration.sources.play import PlayRequest
from orchestration.sources.play_feed import PlayFeedClient
from tests.conftest import REAL_CHARTS

# The archive layouts: each row's example must be a real file (when the archives are present).
ARCHIVE_EXAMPLES = {
    "per_chart/games-2026-03-08-us-top-paid.json",
    "overall_v2_2026-02-17/2026-02-17__committed-2026-02-17T0039Z__1ff7842.json",
    "snapshots/jp-finance-top-free-iphone__2024-12-28T120432Z__c6225a4.json",
    "snapshots/2026-07-17.json",
    "play_store/fr/TOP_FREE_20201010_134126.json",
    "play_store/rankings/us_TOP_FREE.json",
}


def _rows() -> list[dict]:
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("### Layouts `chartlake import` knows", 1)[1].split("\n### ", 1)[0]
    rows = []
    body = table.split("|---|", 1)[1].split("\n", 1)[1]  # the rows below the header
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            fmt = cells[0].strip("`")
            example = re.findall(r"`([^`]+)`", cells[3])
            rows.append({"format": fmt, "store": cells[1], "layout": cells[2], "example": example[-1] if example else ""})
    return rows


def test_every_format_has_a_row_with_an_example():
    rows = _rows()
    assert {r["format"] for r in rows} == set(parsers.FORMATS)
    assert all(r["example"] for r in rows), [r for r in rows if not r["example"]]
    assert ARCHIVE_EXAMPLES <= {r["example"] for r in rows}


def test_the_fetch_row_names_what_the_play_fetch_stores():
    (row,) = [r for r in _rows() if r["example"].startswith("google-play-scraper@")]
    assert row["example"] == PlayFeedClient().source_url(PlayRequest("us", "top-free", limit=100))


def test_archive_examples_are_real_files_of_their_format():
    if not REAL_CHARTS.is_dir():
        pytest.skip(f"real chart archives not present at {REAL_CHARTS} (see ../shared/real_charts/README.md)")
    checked = set()
    for row in _rows():
        if row["example"] not in ARCHIVE_EXAMPLES:
            continue
        name = Path(row["example"]).name
        (path,) = [p for p in REAL_CHARTS.rglob(name) if p.as_posix().endswith(row["example"])][:1]
        content = path.read_bytes()
        assert parsers.detect_format(content, str(path)) == row["format"], row
        undated = "--chart-date" in row["layout"]
        charts = parsers.parse_payload(content, source=str(path), chart_date=dt.date(2021, 12, 1) if undated else None)
        assert charts and all(c.entries for c in charts) and {c.key.store for c in charts} == {row["store"]}
        if undated:
            with pytest.raises(parsers.PayloadError, match="--chart-date"):
                parsers.parse_payload(content, source=str(path))
        checked.add(row["example"])
    assert checked == ARCHIVE_EXAMPLES
