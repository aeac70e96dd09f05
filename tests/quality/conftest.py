"""Frame builders for the quality suites: canonical raw rows and the marts derived from them in pandas."""

from __future__ import annotations

import datetime as dt
import hashlib

import pandas as pd
import pytest

from orchestration.sources.canonical import RAW_COLUMNS

DAY = dt.date(2025, 1, 14)
RAW_NAMES = [c for c, _ in RAW_COLUMNS]


def sha(*parts) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def app_ids_for(chart: str, device: str, day: dt.date, depth: int, shift: int = 0) -> list[str]:
    """Distinct, well-formed ids; ``shift`` rotates the ranking so consecutive days differ."""
    base = {"top-free": 300_000_000, "top-paid": 400_000_000, "top-grossing": 500_000_000}[chart]
    base += 10_000_000 if device == "ipad" else 0
    ids = [str(base + i) for i in range(1, depth + 1)]
    k = shift % depth if depth else 0
    return ids[k:] + ids[:k]


def raw_day(
    country: str = "us",
    day: dt.date = DAY,
    *,
    charts=(("iphone", "top-free"), ("iphone", "top-paid")),
    depth: int = 100,
    shift: int | None = None,
) -> pd.DataFrame:
    """One country-day of canonical raw rows, one payload per chart, typed as DuckDB hands them to pandas."""
    shift = day.toordinal() if shift is None else shift
    rows = []
    for device, chart in charts:
        url = f"https://rss.applemarketingtools.com/api/v2/{country}/apps/{chart}/{depth}/apps.json"
        payload = sha(country, device, chart, day, shift)
        for rank, app_id in enumerate(app_ids_for(chart, device, day, depth, shift), start=1):
            rows.append({
                "store": "apple", "country": country, "device": device, "chart": chart, "genre_id": None,
                "chart_date": pd.Timestamp(day), "rank": rank, "app_id": app_id, "app_name": f"App {app_id}",
                "developer_name": "Dev", "developer_id": "1", "genre_name": "Games",
                "release_date": pd.Timestamp("2020-01-01"), "price": 0.0 if chart == "top-free" else 0.99,
                "currency": "USD", "url": f"https://apps.apple.com/app/id{app_id}",
                "payload_sha256": payload, "source_url": url, "source_format": "apple_rss_v2",
                "fetched_at": pd.Timestamp(day) + pd.Timedelta(hours=6), "run_id": "run-1",
                "ingested_at": pd.Timestamp(day) + pd.Timedelta(hours=6, minutes=1),
                # Unknown, as in rows landed before capture times: versions fall back to fetched_at.
                "captured_at": pd.NaT,
            })
    df = pd.DataFrame(rows, columns=RAW_NAMES)
    df["rank"] = df["rank"].astype("int32")
    df["genre_id"] = df["genre_id"].astype("Int32")
    return df


@pytest.fixture
def raw():
    return raw_day()


def rankings_from(today: pd.DataFrame, yesterday: pd.DataFrame | None) -> pd.DataFrame:
    """mart_daily_rankings computed the plain way: previous rank from the previous day's same chart."""
    keys = ["store", "country", "device", "chart"]
    cols = keys + ["chart_date", "genre_id", "rank", "app_id", "app_name"]
    r = today[cols].copy()
    if yesterday is not None:
        prev = yesterday[keys + ["app_id", "rank"]].rename(columns={"rank": "previous_rank"})
        r = r.merge(prev, on=keys + ["app_id"], how="left")
    else:
        r["previous_rank"] = pd.NA
    r["previous_rank"] = r["previous_rank"].astype("Int64")
    r["rank_delta"] = (r["previous_rank"] - r["rank"]).astype("Int64")
    r["is_new_entry"] = r["previous_rank"].isna()
    return r


def summary_from(rankings: pd.DataFrame) -> pd.DataFrame:
    keys = ["chart_date", "store", "country", "device", "chart", "genre_id"]
    rows = []
    for key, chart in rankings.groupby(keys[:-1]):
        prev = chart["previous_rank"]
        rows.append({
            **dict(zip(keys[:-1], key)), "genre_id": None,
            "top_app_id": chart.loc[chart["rank"] == 1, "app_id"].iloc[0],
            "entries_top10": int(((chart["rank"] <= 10) & (prev.isna() | (prev > 10))).sum()),
            "entries_top100": int(((chart["rank"] <= 100) & (prev.isna() | (prev > 100))).sum()),
        })
    return pd.DataFrame(rows)


def dims_from(*frames: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    apps = pd.concat([f[["app_id", "app_name"]] for f in frames]).drop_duplicates("app_id")
    countries = pd.DataFrame({"country": sorted(set().union(*[set(f["country"]) for f in frames])), "name": "x"})
    return apps.reset_index(drop=True), countries
