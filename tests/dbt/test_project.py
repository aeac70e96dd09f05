"""The dbt project's own contract: docs, descriptions, vars, profile, no hub packages."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import yaml

from dbt_helpers import _env, make_dbt_home
from orchestration.config import DBT_PROJECT_DIR


def test_no_hub_packages():
    packages = DBT_PROJECT_DIR / "packages.yml"
    assert not packages.exists() or not (yaml.safe_load(packages.read_text()) or {}).get("packages")
    assert not (DBT_PROJECT_DIR / "dependencies.yml").exists()


def test_vars_have_documented_defaults():
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    assert project["vars"] == {
        "breakout_from_rank": 50,
        "breakout_within_days": 3,
        "spread_window_days": 7,
        "top_n": 10,
    }
    readme = (DBT_PROJECT_DIR / "README.md").read_text()
    # The window is not a project var (a declared var would win over Dagster's environment variables).
    for name in [*project["vars"], "min_date", "max_date", "CHARTLAKE_DBT_MIN_DATE", "CHARTLAKE_DBT_MAX_DATE"]:
        assert f"`{name}`" in readme, f"{name} is not documented in dbt_project/README.md"


def test_profile_holds_no_home_dependent_value():
    """What the lake is comes from the environment at connect time (orchestration.lib.dbt_lake); the profile
    itself is fixed, so dbt's partial-parse state holds in every home (tests/lib/test_dbt_lake.py)."""
    text = (DBT_PROJECT_DIR / "profiles.yml").read_text()
    assert "env_var" not in text and "{{" not in text
    profile = yaml.safe_load(text)["chartlake"]
    out = profile["outputs"][profile["target"]]
    assert out["type"] == "duckdb" and out["database"] == "lake" and out["keep_open"] is False
    assert out["plugins"] == [{"module": "orchestration.lib.dbt_lake"}]
    (attach,) = out["attach"]
    assert attach["alias"] == "lake" and attach["is_ducklake"] is True and attach["path"].startswith("ducklake:")
    assert out["retries"]["query_attempts"] >= 2


def test_a_new_home_and_window_partial_parse_from_the_projects_state(tmp_path):
    """`chartlake setup` parses once; a dbt command in any home, any lake configuration and any window must reuse
    that state (dagster-dbt copies partial_parse.msgpack into each run's target) instead of a full re-parse."""
    setup = make_dbt_home(tmp_path / "setup")
    (setup.target / "partial_parse.msgpack").unlink(missing_ok=True)
    setup.dbt("parse")
    run = make_dbt_home(tmp_path / "run")
    shutil.copy(setup.target / "partial_parse.msgpack", run.target / "partial_parse.msgpack")
    env = {"CHARTLAKE_LAKE_CATALOG": "dbname=lake host=127.0.0.1", "CHARTLAKE_LAKE_DATA_PATH": "s3://b/p",
           "CHARTLAKE_S3_KEY_ID": "k", "CHARTLAKE_DUCKDB_MEMORY_LIMIT": "1GB"}
    with _env(**env):
        run.dbt("parse", window=(dt.date(2025, 1, 3), dt.date(2025, 1, 4)))
    log = (run.target / "logs" / "dbt.log").read_text()
    assert "Unable to do partial parsing" not in log
    assert "Partial parsing enabled: 0 files deleted, 0 files added, 0 files changed" in log


def test_docs_generate_and_every_node_described(built):
    built.dbt("docs", "generate")
    manifest = json.loads((built.target / "manifest.json").read_text())
    catalog = json.loads((built.target / "catalog.json").read_text())
    ours = [n for n in manifest["nodes"].values()
            if n["package_name"] == "chartlake" and n["resource_type"] in ("model", "seed")]
    assert len([n for n in ours if n["resource_type"] == "model"]) >= 10
    missing = []
    for node in ours:
        if not node["description"].strip():
            missing.append(node["unique_id"])
        # Every column the built relation has must be described in yml.
        built_cols = catalog["nodes"][node["unique_id"]]["columns"]
        for col in built_cols:
            if not node["columns"].get(col, {}).get("description", "").strip():
                missing.append(f"{node['unique_id']}.{col}")
    for source in manifest["sources"].values():
        if not source["description"].strip():
            missing.append(source["unique_id"])
        assert source["source_name"] == "raw"
    assert not missing, f"undescribed: {missing}"
    src = manifest["sources"]["source.chartlake.raw.chart_entries"]
    assert src["loaded_at_field"] == "ingested_at" and src["freshness"]["error_after"]["count"]


def test_unit_tests_cover_the_tricky_logic(built):
    manifest = json.loads((built.target / "manifest.json").read_text())
    unit = {u["name"]: u["model"] for u in manifest["unit_tests"].values()}
    assert unit["test_rank_delta_and_new_entry_vs_re_entry"] == "mart_daily_rankings"
    assert unit["test_streak_at_1"] == "mart_daily_rankings"
    assert unit["test_breakout_detection_and_country_spread"] == "mart_breakouts"
    assert unit["test_heavyweight_overtaken"] == "int_watchlist_overtakes"
    result = built.dbt("test", "--select", "test_type:unit")
    statuses = [str(r.status) for r in result.result.results]
    assert len(statuses) >= 5 and set(statuses) == {"pass"}, statuses


def test_incremental_config_is_written_once_and_resolves_per_model(built):
    """dbt accepts a misspelt config key silently: the resolved config of every model is pinned here."""
    manifest = json.loads((built.target / "manifest.json").read_text())
    models = {n["name"]: n["config"] for n in manifest["nodes"].values()
              if n["resource_type"] == "model" and n["package_name"] == "chartlake"}
    resolved = {name: (c["materialized"], c.get("unique_key") if c["materialized"] == "incremental" else None,
                       c.get("on_schema_change") if c["materialized"] == "incremental" else None)
                for name, c in models.items()}
    by_date = ("incremental", "chart_date", "fail")
    assert resolved == {
        "stg_apple__chart_entries": ("view", None, None),
        "stg_apple__app_names": ("view", None, None),
        "int_chart_days": by_date,
        "int_app_names_daily": ("incremental", "chart_date", "append_new_columns"),
        "int_watchlist_overtakes": by_date,
        "fct_chart_entries": by_date,
        "mart_daily_rankings": by_date,
        "mart_daily_country_summary": by_date,
        "mart_breakouts": ("incremental", ["chart_id", "app_id", "breakout_date"], "fail"),
        "dim_apps": ("incremental", "app_id", "append_new_columns"),
        "dim_products": ("table", None, None),
        "mart_product_daily_ranks": ("table", None, None),
        "mart_product_breakouts": ("table", None, None),
    }
    assert {c["incremental_strategy"] for c in models.values() if c["materialized"] == "incremental"} == {"delete+insert"}
    # The block lives in dbt_project.yml; a model's config() only says how it differs.
    copies = [p.name for p in (DBT_PROJECT_DIR / "models").rglob("*.sql") if "materialized=" in p.read_text()]
    assert copies == []
