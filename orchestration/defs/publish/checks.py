"""Is what BI tools read recent? A check on the serving file's data, not on when it was last written.

A publish can succeed and still show old charts (a country's feed failed for days and its rows were carried over
from quarantine, or the daily fetch was off), so the check reads the newest ``chart_date`` per store and storefront
from the serving file itself: Apple's charts being fresh says nothing about Play's. Which stores are judged is
``ServingFreshness.stores`` (default Apple alone); each store's storefronts are its feed resource's countries.
Apple's storefronts are named by their country code (``us``), another store's as ``google_play/us``.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb

from orchestration.config import read_replay
from orchestration.defs.resources import AppleFeeds, ChartlakeHome, PlayFeeds, ServingFreshness
from orchestration.lib import serving_file

# The key of orchestration.defs.publish.assets.serving_chartlake, spelled out so that importing the check does not
# load the dbt project.
SERVING_KEY = dg.AssetKey(["serving", "chartlake"])
RANKINGS = "analytics.mart_daily_rankings"


def storefront(store: str, country: str) -> str:
    return country if store == "apple" else f"{store}/{country}"


def newest_chart_dates(serving_db) -> dict[str, dt.date]:
    """Newest ``chart_date`` per storefront (``storefront()``) in the serving file's ``mart_daily_rankings``; a
    file from before Play (no ``store`` column) holds Apple's.

    Opened through ``ATTACH ... (READ_ONLY)`` from an in-memory database: never a write lock on the file BI tools
    read, and never a stale database instance of this process after a publish swapped the file.
    """
    con = duckdb.connect(":memory:")
    try:
        serving_file.attach_read_only(con, serving_db, "s")  # escaped path, any foreign WAL ignored
        has_store = con.execute(
            "SELECT count(*) FROM duckdb_columns() WHERE database_name = 's' AND schema_name = 'analytics' "
            "AND table_name = 'mart_daily_rankings' AND column_name = 'store'").fetchone()[0]
        store = "store" if has_store else "'apple'"
        rows = con.execute(f"SELECT {store}, country, max(chart_date) FROM s.{RANKINGS} GROUP BY ALL").fetchall()
    finally:
        con.close()
    return {storefront(st, country): day for st, country, day in rows
            if st is not None and country is not None and day is not None}


def evaluate_freshness(newest: dict[str, dt.date], countries: list[str], max_age_hours: float,
                       now: dt.datetime) -> tuple[list[str], dict[str, float | None]]:
    """Stale countries (sorted) and each country's age in hours (None = no rows at all).

    A chart date's age counts from its start (00:00 UTC): with the default 36 h and a 06:15 daily fetch, a day
    that was fetched is fresh until noon of the next day, six hours after the next fetch should have replaced it.
    """
    now = now.astimezone(dt.timezone.utc) if now.tzinfo else now.replace(tzinfo=dt.timezone.utc)
    ages: dict[str, float | None] = {}
    for country in countries:
        day = newest.get(country)
        if day is None:
            ages[country] = None
            continue
        start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
        ages[country] = round((now - start).total_seconds() / 3600, 2)
    stale = sorted(c for c, age in ages.items() if age is None or age > max_age_hours)
    return stale, ages


@dg.asset_check(
    asset=SERVING_KEY,
    name="serving_freshness",
    description="Fails when the newest published chart date of any configured storefront of a judged store "
    "(ServingFreshness.stores / CHARTLAKE_FRESHNESS_STORES, default apple; storefronts: AppleFeeds.countries, "
    "PlayFeeds.countries) is older than the ServingFreshness resource allows (CHARTLAKE_FRESHNESS_HOURS, default "
    "36 h, counted from the chart day's start in UTC), or when nothing was published yet. A replay home "
    "(`chartlake demo`, replay.json) is judged at its pinned clock and for its own storefronts.",
)
def serving_freshness(chartlake: ChartlakeHome, apple_feeds: AppleFeeds, play_feeds: PlayFeeds,
                      freshness: ServingFreshness) -> dg.AssetCheckResult:
    home = chartlake.home()
    max_age = freshness.hours()
    replay = read_replay(home)
    feeds = {"apple": apple_feeds.country_list, "google_play": play_feeds.country_list}
    # A replay home (`chartlake demo`) is judged at its own clock and storefronts: a demo of January 2025 is not
    # stale, and the storefronts it did not generate are not missing.
    countries = [storefront(store, c) for store in freshness.store_list()
                 for c in (replay.countries if replay else feeds[store]())]
    now = replay.clock if replay else dt.datetime.now(dt.timezone.utc)
    path = home.serving_db
    base = {"serving_file": dg.MetadataValue.path(str(path)), "max_age_hours": max_age,
            "countries_expected": dg.MetadataValue.json(countries),
            "clock": (f"replay {now.isoformat(timespec='minutes')} (from {replay.source}; delete it to use the "
                      "wall clock)") if replay else "wall clock (UTC)"}
    if not path.exists():
        return dg.AssetCheckResult(
            passed=False,
            description=f"no serving file at {path}: nothing was published yet (run the daily job or "
            "`chartlake` build/publish first)",
            metadata={**base, "stale_countries": dg.MetadataValue.json(countries)},
        )
    try:
        newest = newest_chart_dates(path)
    except (duckdb.Error, serving_file.ServingFileError) as exc:
        return dg.AssetCheckResult(
            passed=False,
            description=f"cannot read {RANKINGS} from serving file {path}: {exc}",
            metadata={**base, "stale_countries": dg.MetadataValue.json(countries)},
        )
    stale, ages = evaluate_freshness(newest, countries, max_age, now)
    if stale:
        described = ", ".join(
            f"{c} ({'no rows' if ages[c] is None else f'newest {newest[c].isoformat()}, {ages[c]:.0f} h old'})"
            for c in stale)
        description = f"stale storefronts (older than {max_age:g} h): {described}"
    else:
        description = f"all {len(countries)} storefronts have a chart date newer than {max_age:g} h"
    return dg.AssetCheckResult(
        passed=not stale,
        description=description,
        metadata={
            **base,
            "newest_chart_date": dg.MetadataValue.json({c: d.isoformat() for c, d in sorted(newest.items())}),
            "age_hours": dg.MetadataValue.json(ages),
            "stale_countries": dg.MetadataValue.json(stale),
            "checked_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        },
    )


# The check also runs after every publish (it belongs to the serving asset, so jobs that publish run it). This job
# and its hourly schedule evaluate it on their own: when the daily run breaks before publishing, nothing else
# would notice that the served charts are getting old. Reading one local file, it is safe to leave on.
freshness_job = dg.define_asset_job(
    "freshness_job",
    selection=dg.AssetSelection.checks(serving_freshness),
    description="Evaluate the serving file's freshness check alone.",
)
freshness_schedule = dg.ScheduleDefinition(
    name="freshness_schedule",
    job=freshness_job,
    cron_schedule="45 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly: is the newest published chart date of every storefront recent enough?",
)
