import os
import shutil
import pytest

import duckdb

from orchestration.config import Home
from orchestration.lib import lake


def test_fresh_home_installs_extensions_from_pip_packages(home):
    ext_dir = lake.install_extensions(home)
    found = {p.name for p in ext_dir.rglob("*.duckdb_extension")}
    assert {"ducklake.duckdb_extension", "sqlite_scanner.duckdb_extension"} <= found
    # A second connection finds them installed and loads them with signature checks on.
    con = duckdb.connect(":memory:")
    con.execute(f"SET extension_directory = '{ext_dir}'")
    installed = dict(con.execute(
        "select extension_name, installed from duckdb_extensions() where extension_name in ('ducklake','sqlite_scanner')"
    ).fetchall())
    assert installed == {"ducklake": True, "sqlite_scanner": True}
    assert con.execute("select current_setting('allow_unsigned_extensions')").fetchone()[0] is False


def test_every_write_is_a_labelled_snapshot(home):
    with lake.session(home) as con:
        lake.ensure_raw_schema(con)
        con.execute("BEGIN")
        con.execute("create table raw.t as select 1 as x")
        lake.set_commit_message(con, "create t", asset="raw/t", partition="2025-01-14", run_id="r1")
        con.execute("COMMIT")
        snap = lake.snapshots(con, limit=1)[0]
    assert snap["commit_message"] == "create t"
    assert '"partition": "2025-01-14"' in snap["commit_extra_info"]
    assert '"run_id": "r1"' in snap["commit_extra_info"]


def test_moved_home_still_opens(tmp_path):
    a = Home(tmp_path / "a").ensure()
    with lake.session(a) as con:
        lake.ensure_raw_schema(con)
        # Enough rows to be written as Parquet files rather than inlined in the catalog.
        con.execute("create table raw.big as select range as x from range(20000)")
    assert list(a.lake_files.rglob("*.parquet"))
    shutil.move(str(a.root), str(tmp_path / "b"))
    b = Home(tmp_path / "b")
    with lake.session(b, read_only=True) as con:
        assert con.execute("select count(*), sum(x) from raw.big").fetchone() == (20000, sum(range(20000)))
    with lake.session(b) as con:
        con.execute("insert into raw.big select range from range(20000, 40000)")
    assert len(list(b.lake_files.rglob("*.parquet"))) == 2


def test_read_only_without_a_lake_is_a_clear_error(home):
    import pytest

    with pytest.raises(lake.LakeError, match="no lake at"):
        lake.connect(home, read_only=True)


def test_lake_connections_bound_duckdb_memory(home, monkeypatch):
    from orchestration.lib import lake

    monkeypatch.delenv(lake.MEMORY_LIMIT_ENV, raising=False)
    with lake.session(home) as con:
        default = con.execute("select current_setting('memory_limit')").fetchone()[0]
        assert default.replace(" ", "").upper() in ("2GB", "1.8GIB", "1.8GB", "1.9GIB"), default
        assert con.execute("select current_setting('temp_directory')").fetchone()[0] == str(home.root / ".duckdb_tmp")
    monkeypatch.setenv(lake.MEMORY_LIMIT_ENV, "512MB")
    with lake.session(home) as con:
        assert con.execute("select current_setting('memory_limit')").fetchone()[0].replace(" ", "") in ("488.2MiB", "512.0MB", "488.2MB")
    monkeypatch.setenv(lake.MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(lake.LakeError, match="CHARTLAKE_DUCKDB_MEMORY_LIMIT='lots'"):
        lake.connect(home)


def test_an_install_killed_midway_is_finished_by_the_next_session_offline(home, monkeypatch):
    """A kill -9 inside INSTALL (fault trial 10) left only DuckDB's copy in progress, which DuckDB lists as
    installed: the next session then tried to download ducklake. It must install the packaged file instead."""
    ext_dir = lake.install_extensions(home)
    (done,) = ext_dir.rglob("ducklake.duckdb_extension")
    partial = done.with_name(done.name + ".tmp-0c632bc8-5a99-4ba0-ae8b-133135b2140a.duckdb_extension")
    done.rename(partial)
    for info in ext_dir.rglob("ducklake.duckdb_extension.info"):
        info.unlink()
    # Nothing may come from the network: the extension server is unreachable here, as in CI.
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    with lake.session(home) as con:
        lake.ensure_raw_schema(con)
        assert con.execute("select count(*) from raw.chart_entries").fetchone()[0] == 0
    assert done.exists()
    assert partial.exists()  # young: it could be another process's install in progress
    os.utime(partial, (0, 0))
    lake.install_extensions(home)
    assert not partial.exists()  # an old one is a dead process's: removed
