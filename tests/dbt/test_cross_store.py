"""Both stores through the dbt project: the synthetic App Store month plus a Google Play US chart in which RedNote
(com.xingin.xhs) climbs two days after the App Store. Every data and unit test of the project must pass; marts stay
per store, and the cross-store marts answer "where did it rank on each store" and "did it break out on both".
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from dbt_helpers import DAYS, START, day, load_raw, make_dbt_home, synthetic_rows

pytestmark = pytest.mark.slow  # a dbt build of its own

RED_PLAY = "com.xingin.xhs"
TIKTOK_PLAY = "com.zhiliaoapp.musically"


def _play_chart(d: dt.date) -> list[str]:
    """50 package names: TikTok #1 (until it leaves on Jan 18-19), RedNote absent, then #30 on Jan 14, #5 from
    Jan 15 (a breakout two days after the App Store's Jan 13), #2 from Jan 17."""
    apps = [f"com.filler.app{i:02d}" for i in range(60)]
    if not day(18) <= d <= day(19):
        apps.insert(0, TIKTOK_PLAY)
    place = {day(14): 30, day(15): 5, day(16): 5}.get(d, 2 if d >= day(17) else None)
    if place is not None:
        apps.insert(place - 1, RED_PLAY)
    return apps[:50]


def _play_rows() -> list[tuple]:
    rows = []
    for i in range(DAYS):
        d = START + dt.timedelta(days=i)
        apps = _play_chart(d)
        sha = hashlib.sha256(f"play/us/{d}/{apps}".encode()).hexdigest()
        noon = dt.datetime.combine(d, dt.time(12))
        for rank, app_id in enumerate(apps, start=1):
            rows.append(("google_play", "us", "android", "top-free", None, d, rank, app_id,
                         "RedNote" if app_id == RED_PLAY else app_id.rsplit(".", 1)[-1], "Dev", "Dev", None, None,
                         0, None, f"https://play.google.com/store/apps/details?id={app_id}",
                         sha, f"file:///play/us-android-top-free-{d}.json", "google-play-list", noon, "test-run", noon))
    return rows


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    h = make_dbt_home(tmp_path_factory.mktemp("dbt_cross_store"))
    load_raw(h.home, synthetic_rows() + _play_rows())
    h.dbt("build")  # every data test (accepted store/device values, grains) and unit test must pass
    return h


def test_play_charts_are_their_own_series(both):
    rows = both.query("select store, device, count(distinct chart_date), count(*) from marts.mart_daily_rankings "
                      "where store = 'google_play' group by all")
    assert rows == [("google_play", "android", 31, 31 * 50)]
    # Ranks never mix: on Jan 14 the US has a #1 on each of its three charts (iphone, ipad, android).
    firsts = both.query("select chart_id, app_id from marts.mart_daily_rankings where country = 'us' "
                        "and chart_date = '2025-01-14' and rank = 1 order by chart_id")
    assert [c for c, _ in firsts] == ["apple/us/ipad/top-free/all", "apple/us/iphone/top-free/all",
                                      "google_play/us/android/top-free/all"]
    assert firsts[2][1] == TIKTOK_PLAY


def test_rednote_product_row_shows_both_stores(both):
    [red] = both.query_dicts("select * from marts.dim_products where product_id = 'rednote'")
    assert (red["apple_app_id"], red["google_play_app_id"]) == ("741292507", RED_PLAY)
    assert red["stores_mapped"] == 2 and red["stores_charted"] == 2 and red["google_play_app_name"] == "RedNote"


def test_where_did_rednote_rank_on_each_store_each_day(both):
    rows = both.query("select chart_date, apple_rank, google_play_rank, ranked_on_both_stores "
                      "from marts.mart_product_daily_ranks where product_id = 'rednote' and country = 'us' "
                      "and chart_date between '2025-01-12' and '2025-01-17' order by chart_date")
    apple = dict(both.query("select chart_date, rank from marts.mart_daily_rankings where app_id = '741292507' "
                            "and chart_id = 'apple/us/iphone/top-free/all'"))
    expected_play = {day(14): 30, day(15): 5, day(16): 5, day(17): 2}
    assert [r[0] for r in rows] == [day(n) for n in range(12, 18)]
    for d, apple_rank, play_rank, both_ in rows:
        assert apple_rank == apple.get(d) and play_rank == expected_play.get(d)
        assert both_ == (apple_rank is not None and play_rank is not None)
    # France has no Play chart: never captured, so its null Play rank is not "out of the chart".
    fr = both.query("select distinct google_play_chart_captured from marts.mart_product_daily_ranks "
                    "where country = 'fr'")
    assert fr == [(False,)]


def test_did_rednote_break_out_on_both_stores(both):
    rows = both.query_dicts("select * from marts.mart_product_breakouts where product_id = 'rednote' "
                            "order by country")
    us = next(r for r in rows if r["country"] == "us")
    assert us["apple_breakout_date"] == day(13) and us["google_play_breakout_date"] == day(15)
    assert us["broke_out_on_both_stores"] and us["google_play_days_after_apple"] == 2
    fr = next(r for r in rows if r["country"] == "fr")
    assert not fr["broke_out_on_both_stores"] and fr["google_play_breakout_date"] is None
