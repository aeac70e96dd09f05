"""The marts built by `dbt build` from the synthetic month (see conftest.py for what it contains)."""

from __future__ import annotations

import datetime as dt

from dbt_helpers import CHATGPT, INSTAGRAM, REDNOTE, TIKTOK, chart_apps, day

US_IPHONE = "apple/us/iphone/top-free/all"
FR_IPHONE = "apple/fr/iphone/top-free/all"
GB_IPHONE = "apple/gb/iphone/top-free/all"


def test_models_land_in_exact_schemas(built):
    rows = built.query(
        "select schema_name, table_name from duckdb_tables() where database_name = 'lake' "
        "union all select schema_name, view_name from duckdb_views() where database_name = 'lake'"
    )
    where = {t: s for s, t in rows}
    assert where["stg_apple__chart_entries"] == "staging"
    assert where["int_chart_days"] == "intermediate"
    for mart in ("fct_chart_entries", "mart_daily_rankings", "mart_daily_country_summary", "mart_breakouts",
                 "dim_apps", "dim_countries", "watchlist"):
        assert where[mart] == "marts", mart


def test_rednote_is_number_one_in_us_on_jan_14(built):
    rows = built.query_dicts(
        "select * from marts.mart_daily_rankings where chart_id = ? and chart_date = ? and rank = 1",
        [US_IPHONE, day(14)],
    )
    assert [(r["app_id"], r["app_name"]) for r in rows] == [(REDNOTE, "RedNote")]
    r = rows[0]
    assert (r["previous_rank"], r["rank_delta"], r["streak_at_1"], r["peak_rank_to_date"]) == (8, 7, 1, 1)
    assert r["days_in_chart"] == 3 and r["first_chart_date"] == day(12)


def test_rednote_history_in_us(built):
    rows = built.query_dicts(
        "select chart_date, rank, previous_rank, rank_delta, is_new_entry, is_re_entry, streak_at_1, "
        "peak_rank_to_date from marts.mart_daily_rankings where chart_id = ? and app_id = ? order by chart_date",
        [US_IPHONE, REDNOTE],
    )
    by_day = {r["chart_date"].day: r for r in rows}
    assert by_day[12]["is_new_entry"] and by_day[12]["previous_rank"] is None
    assert (by_day[13]["previous_rank"], by_day[13]["rank_delta"]) == (55, 47)
    assert [by_day[n]["streak_at_1"] for n in (14, 15, 16, 17)] == [1, 2, 3, 0]
    assert by_day[21]["peak_rank_to_date"] == 1
    assert not any(r["is_re_entry"] for r in rows)


def test_tiktok_exits_us_chart_and_re_enters(built):
    summary = built.query_dicts(
        "select chart_date, chart_exited_app_ids, chart_exits, top_n_exited_app_ids "
        "from marts.mart_daily_country_summary where chart_id = ? and chart_date between ? and ? "
        "order by chart_date",
        [US_IPHONE, day(17), day(20)],
    )
    by_day = {r["chart_date"].day: r for r in summary}
    assert TIKTOK in by_day[18]["chart_exited_app_ids"]
    assert TIKTOK in by_day[18]["top_n_exited_app_ids"]
    assert TIKTOK not in by_day[17]["chart_exited_app_ids"]
    assert by_day[18]["chart_exits"] == len(by_day[18]["chart_exited_app_ids"])
    back = built.query_dicts(
        "select * from marts.mart_daily_rankings where chart_id = ? and app_id = ? and chart_date = ?",
        [US_IPHONE, TIKTOK, day(20)],
    )[0]
    assert back["is_re_entry"] and not back["is_new_entry"]
    assert back["previous_rank"] is None and back["rank_delta"] is None
    # Days in chart counts days present, not calendar days: 17 days before the gap, then Jan 20.
    assert back["days_in_chart"] == 18


def test_rednote_breaks_out_in_us_and_france(built):
    rows = built.query_dicts(
        "select * from marts.mart_breakouts where app_id = ? and device = 'iphone' order by country", [REDNOTE]
    )
    by_country = {r["country"]: r for r in rows}
    assert set(by_country) == {"fr", "us"}
    us, fr = by_country["us"], by_country["fr"]
    assert (us["breakout_date"], us["surge_start_date"], us["surge_start_rank"], us["breakout_rank"]) == (
        day(13), day(12), 55, 8)
    assert us["velocity_ranks_per_day"] == 47.0 and not us["from_outside_chart"]
    assert fr["breakout_date"] == day(14) and fr["from_outside_chart"] and fr["surge_start_rank"] is None
    assert fr["surge_start_position"] == 61  # outside a 60-entry chart
    for r in (us, fr):
        assert r["country_spread"] >= 2 and r["spread_countries"] == ["fr", "us"]
    # US: #8, 1, 1, 1, 3, 6 from Jan 13 to 18, then #12: six days in the top 10.
    assert (us["days_in_top_n"], us["last_top_n_date"], us["best_rank_in_run"]) == (6, day(18), 1)
    assert not us["still_in_top_n"]
    # GB: RedNote only reached #40, which is no breakout.
    assert not built.query("select 1 from marts.mart_breakouts where chart_id = ? and app_id = ?", [GB_IPHONE, REDNOTE])


