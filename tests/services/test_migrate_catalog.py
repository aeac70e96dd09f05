"""`chartlake migrate-catalog --to DSN`: a home's SQLite catalog moves onto PostgreSQL with its history."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestration.config import Home
from orchestration.lib import ingest, lake
from orchestration.lib.payload_store import PayloadStore
from tests.conftest import run_chartlake
from tests.services.test_lake_on_services import START, _stage

pytestmark = pytest.mark.slow


def test_migrate_catalog_keeps_snapshots_rows_and_time_travel(tmp_path, postgres_server, monkeypatch, capsys):
    for name in ("CHARTLAKE_LAKE_CATALOG", "CHARTLAKE_LAKE_DATA_PATH"):
        monkeypatch.delenv(name, raising=False)
    home = Home(tmp_path / "home").ensure()
    _stage(home, 2, depth=20)
    with lake.session(home) as con:
        ingest.land_day(con, PayloadStore(home.raw), START, run_id="day1")
        after_day1 = lake.current_snapshot(con)
        ingest.land_day(con, PayloadStore(home.raw), START + dt.timedelta(days=1), run_id="day2")
        con.execute("create table raw.tiny as select 1 as x")  # inlined in the catalog, not a Parquet file
        before = {"snapshots": lake.snapshots(con, limit=1000),
                  "rows": con.execute("select count(*), sum(rank) from raw.chart_entries").fetchone(),
                  "day1": con.execute(f"select count(*) from raw.chart_entries AT (VERSION => {after_day1})").fetchone()}
    dsn = postgres_server.dsn(postgres_server.create_database("migrated"))

    assert run_chartlake(home, "migrate-catalog", "--to", dsn) == 0
    assert "snapshots" in capsys.readouterr().out

    monkeypatch.setenv("CHARTLAKE_LAKE_CATALOG", dsn)
    with lake.session(home, read_only=True) as con:
        assert lake.snapshots(con, limit=1000) == before["snapshots"]
        assert con.execute("select count(*), sum(rank) from raw.chart_entries").fetchone() == before["rows"]
        assert con.execute(f"select count(*) from raw.chart_entries AT (VERSION => {after_day1})").fetchone() == before["day1"]
        assert con.execute("select x from raw.tiny").fetchall() == [(1,)]
    with lake.session(home) as con:  # and it takes new commits
        con.execute("insert into raw.tiny values (2)")
        assert con.execute("select count(*) from raw.tiny").fetchone()[0] == 2
    # The SQLite catalog is untouched, and a second move into a database that holds a lake is refused.
    monkeypatch.delenv("CHARTLAKE_LAKE_CATALOG")
    with lake.session(home, read_only=True) as con:
        assert con.execute("select count(*) from raw.tiny").fetchone()[0] == 1
    assert run_chartlake(home, "migrate-catalog", "--to", dsn) == 2
    assert "already holds a DuckLake catalog" in capsys.readouterr().err
