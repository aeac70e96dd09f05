"""The marts' asset pages in the Dagster UI: column types and row counts (dagster-dbt's column metadata, read through
dbt-duckdb on the DuckLake-attached lake) and a preview of the newest chart day, on a small demo's materializations."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from tests.conftest import run_chartlake
from orchestration.config import Home
from orchestration.runner import instance_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory) -> Home:
    home = Home(tmp_path_factory.mktemp("marts-metadata") / "home")
    assert run_chartlake(home, "demo", "--countries", "us,fr", "--start", "2025-01-13", "--end", "2025-01-15",
                         "--depth", "20") == 0
    return home


def _metadata(home: Home, model: str) -> dict:
    event = instance_for(home).get_latest_materialization_event(dg.AssetKey(["marts", model]))
    assert event is not None, model
    return event.asset_materialization.metadata


def _served_count(home: Home, table: str) -> int:
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{home.serving_db}' AS s (READ_ONLY)")
        return con.execute(f"select count(*) from s.analytics.{table}").fetchone()[0]
    finally:
        con.close()


@pytest.mark.parametrize("model,column,type_", [
    ("fct_chart_entries", "rank", "INTEGER"), ("mart_daily_rankings", "app_id", "VARCHAR"),
    ("mart_daily_country_summary", "top_n_entered_app_ids", "VARCHAR[]"), ("mart_breakouts", "breakout_date", "DATE"),
    ("dim_apps", "is_current", "BOOLEAN")])
def test_marts_carry_column_types_and_row_counts(small_demo, model, column, type_):
    meta = _metadata(small_demo, model)
    columns = {c.name: c.type.upper() for c in meta["dagster/column_schema"].value.columns}
    assert all(columns.values()), columns
    assert columns[column] == type_
    # Nothing was quarantined in the demo: the lake's table and the published one hold the same rows.
    assert meta["dagster/row_count"].value == _served_count(small_demo, model)


def test_rankings_show_the_newest_day_and_their_types(small_demo):
    meta = _metadata(small_demo, "mart_daily_rankings")
    columns = {c.name: c.type.upper() for c in meta["dagster/column_schema"].value.columns}
    assert (columns["rank"], columns["chart_date"], columns["is_new_entry"]) == ("INTEGER", "DATE", "BOOLEAN")
    preview = meta["preview_latest_day"].value
    lines = preview.splitlines()
    assert lines[0].split("|")[1].strip() == "chart_date" and "app_name" in lines[0]
    body = lines[2:]
    assert len(body) == 18 and all("2025-01-15" in line for line in body), preview
