"""The Dagster instance's configuration and the writer pools (fast: no services)."""

from __future__ import annotations

from orchestration.defs import instance as instance_config


def test_instance_yaml_is_sqlite_by_default_and_postgres_with_pools_when_configured(tmp_path):
    assert "storage" not in instance_config.instance_yaml({}) and "pools" not in instance_config.instance_yaml({})
    pg = instance_config.instance_yaml({"CHARTLAKE_DAGSTER_PG_URL": "postgresql://d@h/dagster"})
    assert "postgres_url:\n      env: CHARTLAKE_DAGSTER_PG_URL" in pg and "default_limit: 1" in pg
    assert "key: dagster/partition" in pg and "applyLimitPerUniqueValue: true" in pg
    # A file chartlake wrote follows the configuration; one a person edited is left alone.
    path = instance_config.ensure_dagster_yaml(tmp_path, {})
    instance_config.ensure_dagster_yaml(tmp_path, {"CHARTLAKE_DAGSTER_PG_URL": "x"})
    assert "postgres" in path.read_text()
    path.write_text("telemetry:\n  enabled: true\n")
    instance_config.ensure_dagster_yaml(tmp_path, {})
    assert path.read_text() == "telemetry:\n  enabled: true\n"


def test_writers_of_shared_tables_are_in_pools():
    from orchestration.definitions import defs

    pools = {}
    for node in defs.resolve_job_def("warehouse_job").graph.node_defs:
        pools[node.name] = node.pool
    assert pools["chartlake_dbt_assets"] == instance_config.POOL_DBT
    assert pools["serving__chartlake"] == instance_config.POOL_PUBLISH
    raw_nodes = {n.name: n.pool for n in defs.resolve_job_def("raw_job").graph.node_defs}
    assert raw_nodes["raw__chart_entries"] is None  # append-only: any number at once
    assert raw_nodes["raw__quarantined_payloads"] == instance_config.POOL_QUARANTINE
