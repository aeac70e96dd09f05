"""Incremental builds by chart-date window must give exactly the marts of one full build."""

from __future__ import annotations

import datetime as dt

import pytest

from dbt_helpers import DAYS, START, _rows, chart_apps, compare_lakes, load_raw, make_dbt_home, synthetic_rows


def _assert_same(built_home, other_home):
    diff = compare_lakes(built_home, other_home)
    bad = {rel: counts for rel, counts in diff.items() if counts[2] or counts[3] or counts[0] != counts[1]}
    assert not bad, f"relations differ (rows full, rows windowed, only full, only windowed): {bad}"
    assert diff["marts.mart_daily_rankings"][0] > 0


def test_uneven_windows_equal_full_build(built, tmp_path):
    """Windows cut right through the RedNote surge (Jan 12/13/14) and the TikTok gap (Jan 18-20); then
    re-running windows (a partition materialised again) replaces their rows instead of adding to them."""
    h = make_dbt_home(tmp_path)
    load_raw(h.home, synthetic_rows())
    h.dbt("seed")
    cuts = [START, dt.date(2025, 1, 13), dt.date(2025, 1, 14), dt.date(2025, 1, 19), dt.date(2025, 1, 20),
            START + dt.timedelta(days=DAYS)]
    for start, end in zip(cuts, cuts[1:]):
        h.dbt("run", window=(start, end))
    h.dbt("run", window=(dt.date(2025, 1, 13), dt.date(2025, 1, 14)))
    h.dbt("run", window=(cuts[-2], cuts[-1]))
    _assert_same(built.home, h.home)


def test_comparison_sees_a_difference(built, tmp_path):
    """The equality check itself can fail: a build without the last week differs from the full one."""
    h = make_dbt_home(tmp_path)
    load_raw(h.home, synthetic_rows())
    h.dbt("run", "--select", "+mart_daily_rankings", window=(START, dt.date(2025, 1, 25)))
    diff = compare_lakes(built.home, h.home, ["marts.fct_chart_entries", "marts.mart_daily_rankings"])
    for rel, (n_full, n_part, only_full, only_part) in diff.items():
        assert n_full > n_part and only_full == n_full - n_part and only_part == 0, rel


@pytest.mark.slow
def test_day_by_day_equals_full_build(built, tmp_path):
    """Built one daily partition at a time (as Dagster's daily runs do) through the RedNote surge (Jan 12-14) and
    the TikTok gap (Jan 18-20), after one window for the quiet first ten days and before one for the rest: equals
    one full build. Every day of the story is its own run; the quiet days would only repeat them (and cost ~15 s
    of CI each)."""
    h = make_dbt_home(tmp_path)
    load_raw(h.home, synthetic_rows())
    h.dbt("seed")
    first_daily, after_daily = dt.date(2025, 1, 11), dt.date(2025, 1, 23)
    h.dbt("run", "--quiet", window=(START, first_daily))
    d = first_daily
    while d < after_daily:
        h.dbt("run", "--quiet", window=(d, d + dt.timedelta(days=1)))
        d += dt.timedelta(days=1)
    h.dbt("run", "--quiet", window=(after_daily, START + dt.timedelta(days=DAYS)))
    _assert_same(built.home, h.home)


def _long_run_rows() -> list[tuple]:
    """A German chart in which a new app enters at #1 on Jan 4 and stays there to the end of the month."""
    rows = []
    for i in range(DAYS):
        d = START + dt.timedelta(days=i)
        noon = dt.datetime.combine(d, dt.time(12))
        apps = chart_apps("de", "iphone", d)
        if d >= dt.date(2025, 1, 4):
            apps = [("777000", "Long Stayer")] + apps[:-1]
        rows += _rows("de", "iphone", d, apps, fetched_at=noon, ingested_at=noon)
    return rows


def test_breakout_run_continues_across_windows(tmp_path):
    """A breakout older than the spread window whose run in the top N goes on is continued by each later window
    (days in top N, last day, still in top N), as a full build computes it."""
    rows = synthetic_rows() + _long_run_rows()
    full = make_dbt_home(tmp_path / "full")
    load_raw(full.home, rows)
    full.dbt("build", "--exclude", "resource_type:unit_test")
    h = make_dbt_home(tmp_path / "windows")
    load_raw(h.home, rows)
    h.dbt("seed")
    cuts = [START, dt.date(2025, 1, 15), dt.date(2025, 1, 16), START + dt.timedelta(days=DAYS)]
    for start, end in zip(cuts, cuts[1:]):
        h.dbt("run", window=(start, end))
    _assert_same(full.home, h.home)
    (run,) = h.query("select days_in_top_n, last_top_n_date, still_in_top_n from marts.mart_breakouts "
                     "where app_id = '777000'")
    assert run == (28, dt.date(2025, 1, 31), True)
