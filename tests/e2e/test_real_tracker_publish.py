"""Issue 14's "Done when" for the whole app-tracker archive: its 184 day files (2026-02-20..2026-08-22, ten
storefronts a file) import and publish through the CLI as a user runs it (`chartlake import`, then `chartlake run`
over the window), on a temporary home. Published rows per chart equal the items of that storefront in that day's
file (the archive has no repeats: PROVENANCE.md, quirk 4); gb on 2026-07-17, absent from its file, is a missing
chart, not an empty one; nothing is quarantined and every check is green. The home is marked a replay of the
archive's window (config.Replay, as `chartlake demo` marks its own), so serving freshness is judged at the window's
end and for the archive's ten storefronts, not against today's clock and the configured feeds.

Expected counts are read from the files here, independently of the parser. tests/e2e/test_real_archives_publish.py
publishes three of these days beside the Play files; this is the full window.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from orchestration.config import Home, Replay
from tests.conftest import REAL_CHARTS, latest_check_evaluations, published_counts, run_chartlake

pytestmark = pytest.mark.slow

TRACKER = REAL_CHARTS / "lyubimovats-app-tracker" / "snapshots"
FIRST, LAST = dt.date(2026, 2, 20), dt.date(2026, 8, 22)
MISSING = ("gb", dt.date(2026, 7, 17))  # PROVENANCE.md, quirk 1


def _expected() -> dict[tuple[str, str, dt.date], int]:
    out = {}
    for path in sorted(TRACKER.glob("*.json")):
        doc = json.loads(path.read_bytes())
        day = dt.date.fromisoformat(doc["date"])
        assert path.stem == doc["date"], path  # one file per day, named by its date
        out.update({("apple", cc, day): len(items) for cc, items in doc["countries"].items()})
    return out


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    if not TRACKER.is_dir():
        pytest.skip(f"real chart archives not present at {REAL_CHARTS} (see ../shared/real_charts/README.md)")
    days = sorted(TRACKER.glob("*.json"))
    assert len(days) == 184 and (days[0].stem, days[-1].stem) == (FIRST.isoformat(), LAST.isoformat())
    home = Home(tmp_path_factory.mktemp("tracker_publish") / "home").ensure()
    countries = sorted({cc for _, cc, _ in _expected()})
    Replay.for_window(home, FIRST, LAST, countries).write()
    assert run_chartlake(home, "import", *(str(p) for p in days)) == 0
    assert run_chartlake(home, "run", "--from", FIRST.isoformat(), "--to", LAST.isoformat()) == 0
    counts, quarantined = published_counts(home)
    return home, counts, quarantined


def test_every_day_and_storefront_is_published_with_its_item_count(published):
    _, counts, _ = published
    expected = _expected()
    assert len(expected) == 184 * 10 - 1  # every storefront every day but one
    assert counts == expected
    assert ("apple",) + MISSING not in counts
    assert ("apple", MISSING[0], MISSING[1] - dt.timedelta(days=1)) in counts
    assert ("apple", MISSING[0], MISSING[1] + dt.timedelta(days=1)) in counts


def test_nothing_is_quarantined(published):
    _, _, quarantined = published
    assert quarantined == 0


def test_every_check_is_green(published):
    home, _, _ = published
    latest = latest_check_evaluations(home)
    days = {(FIRST + dt.timedelta(days=n)).isoformat() for n in range(184)}
    assert {partition for (_, check, partition) in latest if check == "raw_chart_quality"} == days
    names = {check for _, check, _ in latest}
    assert {"raw_chart_quality", "marts_quality", "serving_freshness"} <= names, names
    failed = sorted(k for k, passed in latest.items() if not passed)
    assert failed == [], failed
