"""A Play chart with a recorded repeat: its gap in ranks is a warning, not a quarantine; an unrecorded gap fails."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from orchestration.lib.quality.raw import run_raw_day
from orchestration.sources.canonical import RAW_COLUMNS

DAY = dt.date(2025, 1, 14)
SHA = "ab" * 32


def _play_day(ranks) -> pd.DataFrame:
    rows = [{"store": "google_play", "country": "us", "device": "android", "chart": "top-free", "genre_id": None,
             "chart_date": DAY, "rank": r, "app_id": f"com.example.app{r}", "app_name": f"App {r}",
             "payload_sha256": SHA, "source_url": "file:///us-android-top-free.json", "source_format": "google-play-list",
             "fetched_at": dt.datetime(2025, 1, 14, 6), "run_id": "t", "ingested_at": dt.datetime(2025, 1, 14, 6)}
            for r in ranks]
    df = pd.DataFrame(rows, columns=[c for c, _ in RAW_COLUMNS])
    df["genre_id"] = df["genre_id"].astype("Int64")
    df["rank"] = df["rank"].astype("int32")
    for c in ("release_date",):
        df[c] = pd.Series([None] * len(df), dtype="datetime64[s]")
    df["chart_date"] = pd.to_datetime(df["chart_date"])
    return df


def _repeats(*positions) -> pd.DataFrame:
    return pd.DataFrame([{"payload_sha256": SHA, "store": "google_play", "country": "us", "device": "android",
                          "chart": "top-free", "genre_id": None, "chart_date": pd.Timestamp(DAY), "position": p,
                          "app_id": "com.example.app1", "first_rank": 1} for p in positions])


def test_recorded_repeat_warns_and_passes():
    ranks = [r for r in range(1, 61) if r != 7]  # position 7 was a repeat of #1
    result = run_raw_day(_play_day(ranks), chart_date=DAY, repeats=_repeats(7)).results["us"]
    assert result.passed, result.describe()
    assert [o.name for o in result.warnings] == ["no_recorded_repeats"]


def test_an_unrecorded_gap_is_blocking():
    ranks = [r for r in range(1, 61) if r != 7]
    result = run_raw_day(_play_day(ranks), chart_date=DAY, repeats=_repeats()).results["us"]
    assert "rank_within_chart_size" in {o.name for o in result.blocking_failures}


def test_a_clean_play_chart_passes_without_warnings():
    result = run_raw_day(_play_day(range(1, 61)), chart_date=DAY).results["us"]
    assert result.passed and not result.warnings, result.describe()
