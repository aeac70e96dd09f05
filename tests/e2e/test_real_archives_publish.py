"""Issue 14's "Done when": the real Google Play files and app-tracker days import, land, pass their checks and are
PUBLISHED, with published rows = items in the file - recorded repeats, per chart. Through the CLI, as a user runs
it (`chartlake import`, `chartlake run`), on a temporary home.

Play: the five Price-of-Privacy files (two dated 2020-10-10, three undated given their own --chart-date, so that
each is its own chart version: the dates are this test's choice, the archive has none). app-tracker: three
consecutive days, 2026-07-16..18, the middle one without gb (a missing chart, not an empty one). All 184 app-tracker
days landing is tests/lib/test_real_play_import.py's; publishing all 184 is tests/e2e/test_real_tracker_publish.py's
(20 minutes: not in CI's slow set).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from orchestration.config import Home
from tests.conftest import REAL_CHARTS, published_counts, run_chartlake

pytestmark = pytest.mark.slow

PLAY = REAL_CHARTS / "price-of-privacy-play"
TRACKER = REAL_CHARTS / "lyubimovats-app-tracker" / "snapshots"
UNDATED = {  # file -> the chart date this test gives it
    "undated/0005577/play_store/rankings/fr_TOP_FREE.json": dt.date(2020, 10, 11),
    "undated/654229a/play_store/rankings/fr_TOP_FREE.json": dt.date(2020, 10, 12),
    "undated/a2b867d/play_store/rankings/us_TOP_FREE.json": dt.date(2020, 10, 11),
}
DATED = {"play_store/fr/TOP_FREE_20201010_134126.json": ("fr", dt.date(2020, 10, 10)),
         "play_store/us/TOP_FREE_20201010_134023.json": ("us", dt.date(2020, 10, 10))}
TRACKER_DAYS = [dt.date(2026, 7, 16), dt.date(2026, 7, 17), dt.date(2026, 7, 18)]


def _distinct_apps(path) -> int:
    """Items minus repeats, read from the file itself: an app listed again is a repeat."""
    return len({a["appId"] for a in json.loads(path.read_bytes())})


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    if not REAL_CHARTS.is_dir():
        pytest.skip(f"real chart archives not present at {REAL_CHARTS} (see ../shared/real_charts/README.md)")
    home = Home(tmp_path_factory.mktemp("real_publish") / "home").ensure()
    assert run_chartlake(home, "import", *(str(PLAY / f) for f in DATED)) == 0
    for rel, day in UNDATED.items():
        assert run_chartlake(home, "import", "--chart-date", day.isoformat(), str(PLAY / rel)) == 0
    assert run_chartlake(home, "import", *(str(TRACKER / f"{d}.json") for d in TRACKER_DAYS)) == 0
    assert run_chartlake(home, "run", "--from", "2020-10-10", "--to", "2020-10-12") == 0
    assert run_chartlake(home, "run", "--from", TRACKER_DAYS[0].isoformat(), "--to", TRACKER_DAYS[-1].isoformat()) == 0
    counts, quarantined = published_counts(home)
    return counts, quarantined


def test_the_five_real_play_files_are_published_minus_their_repeats(published):
    counts, quarantined = published
    expected = {("google_play", cc, day): _distinct_apps(PLAY / rel) for rel, (cc, day) in DATED.items()}
    for rel, day in UNDATED.items():
        expected[("google_play", rel.split("/")[-1][:2], day)] = _distinct_apps(PLAY / rel)
    assert {k: v for k, v in counts.items() if k[0] == "google_play"} == expected
    # 1,000 items, 8 repeats (fr 4 and us 3 on 2020-10-10, 1 in one undated fr file).
    assert sum(expected.values()) == 992
    assert quarantined == 0


def test_app_tracker_days_are_published_one_chart_per_storefront(published):
    counts, _ = published
    expected = {}
    for day in TRACKER_DAYS:
        doc = json.loads((TRACKER / f"{day}.json").read_bytes())
        expected.update({("apple", cc, day): len(items) for cc, items in doc["countries"].items()})
    assert {k: v for k, v in counts.items() if k[0] == "apple"} == expected
    assert ("apple", "gb", dt.date(2026, 7, 17)) not in counts and ("apple", "gb", dt.date(2026, 7, 18)) in counts
