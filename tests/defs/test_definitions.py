"""A snapshot of the asset graph: a wiring change (a key, a group, a check, a job) shows up here in review."""

import dagster as dg

from orchestration.definitions import defs

EXPECTED_ASSETS = {
    "raw/payloads": "raw",
    "raw/chart_entries": "raw",
    "raw/quarantined_payloads": "raw",
    "raw/payload_versions": "raw",
    "staging/stg_apple__app_names": "staging",
    "staging/stg_apple__chart_entries": "staging",
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
    "marts/product_apps": "reference",
    "marts/dim_products": "marts",
    "marts/mart_product_daily_ranks": "marts",
    "marts/mart_product_breakouts": "marts",
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
    assert dg.AssetKey(["raw", "payload_versions"]) in stg.parent_keys
    assert dg.AssetKey(["raw", "quarantined_payloads"]) in stg.parent_keys  # so one run judges before staging
    versions = graph.get(dg.AssetKey(["raw", "payload_versions"]))
    assert versions.parent_keys == {dg.AssetKey(["raw", "chart_entries"]), dg.AssetKey(["raw", "quarantined_payloads"])}
    serving = graph.get(dg.AssetKey(["serving", "chartlake"]))
    assert {k.to_user_string() for k in serving.parent_keys} == {
        "marts/fct_chart_entries", "marts/mart_daily_rankings", "marts/mart_daily_country_summary",
        "marts/mart_breakouts", "marts/dim_apps", "marts/dim_countries", "marts/dim_products",
        "marts/mart_product_daily_ranks", "marts/mart_product_breakouts"}


def test_checks_are_attached_to_their_assets():
    graph = defs.resolve_asset_graph()
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    # The raw suite runs inside the quarantine asset, which reports it as its check (the check writes nothing).
    assert ("raw/quarantined_payloads", "raw_chart_quality") in checks
    # raw/chart_entries carries only the duplicate guard (a chart position landed twice).
    assert {n for a, n in checks if a == "raw/chart_entries"} == {"raw_no_duplicate_positions"}
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


def test_raw_job_judges_each_day_and_warehouse_job_does_not_rejudge():
    raw = {k.to_user_string() for k in defs.resolve_job_def("raw_job").asset_layer.executable_asset_keys}
    warehouse = {k.to_user_string() for k in defs.resolve_job_def("warehouse_job").asset_layer.executable_asset_keys}
    assert raw == {"raw/chart_entries", "raw/quarantined_payloads"}
    assert not warehouse & raw
    assert "serving/chartlake" in warehouse
