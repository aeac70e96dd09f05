"""The marts check as it runs on the lake: every rule a GX expectation on GX's SQL datasource over DuckDB.

A DuckDB file holds the relations the check reads (raw, staging as a view over raw, the marts, the dims), built
from consistent frames over six days. Violations are planted on later days of the window.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from conftest import DAY, dims_from, raw_day, rankings_from, summary_from
from orchestration.lib.quality.marts import check_lake_window

DAYS = [DAY + dt.timedelta(days=i) for i in range(6)]
WINDOW = (DAYS[0], DAYS[-1] + dt.timedelta(days=1))
LAST = DAYS[-1]
COUNTRIES = ("us", "fr")
DEPTH = 30
ROWS_PER_DAY = len(COUNTRIES) * 2 * DEPTH  # two charts per country
FCT_COLUMNS = ["store", "country", "device", "chart", "genre_id", "chart_date", "rank", "app_id", "app_name",
               "payload_sha256"]
# The staging model's version rule, kept small: latest fetch wins, quarantined payloads never count.
STAGING_VIEW = """
create or replace view staging.stg_apple__chart_entries as
select * exclude (latest) from (
    select *, arg_max(payload_sha256, fetched_at) over (
        partition by store, country, device, chart, genre_id, chart_date) as latest
    from raw.chart_entries r
    where not exists (select 1 from raw.quarantined_payloads q
                      where q.payload_sha256 = r.payload_sha256 and q.chart_date = r.chart_date
                        and q.country = r.country)
) where payload_sha256 = latest {extra}
"""


def failed(result) -> set[str]:
    return {o.name for o in result.blocking_failures}


def label(country: str, chart: str, day: dt.date) -> str:
    return f"apple/{country}/iphone/{chart}/{day.isoformat()}"


@pytest.fixture
def lake(tmp_path):
    """A DuckDB file with consistent raw, staging, marts and dims for six days of two countries."""
    raw = pd.concat([raw_day(c, d, depth=DEPTH) for d in DAYS for c in COUNTRIES], ignore_index=True)
    before = pd.concat([raw_day(c, DAYS[0] - dt.timedelta(days=1), depth=DEPTH) for c in COUNTRIES])
    rankings = []
    for i, d in enumerate(DAYS):
        today = raw[raw["chart_date"] == pd.Timestamp(d)]
        yesterday = before if i == 0 else raw[raw["chart_date"] == pd.Timestamp(DAYS[i - 1])]
        for c in COUNTRIES:
            rankings.append(rankings_from(today[today["country"] == c], yesterday[yesterday["country"] == c]))
    rankings = pd.concat(rankings, ignore_index=True)
    summary = summary_from(rankings).rename(columns={"top_app_id": "number_one_app_id"})
    apps, countries = dims_from(raw, before)
    con = duckdb.connect(str(tmp_path / "lake.duckdb"))
    for schema in ("raw", "staging", "marts"):
        con.execute(f"create schema {schema}")
    con.register("raw_df", raw)
    con.execute("create table raw.chart_entries as select * from raw_df")
    con.execute("create table raw.quarantined_payloads (chart_date date, country varchar, payload_sha256 varchar, "
                "reason varchar, run_id varchar, checked_at timestamp)")
    con.execute(STAGING_VIEW.format(extra=""))
    con.execute(f"create table marts.fct_chart_entries as select {', '.join(FCT_COLUMNS)}, "
                "cast(chart_date as date) as chart_day from raw_df")
    # DuckDB hands chart_date back as a date in the lake; a DATE column here too.
    con.execute("alter table marts.fct_chart_entries drop column chart_date")
    con.execute("alter table marts.fct_chart_entries rename column chart_day to chart_date")
    for name, frame in (("mart_daily_rankings", rankings), ("mart_daily_country_summary", summary),
                        ("dim_apps", apps), ("dim_countries", countries.rename(columns={"country": "code"}))):
        con.register("frame", frame)
        con.execute(f"create table marts.{name} as select * from frame")
        con.unregister("frame")
    con.execute("alter table marts.mart_daily_rankings alter chart_date type date")
    con.execute("alter table marts.mart_daily_country_summary alter chart_date type date")
    yield con
    con.close()


def check(con, **kw):
    return check_lake_window(con, WINDOW, **kw)


def test_consistent_lake_passes(lake):
    checked = check(lake)
    assert checked.staging.passed, checked.staging.describe()
    assert checked.marts.passed, checked.marts.describe()
    assert checked.rows_checked == 3 * len(DAYS) * ROWS_PER_DAY + len(DAYS) * 4  # stg, fct, rankings + summary
    names = {o.name for o in checked.marts.outcomes}
    assert {"fct_chart_entries.row_count_reconciled", "mart_daily_rankings.grain_unique",
            "mart_daily_rankings.rank_delta_consistent", "mart_daily_country_summary.top_app_matches_rankings",
            "mart_daily_rankings.app_in_dim_apps", "dim_apps.app_id_unique"} <= names
    assert "stg_apple__chart_entries.row_count_reconciled" in {o.name for o in checked.staging.outcomes}
    # Every chart of every day was seen.
    assert len(checked.marts.charts) == len(DAYS) * len(COUNTRIES) * 2


def test_violation_on_a_later_day_is_caught(lake):
    lake.execute(f"""insert into marts.mart_daily_rankings select * from marts.mart_daily_rankings
                     where country = 'us' and chart = 'top-free' and chart_date = date '{LAST}' and rank = 1""")
    lake.execute(f"""update marts.fct_chart_entries set device = null
                     where country = 'fr' and chart = 'top-paid' and chart_date = date '{LAST}' and rank = 3""")
    checked = check(lake)
    assert checked.staging.passed
    assert failed(checked.marts) == {
        "mart_daily_rankings.grain_unique", "mart_daily_rankings.app_unique_in_chart",
        "mart_daily_rankings.row_count_reconciled", "fct_chart_entries.device_not_null",
        # The fct row with a null device left its chart for a chart of its own: both counts differ from staging.
        "fct_chart_entries.row_count_reconciled",
    }
    grain = checked.marts.outcome("mart_daily_rankings.grain_unique")
    assert grain.charts == [label("us", "top-free", LAST)] and grain.unexpected_count == 1
    null = checked.marts.outcome("fct_chart_entries.device_not_null")
    assert null.unexpected_count == 1 and null.charts == ["apple/fr/None/top-paid/" + LAST.isoformat()]
    assert label("us", "top-free", LAST) in checked.marts.failed_charts


def test_violations_on_several_days_are_listed(lake):
    for day in (DAYS[1], DAYS[4]):  # first and third part
        lake.execute(f"""update marts.mart_daily_rankings set rank_delta = rank_delta + 1
                         where country = 'us' and chart = 'top-paid' and chart_date = date '{day}' and rank = 5""")
    lake.execute(f"""update marts.mart_daily_country_summary set number_one_app_id = '999'
                     where country = 'fr' and chart = 'top-free' and chart_date = date '{DAYS[3]}'""")
    checked = check(lake)
    assert failed(checked.marts) == {"mart_daily_rankings.rank_delta_consistent",
                                     "mart_daily_country_summary.top_app_matches_rankings",
                                     "mart_daily_country_summary.app_in_dim_apps"}
    delta = checked.marts.outcome("mart_daily_rankings.rank_delta_consistent")
    assert delta.unexpected_count == 2
    assert delta.charts == [label("us", "top-paid", DAYS[1]), label("us", "top-paid", DAYS[4])]
    assert len(delta.unexpected_values) == 2
    top = checked.marts.outcome("mart_daily_country_summary.top_app_matches_rankings")
    assert top.charts == [label("fr", "top-free", DAYS[3])]
    assert not checked.marts.to_dict()["passed"]


def test_staging_reconciles_with_raw(lake):
    # A correction of one chart on the last day (fewer ranks, fetched later) becomes the current version.
    fix = lake.execute(f"""select * replace ('c' || repeat('0', 63) as payload_sha256,
                                             fetched_at + interval 3 hour as fetched_at)
                           from raw.chart_entries where country = 'fr' and chart = 'top-free'
                             and chart_date = date '{LAST}' and rank <= 25""").df()
    lake.register("fix", fix)
    lake.execute("insert into raw.chart_entries select * from fix")
    checked = check(lake)
    assert checked.staging.passed  # staging took the correction, as raw says it should
    # ... but the marts still hold the old version: fct no longer matches staging for that chart.
    assert failed(checked.marts) == {"fct_chart_entries.row_count_reconciled"}
    assert checked.marts.outcome("fct_chart_entries.row_count_reconciled").charts == [label("fr", "top-free", LAST)]

    # Quarantined, the correction never counts: raw expects the old version again and everything passes.
    lake.execute("insert into raw.quarantined_payloads values (?, 'fr', ?, 'test', 'run', now())",
                 [LAST, "c" + "0" * 63])
    assert check(lake).passed

    # A staging model that drops a row or mangles an app id is caught against raw without reading its rows.
    lake.execute(STAGING_VIEW.replace("select *,", "select * replace (case when rank = 7 and country = 'us' "
                                      f"and chart_date = date '{DAYS[3]}' then 'id7' else app_id end as app_id),")
                 .format(extra=f"and not (rank = 12 and country = 'fr' and chart_date = date '{LAST}')"))
    checked = check(lake)
    assert failed(checked.staging) == {"stg_apple__chart_entries.row_count_reconciled",
                                       "stg_apple__chart_entries.app_id_well_formed"}
    assert checked.staging.outcome("stg_apple__chart_entries.app_id_well_formed").charts == [
        label("us", "top-free", DAYS[3]), label("us", "top-paid", DAYS[3])]
    assert "fct_chart_entries.row_count_reconciled" in failed(checked.marts)


def test_empty_window_and_broken_lake_fail(lake):
    later = (LAST + dt.timedelta(days=10), LAST + dt.timedelta(days=12))
    checked = check_lake_window(lake, later)
    assert not checked.passed
    assert "mart_daily_rankings.has_rows" in failed(checked.marts)
    assert "stg_apple__chart_entries.has_rows" in failed(checked.staging)

    # A renamed column fails the rules that read it, naming it; a dimension without its key fails the suite.
    lake.execute("alter table marts.mart_daily_country_summary rename column number_one_app_id to number_one")
    checked = check(lake)
    assert "mart_daily_country_summary.top_app_matches_rankings" in failed(checked.marts)
    lake.execute("alter table marts.mart_daily_country_summary rename column number_one to number_one_app_id")
    lake.execute("alter table marts.dim_apps rename column app_id to id")
    checked = check(lake)
    broken = checked.marts.outcome("dim_apps.app_id_not_null")
    assert not checked.passed and not broken.success and "app_id" in broken.error
    lake.execute("alter table marts.dim_apps rename column id to app_id")

    lake.execute("drop table marts.mart_daily_country_summary")
    checked = check(lake)
    assert not checked.passed and "mart_daily_country_summary" in checked.marts.error
    with pytest.raises(ValueError, match="window"):
        check_lake_window(lake, None)
