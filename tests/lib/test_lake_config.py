"""The lake's catalog and data path are configuration, read the same way by Python and by dbt's profile."""

from __future__ import annotations

import os
import re
from argparse import Namespace

import pytest

from orchestration.config import DBT_PROJECT_DIR, Home
from orchestration.lib import lake

PG_DSN = "dbname=lake host=127.0.0.1 port=5433 user=chartlake password=s3cr3t"
PG_URI = "postgresql://chartlake:s3cr3t@127.0.0.1:5433/lake"
S3_ENV = {"CHARTLAKE_LAKE_DATA_PATH": "s3://chartlake-lake/files", "CHARTLAKE_S3_ENDPOINT": "127.0.0.1:9000",
          "CHARTLAKE_S3_KEY_ID": "AKIA", "CHARTLAKE_S3_SECRET": "sec'ret", "CHARTLAKE_S3_REGION": "eu-west-1",
          "CHARTLAKE_S3_URL_STYLE": "path", "CHARTLAKE_S3_USE_SSL": "false"}

CASES = {
    "default": {},
    "sqlite-elsewhere": {"CHARTLAKE_LAKE_CATALOG": "sqlite:/srv/lake/catalog.sqlite",
                         "CHARTLAKE_LAKE_DATA_PATH": "/srv/lake/files/"},
    "postgres-dsn": {"CHARTLAKE_LAKE_CATALOG": PG_DSN},
    "postgres-uri-s3": {"CHARTLAKE_LAKE_CATALOG": PG_URI, "CHARTLAKE_LAKE_METADATA_SCHEMA": "lake_meta", **S3_ENV},
}


def _options(attach: str) -> tuple[str, dict]:
    """(catalog path, {OPTION: value}) of an ATTACH statement, whichever way booleans and quotes were written."""
    m = re.match(r"ATTACH (?:IF NOT EXISTS )?'(.*?)' AS (\w+) \((.*)\)$", attach, re.S)
    assert m, attach
    opts = {}
    for part in re.findall(r"\w+(?: (?:'(?:[^']|'')*'|\S+?))?(?=, |$)", m.group(3)):
        key, _, value = part.partition(" ")
        opts[key.upper()] = (value or "true").strip("'").lower() if value.lower() in ("", "true") else value.strip("'")
    return m.group(1), opts


def _dbt_profile(env: dict):
    """dbt's own rendering of dbt_project/profiles.yml under ``env`` (what `dbt build` would attach)."""
    from dbt.config.profile import Profile, read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt.flags import set_from_args
    from dbt_common.context import set_invocation_context

    set_from_args(Namespace(), None)
    set_invocation_context(env)
    return Profile.from_raw_profiles(read_profile(str(DBT_PROJECT_DIR)), "chartlake", ProfileRenderer({})).credentials


@pytest.mark.parametrize("case", sorted(CASES))
def test_dbt_profile_attaches_what_python_attaches(case, tmp_path):
    home = Home(tmp_path / "home")
    env = {"CHARTLAKE_HOME": str(home.root), **CASES[case]}
    creds = _dbt_profile(env)
    (attachment,) = creds.attach
    assert attachment.alias == lake.LAKE_ALIAS
    config = lake.LakeConfig.resolve(home, env)
    assert _options(attachment.to_sql()) == _options(config.attach_sql())
    secrets = creds.secrets_sql()
    if config.s3:
        (secret,) = secrets
        ours = dict(re.findall(r"(\w+) '((?:[^']|'')*)'", config.s3.secret_sql().replace("USE_SSL false", "USE_SSL 'false'")))
        theirs = dict(re.findall(r"(\w+) '((?:[^']|'')*)'", secret))
        assert {k.lower(): v.lower() for k, v in ours.items()} == {k.lower(): v.lower() for k, v in theirs.items()}
    assert set(config.extensions) <= set(creds.extensions)


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


@pytest.mark.parametrize("given", [None, "", "512MB", " 3GB "])
def test_dbt_profile_bounds_memory_like_python(given, tmp_path):
    """profiles.yml and lake.connect read one variable with one default: dbt never gets DuckDB's 80% of RAM."""
    home = Home(tmp_path / "home")
    env = {"CHARTLAKE_HOME": str(home.root)}
    if given is not None:
        env[lake.MEMORY_LIMIT_ENV] = given
    creds = _dbt_profile(env)
    assert creds.config_options["memory_limit"] == lake.memory_limit(home, env)
    assert lake.memory_limit(home, env) == (given or "").strip() or lake.DEFAULT_MEMORY_LIMIT


def test_a_home_configured_memory_limit_wins_over_the_variable(tmp_path):
    import dataclasses

    home = dataclasses.replace(Home(tmp_path / "home"), duckdb_memory_limit="256MB")
    assert lake.memory_limit(home, {lake.MEMORY_LIMIT_ENV: "4GB"}) == "256MB"
    assert home == Home(tmp_path / "home")  # the same directory is the same home
