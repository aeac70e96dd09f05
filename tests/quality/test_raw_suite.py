"""The raw suite fails (or warns) for each kind of bad feed, for that reason, and passes on clean frames."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import DAY, raw_day
from orchestration.lib.quality import run_raw_suite
from orchestration.lib.quality.raw import APP_ID_REGEX

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "real_charts"


def failed(result) -> set[str]:
    return {o.name for o in result.blocking_failures}


def test_clean_frame_passes(raw):
    result = run_raw_suite(raw, country="us", chart_date=DAY)
    assert result.error is None
    assert result.passed, result.describe()
    assert not result.warnings and not result.failed_charts
    assert len(result.charts) == 2
    assert {o.name for o in result.outcomes} >= {"rank_unique_in_chart", "chart_depth_at_least_expected"}


def test_duplicate_rank_fails_that_chart_only(raw):
    bad = raw.copy()
    paid = bad.index[(bad["chart"] == "top-paid") & (bad["rank"] == 6)]
    bad.loc[paid, "rank"] = 5  # two apps at #5 and none at #6
    result = run_raw_suite(bad, country="us", chart_date=DAY)
    assert not result.passed
    assert "rank_unique_in_chart" in failed(result)
    assert result.outcome("rank_unique_in_chart").unexpected_count == 2
    assert result.failed_charts == ["apple/us/iphone/top-paid/2025-01-14"]
    assert result.failed_payloads == [bad.loc[paid[0], "payload_sha256"]]


def test_missing_ranks_fail(raw):
    bad = raw[~((raw["chart"] == "top-free") & raw["rank"].isin([40, 41]))]
    result = run_raw_suite(bad, country="us", chart_date=DAY)
    assert not result.passed
    assert failed(result) == {"rank_within_chart_size"}  # 98 of 100 is a legal depth; the gap is not
    assert result.failed_charts == ["apple/us/iphone/top-free/2025-01-14"]


def test_duplicate_app_fails(raw):
    bad = raw.copy()
    bad.loc[(bad["chart"] == "top-free") & (bad["rank"] == 3), "app_id"] = bad.loc[0, "app_id"]
    result = run_raw_suite(bad, country="us", chart_date=DAY)
    assert failed(result) == {"app_unique_in_chart"}


def test_wrong_country_fails(raw):
    result = run_raw_suite(raw, country="fr", chart_date=DAY)
    assert not result.passed
    assert failed(result) == {"country_is_partition"}
    assert result.outcome("country_is_partition").unexpected_values[0] == "us"


def test_chart_date_off_by_two_days_fails_but_one_day_passes(raw):
    bad = raw.copy()
    bad.loc[bad["chart"] == "top-paid", "chart_date"] = pd.Timestamp(DAY - dt.timedelta(days=2))
    result = run_raw_suite(bad, country="us", chart_date=DAY)
    assert failed(result) == {"chart_date_within_a_day"}
    assert result.failed_charts == ["apple/us/iphone/top-paid/2025-01-12"]

    ok = raw.copy()
    ok.loc[ok["chart"] == "top-paid", "chart_date"] = pd.Timestamp(DAY + dt.timedelta(days=1))
    assert run_raw_suite(ok, country="us", chart_date=DAY).passed


def test_chart_cut_to_ten_entries_fails_but_short_paid_chart_passes(raw):
    cut = raw[(raw["chart"] == "top-free") | (raw["rank"] <= 10)]
    result = run_raw_suite(cut, country="us", chart_date=DAY)  # depth read from source_url: 100
    assert failed(result) == {"chart_depth_at_least_expected"}
    assert result.failed_charts == ["apple/us/iphone/top-paid/2025-01-14"]
    # The same with an explicit expectation, and 95 of 100 (a normal short paid chart) passes.
    assert not run_raw_suite(cut, country="us", chart_date=DAY, expected_depth={"top-paid": 100}).passed
    short = raw[(raw["chart"] == "top-free") | (raw["rank"] <= 95)]
    assert run_raw_suite(short, country="us", chart_date=DAY, expected_depth=100).passed


def test_malformed_app_id_fails(raw):
    bad = raw.copy()
    bad.loc[5, "app_id"] = "id1234"
    bad.loc[6, "app_id"] = "0000000001"  # WBGame's made-up fallback id
    result = run_raw_suite(bad, country="us", chart_date=DAY)
    assert failed(result) == {"app_id_well_formed"}
    assert set(result.outcome("app_id_well_formed").unexpected_values) == {"id1234", "0000000001"}


def test_missing_column_and_wrong_type_fail(raw):
    result = run_raw_suite(raw.drop(columns=["payload_sha256"]), country="us", chart_date=DAY)
    assert "columns_present" in failed(result)
    assert result.outcome("columns_present").unexpected_values == ["payload_sha256"]
    result = run_raw_suite(raw.assign(rank=raw["rank"].astype(str)), country="us", chart_date=DAY)
    assert "column_types" in failed(result)
    assert result.outcome("column_types").unexpected_values == ["rank"]


def test_stale_feed_quarantines_a_deep_chart_and_warns_on_a_short_one(raw):
    yesterday = raw_day(day=DAY - dt.timedelta(days=1))
    fresh = run_raw_suite(raw, country="us", chart_date=DAY, previous_day=yesterday,
                          previous_payload_hashes=set(yesterday["payload_sha256"]))
    assert fresh.passed and not fresh.warnings

    stale = raw_day(day=DAY, shift=(DAY - dt.timedelta(days=1)).toordinal())  # yesterday's ranking again
    stale["payload_sha256"] = yesterday["payload_sha256"].to_numpy()
    result = run_raw_suite(stale, country="us", chart_date=DAY, previous_day=yesterday,
                           previous_payload_hashes=set(yesterday["payload_sha256"]))
    assert not result.passed
    assert failed(result) == {"ranking_differs_from_previous_day"}
    assert result.outcome("ranking_differs_from_previous_day").unexpected_count == 2  # both 100-app charts
    assert sorted(result.failed_charts) == ["apple/us/iphone/top-free/2025-01-14", "apple/us/iphone/top-paid/2025-01-14"]
    assert {o.name for o in result.warnings} == {"payload_differs_from_previous_day"}

    # Only top-paid stands still: only that chart is held back.
    half = pd.concat([raw[raw["chart"] == "top-free"], stale[stale["chart"] == "top-paid"]], ignore_index=True)
    result = run_raw_suite(half, country="us", chart_date=DAY, previous_day=yesterday)
    assert failed(result) == {"ranking_differs_from_previous_day"}
    assert result.failed_charts == ["apple/us/iphone/top-paid/2025-01-14"]

    # A 30-app chart can stand still for a day: a warning, never a quarantine.
    short_yesterday = raw_day(day=DAY - dt.timedelta(days=1), depth=30)
    short = raw_day(day=DAY, depth=30, shift=(DAY - dt.timedelta(days=1)).toordinal())
    result = run_raw_suite(short, country="us", chart_date=DAY, previous_day=short_yesterday, expected_depth=30)
    assert result.passed, result.describe()
    assert {o.name for o in result.warnings} == {"short_ranking_differs_from_previous_day"}


def test_new_app_share_warns(raw):
    week = set(raw["app_id"])
    assert not run_raw_suite(raw, country="us", chart_date=DAY, recent_app_ids=week).warnings
    other = raw.copy()
    other.loc[other["chart"] == "top-free", "app_id"] = [str(900_000_000 + i) for i in range(100)]
    result = run_raw_suite(other, country="us", chart_date=DAY, recent_app_ids=week)
    assert result.passed
    assert [o.name for o in result.warnings] == ["new_app_share_usual"]
    assert result.outcome("new_app_share_usual").unexpected_values == [1.0]


def test_empty_frame_and_bad_input_are_failures(raw):
    assert not run_raw_suite(raw.iloc[0:0], country="us", chart_date=DAY).passed
    broken = run_raw_suite(raw, country="us", chart_date="not a date")
    assert not broken.passed and broken.error and "chart_date" in broken.error


def test_save_writes_json_and_html(raw, tmp_path):
    bad = raw.copy()
    bad.loc[0, "app_id"] = "x"
    result = run_raw_suite(bad, country="us", chart_date=DAY)
    paths = result.save(tmp_path, "raw-us-2025-01-14")
    data = json.loads(paths["json"].read_text())
    assert data["passed"] is False and data["blocking_failures"] == ["app_id_well_formed"]
    assert data["failed_charts"] == ["apple/us/iphone/top-free/2025-01-14"]
    page = paths["html"].read_text()
    assert "FAILED" in page and "app_id_well_formed" in page
    gx_pages = sorted(p.name for p in paths["gx_docs"].iterdir())
    assert gx_pages == ["charts.html", "rows.html", "schema.html"]
    gx_rows = (paths["gx_docs"] / "rows.html").read_text()
    assert "Great Expectations" in gx_rows and APP_ID_REGEX in gx_rows


def test_six_charts_of_200_with_history_pass():
    df = raw_day(charts=[(d, c) for d in ("iphone", "ipad") for c in ("top-free", "top-paid", "top-grossing")], depth=200)
    assert len(df) == 1200
    result = run_raw_suite(df, country="us", chart_date=DAY, recent_app_ids=set(df["app_id"]),
                           previous_day=raw_day(day=DAY - dt.timedelta(days=1)))
    assert result.passed, result.describe()
    assert len(result.charts) == 6 and not result.warnings


def _wbgame_day(day: str, country: str) -> pd.DataFrame:
    """Canonical rows for one WBGame country-day (genre charts), converted minimally for this test."""
    rows = []
    for path in sorted((REAL / "wbgame-ios_rank_history" / "per_chart").glob(f"*-{day}-{country}-*.json")):
        payload = json.loads(path.read_text())
        genre = int(payload["genre"])
        chart = payload["feedType"]
        for item in payload["items"]:
            rows.append({
                "store": "apple", "country": payload["country"], "device": "iphone", "chart": chart,
                "genre_id": genre, "chart_date": pd.Timestamp(item["date"]), "rank": item["rank"],
                "app_id": item["id"], "app_name": item["name"], "developer_name": item["artistName"],
                "developer_id": None, "genre_name": item["kind"],
                "release_date": pd.Timestamp(item["releaseDate"][:10]), "price": None, "currency": None,
                "url": item["url"], "payload_sha256": path.name, "source_url": payload["source"],
                "source_format": "wbgame", "fetched_at": pd.Timestamp(day), "run_id": "t",
                "ingested_at": pd.Timestamp(day), "captured_at": pd.Timestamp(day),
            })
    return pd.DataFrame(rows)


def test_real_wbgame_country_day_passes_and_fake_sample_fails():
    if not (REAL / "wbgame-ios_rank_history").is_dir():
        pytest.skip(f"real chart data not found at {REAL} (shared fixtures are not in the repo)")
    df = _wbgame_day("2026-03-13", "jp")
    assert df["chart"].nunique() == 2 and df["genre_id"].nunique() == 2  # four genre charts
    result = run_raw_suite(df, country="jp", chart_date="2026-03-13")
    assert result.passed, result.describe()
    assert len(result.charts) == 4

    fake = json.loads((REAL / "wbgame-ios_rank_history" / "quirks" / "2026-02-15__fallback_sample_NOT_REAL.json").read_text())
    rows = df.iloc[: len(fake["items"])].copy()
    rows["app_id"] = [i["id"] for i in fake["items"]]
    result = run_raw_suite(rows, country="jp", chart_date="2026-03-13")
    assert "app_id_well_formed" in failed(result)
