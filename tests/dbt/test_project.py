"""The dbt project's own contract: docs, descriptions, vars, profile, no hub packages."""

from __future__ import annotations

import json

import yaml

from orchestration.config import DBT_PROJECT_DIR


def test_no_hub_packages():
    packages = DBT_PROJECT_DIR / "packages.yml"
    assert not packages.exists() or not (yaml.safe_load(packages.read_text()) or {}).get("packages")
    assert not (DBT_PROJECT_DIR / "dependencies.yml").exists()


def test_vars_have_documented_defaults():
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    assert project["vars"] == {
        "min_date": "1900-01-01",
        "max_date": "9999-12-31",
        "breakout_from_rank": 50,
        "breakout_within_days": 3,
        "spread_window_days": 7,
        "top_n": 10,
    }
    readme = (DBT_PROJECT_DIR / "README.md").read_text()
    for name in project["vars"]:
        assert f"`{name}`" in readme, f"var {name} is not documented in dbt_project/README.md"


def test_profile_mirrors_the_lake_attach():
    profile = yaml.safe_load((DBT_PROJECT_DIR / "profiles.yml").read_text())["chartlake"]
    out = profile["outputs"][profile["target"]]
    assert out["type"] == "duckdb" and out["database"] == "lake" and out["keep_open"] is False
    assert out["extensions"] == ["ducklake", "sqlite", "postgres", "httpfs"]
    assert out["config_options"]["extension_directory"].endswith("/.duckdb_extensions")
    assert out["config_options"]["autoinstall_known_extensions"] is False
    (attach,) = out["attach"]
    # What it renders to under each configuration is compared with lake.LakeConfig in tests/lib/test_lake_config.py.
    assert attach["alias"] == "lake" and attach["path"].startswith("ducklake:")
    assert "env_var('CHARTLAKE_HOME', '../data') }}/lake/catalog.sqlite" in attach["path"]
    assert "CHARTLAKE_LAKE_CATALOG" in attach["path"] and "CHARTLAKE_LAKE_DATA_PATH" in attach["options"]["data_path"]
    assert out["retries"]["query_attempts"] >= 2


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
