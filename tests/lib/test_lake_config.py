"""The lake's catalog and data path are configuration, read when a connection is made (dbt's too: test_dbt_lake)."""

from __future__ import annotations

import os

import pytest

from orchestration.config import Home
from orchestration.lib import lake

PG_DSN = "dbname=lake host=127.0.0.1 port=5433 user=chartlake password=s3cr3t"
PG_URI = "postgresql://chartlake:s3cr3t@127.0.0.1:5433/lake"
S3_ENV = {"CHARTLAKE_LAKE_DATA_PATH": "s3://chartlake-lake/files", "CHARTLAKE_S3_ENDPOINT": "127.0.0.1:9000",
          "CHARTLAKE_S3_KEY_ID": "AKIA", "CHARTLAKE_S3_SECRET": "sec'ret", "CHARTLAKE_S3_REGION": "eu-west-1",
          "CHARTLAKE_S3_URL_STYLE": "path", "CHARTLAKE_S3_USE_SSL": "false"}


def test_default_is_the_home_sqlite_catalog(tmp_path):
    home = Home(tmp_path / "h")
    config = lake.LakeConfig.resolve(home, {})
    assert config.is_sqlite and config.sqlite_file == home.lake_catalog
    assert config.data_path == f"{home.lake_files}/" and config.default_data_path and config.s3 is None
    assert config.extensions == ("ducklake", "sqlite")
    sql = config.attach_sql(read_only=True, snapshot=7)
    assert sql == (f"ATTACH 'ducklake:sqlite:{home.lake_catalog}' AS lake (DATA_PATH '{home.lake_files}/', "
                   f"OVERRIDE_DATA_PATH true, META_JOURNAL_MODE 'WAL', META_BUSY_TIMEOUT 30000, READ_ONLY, "
                   f"SNAPSHOT_VERSION 7)")


def test_postgres_catalog_never_gets_sqlite_options_or_an_overridden_shared_path(tmp_path):
    config = lake.LakeConfig.resolve(Home(tmp_path), {"CHARTLAKE_LAKE_CATALOG": PG_URI, **S3_ENV})
    sql = config.attach_sql()
    assert sql.startswith(f"ATTACH 'ducklake:postgres:{PG_URI}' AS lake (DATA_PATH 's3://chartlake-lake/files/'")
    assert "META_" not in sql and "OVERRIDE_DATA_PATH" not in sql
    assert config.extensions == ("ducklake", "sqlite", "postgres", "httpfs")
    assert "s3cr3t" not in config.describe() and "***" in config.describe()
    assert "s3cr3t" not in lake.mask(PG_DSN)


def test_a_prefixed_catalog_is_a_clear_error(tmp_path):
    with pytest.raises(lake.LakeError, match="CHARTLAKE_LAKE_CATALOG='ducklake:postgres:dbname=x password=\\*\\*\\*'"):
        lake.LakeConfig.resolve(Home(tmp_path), {"CHARTLAKE_LAKE_CATALOG": "ducklake:postgres:dbname=x password=p"})
    with pytest.raises(lake.LakeError, match="CHARTLAKE_S3_USE_SSL='maybe'"):
        lake.LakeConfig.resolve(Home(tmp_path), {"CHARTLAKE_S3_USE_SSL": "maybe"})


def test_config_is_read_when_a_connection_is_made(tmp_path, monkeypatch):
    home = Home(tmp_path / "h").ensure()
    monkeypatch.setenv("CHARTLAKE_LAKE_CATALOG", f"sqlite:{tmp_path / 'elsewhere.sqlite'}")
    monkeypatch.setenv("CHARTLAKE_LAKE_DATA_PATH", str(tmp_path / "elsewhere-files"))
    with lake.session(home) as con:
        con.execute("create table t as select range as x from range(20000)")
    assert (tmp_path / "elsewhere.sqlite").exists() and not home.lake_catalog.exists()
    assert list((tmp_path / "elsewhere-files").rglob("*.parquet"))
    assert lake.exists(home)
    monkeypatch.delenv("CHARTLAKE_LAKE_CATALOG")
    assert not lake.exists(home)


def test_packaged_postgres_extension_installs_under_its_scanner_name(home):
    import duckdb

    ext_dir = lake.install_extensions(home)
    names = {p.name for p in ext_dir.rglob("*.duckdb_extension") if ".packaged" not in p.parts}
    assert {"postgres_scanner.duckdb_extension", "httpfs.duckdb_extension"} <= names
    con = duckdb.connect(":memory:")
    con.execute(f"SET extension_directory = '{ext_dir}'")
    con.execute("LOAD postgres")
    con.execute("LOAD httpfs")
    assert con.execute("select current_setting('allow_unsigned_extensions')").fetchone()[0] is False
    assert os.path.exists(lake.extension_binary("postgres"))


def test_a_home_configured_memory_limit_wins_over_the_variable(tmp_path):
    import dataclasses

    home = dataclasses.replace(Home(tmp_path / "home"), duckdb_memory_limit="256MB")
    assert lake.memory_limit(home, {lake.MEMORY_LIMIT_ENV: "4GB"}) == "256MB"
    assert home == Home(tmp_path / "home")  # the same directory is the same home