def test_us_heavyweights_overtaken_by_rednote(built):
    row = built.query_dicts(
        "select * from marts.mart_daily_country_summary where chart_id = ? and chart_date = ?", [US_IPHONE, day(14)]
    )[0]
    assert row["number_one_app_id"] == REDNOTE
    assert {TIKTOK, CHATGPT, INSTAGRAM} <= set(row["watchlist_overtaken_app_ids"])
    assert row["watchlist_overtaken_count"] == len(row["watchlist_overtaken_app_ids"])
    assert "TikTok" in row["watchlist_overtaken_apps"]
    detail = built.query_dicts(
        "select * from intermediate.int_watchlist_overtakes where chart_id = ? and chart_date = ? and app_id = ?",
        [US_IPHONE, day(14), TIKTOK],
    )[0]
    assert (detail["top_overtaker_app_id"], detail["previous_rank"], detail["rank"]) == (REDNOTE, 1, 2)
    # On a quiet day nobody is overtaken.
    quiet = built.query(
        "select watchlist_overtaken_count from marts.mart_daily_country_summary where chart_id = ? and chart_date = ?",
        [US_IPHONE, day(5)],
    )
    assert quiet == [(0,)]


def test_payload_correction_wins_over_older_versions(built):
    raw_versions = built.query(
        "select count(distinct payload_sha256) from raw.chart_entries where country = 'fr' and chart_date = ?",
        [day(10)],
    )
    assert raw_versions == [(3,)]
    fct = built.query(
        "select rank, app_id, count(distinct payload_sha256) over () from marts.fct_chart_entries "
        "where chart_id = ? and chart_date = ? order by rank",
        [FR_IPHONE, day(10)],
    )
    expected = chart_apps("fr", "iphone", day(10))
    assert [r[1] for r in fct] == [a for a, _ in expected]
    assert {r[2] for r in fct} == {1}
    assert not built.query("select 1 from marts.fct_chart_entries where app_id in ('999001', '999002')")


def test_missing_capture_day_is_not_a_gap(built):
    rows = built.query_dicts(
        "select * from marts.mart_daily_country_summary where chart_id = ? and chart_date = ?", [GB_IPHONE, day(26)]
    )
    assert rows[0]["previous_chart_date"] == day(24)
    # The filler pool drifts slowly: a handful of apps move in and out, not the whole chart.
    assert rows[0]["chart_re_entries"] < 10
    assert not built.query("select 1 from marts.fct_chart_entries where chart_id = ? and chart_date = ?",
                           [GB_IPHONE, day(25)])


def test_first_chart_day_has_no_movement(built):
    rows = built.query_dicts(
        "select * from marts.mart_daily_country_summary where chart_date = ?", [dt.date(2025, 1, 1)]
    )
    assert len(rows) == 4
    for r in rows:
        assert r["previous_chart_date"] is None and r["top_n_entries"] is None and r["chart_exits"] is None


def test_dim_apps_keeps_name_history(built):
    rows = built.query_dicts("select * from marts.dim_apps where app_id = ? order by valid_from", [REDNOTE])
    assert [(r["app_name"], r["valid_from"], r["valid_to"], r["is_current"]) for r in rows] == [
        ("Xiaohongshu", day(12), day(14), False),
        ("RedNote", day(14), None, True),
    ]
    assert rows[0]["known_names"] == ["RedNote", "Xiaohongshu"]
    watch = built.query("select app_id from marts.dim_apps where is_watchlisted and is_current order by app_id")
    assert {r[0] for r in watch} >= {TIKTOK, INSTAGRAM, CHATGPT}


def test_names_are_trimmed_and_countries_known(built):
    raw_padded = built.query("select count(*) from raw.chart_entries where app_name <> trim(app_name)")[0][0]
    assert raw_padded > 0, "the synthetic raw rows should include padded names"
    assert built.query("select count(*) from marts.fct_chart_entries where app_name <> trim(app_name)") == [(0,)]
    regions = dict(built.query("select code, region from marts.dim_countries"))
    for code in ("us", "fr", "gb", "de", "jp", "cn", "ca", "br", "in", "kr", "it", "es"):
        assert code in regions
    assert regions["fr"] == "Europe" and regions["us"] == "North America"
