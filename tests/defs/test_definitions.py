"""A snapshot of the asset graph: a wiring change (a key, a group, a check, a job) shows up here in review."""

import dagster as dg

from orchestration.definitions import defs

EXPECTED_ASSETS = {
    "raw/payloads": "raw",
    "raw/chart_entries": "raw",
    "raw/quarantined_payloads": "raw",
    "staging/stg_apple__chart_entries": "staging",
    "staging/stg_apple__payloads": "staging",
    "intermediate/int_app_names_daily": "intermediate",
    "intermediate/int_chart_days": "intermediate",
    "intermediate/int_watchlist_overtakes": "intermediate",
    "marts/fct_chart_entries": "marts",
    "marts/mart_daily_rankings": "marts",
    "marts/mart_daily_country_summary": "marts",
    "marts/mart_breakouts": "marts",
    "marts/dim_apps": "marts",
    "marts/dim_countries": "reference",
    "marts/watchlist": "reference",
    "serving/chartlake": "serving",
    "reports": "reports",
}


def test_asset_graph_snapshot():
    graph = defs.resolve_asset_graph()
    groups = {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert groups == EXPECTED_ASSETS


def test_raw_feeds_dbt_source_and_serving_reads_the_marts():
    graph = defs.resolve_asset_graph()
    stg = graph.get(dg.AssetKey(["staging", "stg_apple__chart_entries"]))
    assert dg.AssetKey(["raw", "chart_entries"]) in stg.parent_keys
    serving = graph.get(dg.AssetKey(["serving", "chartlake"]))
    assert {k.to_user_string() for k in serving.parent_keys} == {
        "marts/fct_chart_entries", "marts/mart_daily_rankings", "marts/mart_daily_country_summary",
        "marts/mart_breakouts", "marts/dim_apps", "marts/dim_countries"}


def test_checks_are_attached_to_their_assets():
    graph = defs.resolve_asset_graph()
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert ("raw/chart_entries", "raw_chart_quality") in checks
    assert ("marts/mart_daily_rankings", "marts_quality") in checks
    assert ("serving/chartlake", "serving_freshness") in checks
    # dbt tests arrive as checks on their models: every mart has some.
    for mart in ("fct_chart_entries", "mart_daily_rankings", "mart_daily_country_summary", "mart_breakouts"):
        assert any(a == f"marts/{mart}" for a, _ in checks), mart


def test_jobs_and_every_asset_described():
    assert {j.name for j in defs.jobs} >= {"raw_job", "warehouse_job"}
    graph = defs.resolve_asset_graph()
    undocumented = [k.to_user_string() for k in graph.get_all_asset_keys()
                    if not (graph.get(k).description or "").strip()]
    assert undocumented == []
