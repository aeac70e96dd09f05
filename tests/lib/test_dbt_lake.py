"""dbt's connection (dbt_project/profiles.yml + orchestration.lib.dbt_lake) is the lake session Python opens, in
any home and configuration, from a profile that is the same in all of them (so dbt's partial parse holds)."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

import pytest

from orchestration.config import DBT_PROJECT_DIR, Home
from orchestration.lib import dbt_lake, lake

PG_URI = "postgresql://chartlake:s3cr3t@127.0.0.1:5433/lake"
CASES = {
    "default": {},
    "sqlite-elsewhere": {"CHARTLAKE_LAKE_CATALOG": "sqlite:/srv/lake/catalog.sqlite",
                         "CHARTLAKE_LAKE_DATA_PATH": "/srv/lake/files/"},
    "postgres-dsn": {"CHARTLAKE_LAKE_CATALOG": "dbname=lake host=127.0.0.1 port=5433 user=chartlake password=s3cr3t"},
    "postgres-uri-s3": {"CHARTLAKE_LAKE_CATALOG": PG_URI, "CHARTLAKE_LAKE_METADATA_SCHEMA": "lake_meta",
                        "CHARTLAKE_LAKE_DATA_PATH": "s3://chartlake-lake/files", "CHARTLAKE_S3_KEY_ID": "AKIA",
                        "CHARTLAKE_S3_SECRET": "sec'ret", "CHARTLAKE_S3_ENDPOINT": "127.0.0.1:9000"},
    "memory-bound": {lake.MEMORY_LIMIT_ENV: "512MB"},
}


def _dbt_credentials(env: dict):
    """dbt's own rendering of dbt_project/profiles.yml under ``env``."""
    from dbt.config.profile import Profile, read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt.flags import set_from_args
    from dbt_common.context import set_invocation_context

    set_from_args(Namespace(), None)
    set_invocation_context(env)
    return Profile.from_raw_profiles(read_profile(str(DBT_PROJECT_DIR)), "chartlake", ProfileRenderer({})).credentials


def test_what_dbt_hashes_of_the_profile_is_the_same_in_every_home_and_configuration(tmp_path):
    # dbt's partial-parse state check hashes exactly connection_info() (dbt/parser/manifest.py).
    seen = {name: sorted(map(repr, _dbt_credentials({"CHARTLAKE_HOME": str(tmp_path / name), **env})
                             .connection_info()))
            for name, env in CASES.items()}
    assert len({tuple(v) for v in seen.values()}) == 1, seen


def _dbt_connection(monkeypatch, env: dict):
    """The DuckDB connection dbt-duckdb opens for a command run under ``env``, by its own code path."""
    from dbt.adapters.duckdb.environments import Environment

    for name in [*CASES["postgres-uri-s3"], lake.MEMORY_LIMIT_ENV]:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    creds = _dbt_credentials(env)
    plugins = Environment.initialize_plugins(creds)
    return Environment.initialize_db(creds, plugins), plugins


def _settings(con) -> dict:
    names = ("extension_directory", "memory_limit", "temp_directory", "autoinstall_known_extensions",
             "allow_unsigned_extensions")
    return {n: con.execute(f"select current_setting('{n}')").fetchone()[0] for n in names}


@pytest.mark.parametrize("moved", [False, True])
@pytest.mark.parametrize("case", ["default", "sqlite-elsewhere", "memory-bound"])
def test_dbt_connects_to_the_lake_python_connects_to(case, moved, tmp_path, monkeypatch):
    home = Home(tmp_path / "home").ensure()
    env = {"CHARTLAKE_HOME": str(home.root), **CASES[case]}
    if case == "sqlite-elsewhere":
        env.update(CHARTLAKE_LAKE_CATALOG=f"sqlite:{tmp_path / 'shared' / 'catalog.sqlite'}",
                   CHARTLAKE_LAKE_DATA_PATH=str(tmp_path / "shared" / "files"))
    monkeypatch.chdir(tmp_path)  # the profile's placeholder ATTACH must not create anything where dbt runs
    con, _ = _dbt_connection(monkeypatch, env)
    try:
        con.execute("create table lake.main.from_dbt as select 42 as x")
        dbs = {r[0] for r in con.execute("select database_name from duckdb_databases() where not internal").fetchall()}
        theirs = _settings(con)
    finally:
        con.close()
    assert dbs == {"lake", "memory"}  # the placeholder ATTACH attached nothing
    assert theirs["extension_directory"] == str(home.duckdb_extensions) and theirs["allow_unsigned_extensions"] is False
    assert theirs["autoinstall_known_extensions"] is False
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == sorted(
        ["home"] + (["shared"] if case == "sqlite-elsewhere" else []))
    if moved:  # a home moved elsewhere still opens its own files (OVERRIDE_DATA_PATH), from dbt as from Python
        home = Home(home.root.rename(tmp_path / "moved")).ensure() if case != "sqlite-elsewhere" else home
        monkeypatch.setenv("CHARTLAKE_HOME", str(home.root))
        con, _ = _dbt_connection(monkeypatch, {**env, "CHARTLAKE_HOME": str(home.root)})
        try:
            assert con.execute("select x from lake.main.from_dbt").fetchall() == [(42,)]
        finally:
            con.close()
    with lake.session(home) as ours:
        assert ours.execute("select x from lake.main.from_dbt").fetchall() == [(42,)]
        if not moved:
            assert _settings(ours) | {"autoinstall_known_extensions": False} == theirs


def test_a_reused_connection_refuses_another_home(tmp_path, monkeypatch):
    """dbt-duckdb reuses its environment within a process while the profile is unchanged: an in-process
    dbtRunner run under another home must fail, not build into the first home's lake."""
    first = Home(tmp_path / "a").ensure()
    con, plugins = _dbt_connection(monkeypatch, {"CHARTLAKE_HOME": str(first.root)})
    (plugin,) = plugins.values()
    try:
        plugin.configure_cursor(con.cursor())  # same home: fine
        monkeypatch.setenv("CHARTLAKE_HOME", str(tmp_path / "b"))
        with pytest.raises(lake.LakeError, match="close dbt-duckdb's environment"):
            plugin.configure_cursor(con.cursor())
        monkeypatch.setenv("CHARTLAKE_HOME", str(first.root))
        monkeypatch.setenv("CHARTLAKE_LAKE_CATALOG", f"sqlite:{tmp_path / 'other.sqlite'}")
        with pytest.raises(lake.LakeError, match="other.sqlite"):
            plugin.configure_cursor(con.cursor())
    finally:
        con.close()


def test_the_default_home_is_the_projects_data_directory(monkeypatch):
    from dbt.adapters.duckdb.environments import Environment

    monkeypatch.delenv("CHARTLAKE_HOME", raising=False)
    (plugin,) = Environment.initialize_plugins(_dbt_credentials({})).values()
    assert isinstance(plugin, dbt_lake.Plugin)
    assert plugin.home.root == (DBT_PROJECT_DIR / ".." / "data").resolve()
