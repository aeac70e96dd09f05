"""Staging and marts suites: each violation fails for its own reason; consistent frames pass."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from conftest import DAY, dims_from, raw_day, rankings_from, summary_from
from orchestration.lib.quality import run_marts_suite, run_staging_suite

YESTERDAY = DAY - dt.timedelta(days=1)


def failed(result) -> set[str]:
    return {o.name for o in result.blocking_failures}


@pytest.fixture
def marts():
    raw = raw_day(depth=30)
    prev = raw_day(day=YESTERDAY, depth=30)
    fct = raw[["store", "country", "device", "chart", "genre_id", "chart_date", "rank", "app_id", "app_name"]]
    rankings = rankings_from(raw, prev)
    summary = summary_from(rankings)
    apps, countries = dims_from(raw, prev)
    return dict(raw=raw, fct=fct, rankings=rankings, summary=summary, dim_apps=apps, dim_countries=countries)


def run(m, **override):
    frames = {**m, **override}
    return run_marts_suite(window=DAY, **frames)


def test_consistent_marts_pass(marts):
    result = run(marts)
    assert result.passed, result.describe()
    names = {o.name for o in result.outcomes}
    assert {"mart_daily_rankings.rank_delta_consistent", "mart_daily_country_summary.top_app_matches_rankings",
            "fct_chart_entries.row_count_reconciled", "mart_daily_rankings.app_in_dim_apps"} <= names
    assert len(result.charts) == 2


def test_grain_duplicate_in_mart_fails(marts):
    dup = pd.concat([marts["rankings"], marts["rankings"].iloc[[3]]], ignore_index=True)
    result = run(marts, rankings=dup)
    assert "mart_daily_rankings.grain_unique" in failed(result)
    assert "mart_daily_rankings.row_count_reconciled" in failed(result)  # the fan-out shows in the counts too
    assert result.failed_charts == ["apple/us/iphone/top-free/2025-01-14"]


def test_null_key_fails(marts):
    fct = marts["fct"].copy()
    fct.loc[4, "device"] = None
    result = run(marts, fct=fct)
    assert "fct_chart_entries.device_not_null" in failed(result)


def test_orphan_app_fails(marts):
    apps = marts["dim_apps"][marts["dim_apps"]["app_id"] != marts["rankings"].loc[7, "app_id"]]
    result = run(marts, dim_apps=apps)
    assert failed(result) == {"fct_chart_entries.app_in_dim_apps", "mart_daily_rankings.app_in_dim_apps"}
    assert result.outcome("mart_daily_rankings.app_in_dim_apps").unexpected_values == [marts["rankings"].loc[7, "app_id"]]


def test_orphan_country_fails(marts):
    result = run(marts, dim_countries=pd.DataFrame({"country": ["fr"]}))
    assert "mart_daily_rankings.country_in_dim_countries" in failed(result)


def test_summary_inconsistent_with_rankings_fails(marts):
    summary = marts["summary"].copy()
    summary.loc[0, "top_app_id"] = marts["rankings"].loc[1, "app_id"]  # the #2 app shown as #1
    result = run(marts, summary=summary)
    assert failed(result) == {"mart_daily_country_summary.top_app_matches_rankings"}

    summary = marts["summary"].copy()
    summary.loc[1, "entries_top10"] += 3
    assert failed(run(marts, summary=summary)) == {"mart_daily_country_summary.entries_top10_matches_rankings"}

    result = run(marts, summary=marts["summary"].iloc[:1])
    assert failed(result) == {"mart_daily_country_summary.ranking_has_summary"}


def test_rank_delta_wrong_or_out_of_bounds_fails(marts):
    r = marts["rankings"].copy()
    r.loc[2, "rank_delta"] = -r.loc[2, "rank_delta"] if r.loc[2, "rank_delta"] else 5  # sign flipped
    assert "mart_daily_rankings.rank_delta_consistent" in failed(run(marts, rankings=r))

    r = marts["rankings"].copy()
    r.loc[2, "previous_rank"] = 250
    r.loc[2, "rank_delta"] = 250 - r.loc[2, "rank"]
    result = run(marts, rankings=r)
    assert {"mart_daily_rankings.previous_rank_in_range", "mart_daily_rankings.rank_delta_within_bounds"} <= failed(result)
    # A tighter bound, as for 30-deep charts: the app that fell from #1 to #30 moved 29 places.
    assert "mart_daily_rankings.rank_delta_within_bounds" in failed(run_marts_suite(rankings=marts["rankings"], max_rank_delta=20))


def test_rows_outside_window_and_new_entry_flag(marts):
    r = marts["rankings"].copy()
    r.loc[0, "is_new_entry"] = not r.loc[0, "is_new_entry"]
    assert "mart_daily_rankings.new_entry_consistent" in failed(run(marts, rankings=r))
    assert "fct_chart_entries.in_window" in failed(run_marts_suite(fct=marts["fct"], window=YESTERDAY))


def test_staging_suite(marts):
    stg = marts["fct"]
    assert run_staging_suite(stg, window=(DAY, DAY + dt.timedelta(days=1)), raw=marts["raw"]).passed
    # A chart fetched twice: staging keeps the latest payload, so its count still reconciles.
    again = marts["raw"][marts["raw"]["chart"] == "top-paid"].assign(
        payload_sha256="b" * 64, fetched_at=pd.Timestamp(DAY) + pd.Timedelta(hours=9))
    assert run_staging_suite(stg, window=DAY, raw=pd.concat([marts["raw"], again])).passed
    dropped = stg[stg["rank"] != 12]
    result = run_staging_suite(dropped, window=DAY, raw=marts["raw"])
    assert failed(result) == {"stg_apple__chart_entries.row_count_reconciled"}
    assert run_staging_suite(stg.iloc[0:0], window=DAY).passed is False


def test_suite_errors_are_failures(marts):
    with pytest.raises(ValueError):
        run_marts_suite()
    result = run_marts_suite(fct=marts["fct"], dim_apps=pd.DataFrame({"id": ["1"]}))
    assert not result.passed and "app_id" in result.error
    assert result.failed_charts == []  # nothing was validated, so no chart is known
    renamed = marts["summary"].rename(columns={"top_app_id": "number_one"})
    result = run(marts, summary=renamed)
    outcome = result.outcome("mart_daily_country_summary.top_app_matches_rankings")
    assert not outcome.success and "top_app_id" in outcome.error
