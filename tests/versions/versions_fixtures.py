"""Small real lakes for the data-version tests: fake marts with the real marts' names and partition columns,
published through the real ``serving.publish`` (so every publish is recorded in the lake's ``published`` schema)."""

from __future__ import annotations

import datetime as dt

from orchestration.config import Home
from orchestration.lib import lake, serving

D13, D14 = dt.date(2025, 1, 13), dt.date(2025, 1, 14)
MARTS = {
    "mart_daily_rankings": serving.MartSpec("marts.mart_daily_rankings", ("country", "chart_date")),
    "dim_countries": serving.MartSpec("marts.dim_countries"),
}


def rankings(us_top: list[str], fr_top: list[str]) -> list[tuple]:
    rows = []
    for country, apps in (("us", us_top), ("fr", fr_top)):
        for day in (D13, D14):
            for rank, app in enumerate(apps, start=1):
                rows.append((f"apple/{country}/iphone/top-free/all", country, day, rank, app))
    return rows


def load(home: Home, rows: list[tuple], message: str) -> int:
    """Replace the fake marts in one lake commit; the new snapshot id."""
    with lake.session(home) as con:
        con.execute("BEGIN")
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        con.execute("CREATE OR REPLACE TABLE marts.mart_daily_rankings (chart_id VARCHAR, country VARCHAR, "
                    "chart_date DATE, rank INTEGER, app_id VARCHAR)")
        con.executemany("INSERT INTO marts.mart_daily_rankings VALUES (?, ?, ?, ?, ?)", rows)
        con.execute("CREATE OR REPLACE TABLE marts.dim_countries AS SELECT * FROM (VALUES ('us', 'United States'), "
                    "('fr', 'France')) t(code, name)")
        lake.set_commit_message(con, message)
        con.execute("COMMIT")
        return lake.current_snapshot(con)


def publish(home: Home, snapshot: int, quarantined=()) -> serving.PublishResult:
    return serving.publish(home, lake_snapshot_id=snapshot, marts=MARTS, run_id=f"run-{snapshot}",
                           quarantined=list(quarantined), check_summary={"failed": []}, descriptions={})
