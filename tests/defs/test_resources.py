"""Settings reach a run through resource fields, else their environment variable read when the run uses them."""

from __future__ import annotations

import os

from orchestration.defs.dbt.assets import _home_env
from orchestration.defs.resources import ChartlakeHome
from orchestration.lib import lake


def test_memory_limit_from_the_resource_reaches_lake_sessions_and_dbt(tmp_path, monkeypatch):
    monkeypatch.setenv(lake.MEMORY_LIMIT_ENV, "3GB")
    resource = ChartlakeHome(path=str(tmp_path / "home"), duckdb_memory_limit="256MB")
    home = resource.home()
    assert home.duckdb_memory_limit == "256MB"
    with lake.session(home) as con:
        assert con.execute("select current_setting('memory_limit')").fetchone()[0].replace(" ", "") == "244.1MiB"
    with _home_env(resource):  # what profiles.yml reads during the dbt step
        assert os.environ[lake.MEMORY_LIMIT_ENV] == "256MB"
        assert os.environ["CHARTLAKE_HOME"] == str(home.root)
    assert os.environ[lake.MEMORY_LIMIT_ENV] == "3GB"  # restored


def test_an_unset_field_reads_the_variable_when_used_not_at_import(tmp_path, monkeypatch):
    resource = ChartlakeHome(path=str(tmp_path / "home"))
    monkeypatch.delenv(lake.MEMORY_LIMIT_ENV, raising=False)
    assert resource.memory_limit() == lake.DEFAULT_MEMORY_LIMIT
    assert resource.home().duckdb_memory_limit is None  # lake sessions resolve (and name) the variable themselves
    monkeypatch.setenv(lake.MEMORY_LIMIT_ENV, "512MB")
    assert resource.memory_limit() == "512MB"
