"""Helpers for the serving tests: a small fake ``marts`` schema in a real DuckLake lake.

The marts are tiny stand-ins with the real marts' partition columns (country, chart_date, device, chart),
so publishing, quarantine and carry-over run against DuckLake time travel exactly as in production.
"""

from __future__ import annotations

import datetime as dt

from orchestration.config import Home
from orchestration.lib import lake
from orchestration.lib.serving import MartSpec

D13, D14, D15 = dt.date(2025, 1, 13), dt.date(2025, 1, 14), dt.date(2025, 1, 15)

# Apple ids of apps from the January 2025 US/FR charts (RedNote = Xiaohongshu).
APPS = {
    "741292507": "小红书 – 你的生活指南",
    "835599320": "TikTok",
    "6446901002": "Threads",
    "6448311069": "ChatGPT",
    "1641486558": "Temu: Shop Like a Billionaire",
    "1498607143": "Lemon8 - Lifestyle Community",
}

MARTS = {
    "fct_chart_entries": MartSpec("marts.fct_chart_entries", ("country", "chart_date", "device", "chart")),
    "mart_daily_country_summary": MartSpec("marts.mart_daily_country_summary", ("country", "chart_date")),
    "dim_countries": MartSpec("marts.dim_countries"),
}

DESCRIPTIONS = {
    "fct_chart_entries": {
        "description": "One chart position. Grain: date x country x device x chart x rank.",
        "columns": {
            "rank": {"description": "Position in the chart, 1 = top."},
            "app_id": "Apple app id.",
            "no_longer_there": "A column dbt still documents but the mart dropped.",
        },
    },
    "dim_countries": "One row per country.",
}


def chart(country, day, device, apps, chart="top-free"):
    """Rows of one chart: ``apps`` in rank order."""
    return [(country, day, device, chart, r, a, APPS[a]) for r, a in enumerate(apps, start=1)]


def base_rows():
    return (
        chart("us", D13, "iphone", ["835599320", "6448311069", "1641486558"])
        + chart("us", D14, "iphone", ["741292507", "835599320", "1498607143"])
        + chart("fr", D13, "iphone", ["6448311069", "835599320", "1641486558"])
        + chart("fr", D14, "iphone", ["6448311069", "835599320", "741292507"])
        + chart("fr", D14, "ipad", ["835599320", "6448311069"])
    )


def load_lake(home: Home, fct_rows: list[tuple], message: str) -> int:
    """Replace the fake marts in one DuckLake commit; returns the new snapshot id."""
    with lake.session(home) as con:
        con.execute("BEGIN")
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        con.execute(
            "CREATE OR REPLACE TABLE marts.fct_chart_entries (country VARCHAR, chart_date DATE, device VARCHAR, "
            "chart VARCHAR, rank INTEGER, app_id VARCHAR, app_name VARCHAR)"
        )
        if fct_rows:
            con.executemany("INSERT INTO marts.fct_chart_entries VALUES (?, ?, ?, ?, ?, ?, ?)", fct_rows)
        con.execute(
            "CREATE OR REPLACE TABLE marts.mart_daily_country_summary AS "
            "SELECT country, chart_date, device, chart, arg_min(app_id, rank) AS top_app_id, "
            "count(*)::INTEGER AS entries FROM marts.fct_chart_entries GROUP BY ALL"
        )
        con.execute(
            "CREATE OR REPLACE TABLE marts.dim_countries AS SELECT * FROM (VALUES "
            "('us', 'United States', 'Americas'), ('fr', 'France', 'Europe'), ('de', 'Germany', 'Europe')) "
            "t(country, country_name, region)"
        )
        lake.set_commit_message(con, message)
        con.execute("COMMIT")
        return lake.current_snapshot(con)
