"""The lake on a shared PostgreSQL catalog with its files on an S3-compatible store, both real servers (conftest).

- the demo slice gives the same marts there as on the home's SQLite catalog and local files;
- parallel landers (separate processes, one commit per day) lose nothing and duplicate nothing, while a reader only
  ever sees whole snapshots;
- a lander killed with SIGKILL inside its commit leaves a consistent catalog, and the re-run completes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestration.config import DBT_PROJECT_DIR, Home
from orchestration.lib import ingest, lake
from orchestration.lib.payload_store import store_for
from orchestration.lib.versions import content_hash
from orchestration import demo
from orchestration.demo import play as demo_play
from tests.conftest import run_chartlake

pytestmark = pytest.mark.slow

LANDER = Path(__file__).with_name("lander.py")
START = dt.date(2025, 1, 1)
# Lineage of the run itself (which run, when it ran, and the imported file's path under its home): differs between
# any two homes, whatever the catalog.
RUN_COLUMNS = {"run_id", "ingested_at", "fetched_at", "registered_at", "checked_at", "source_url"}
CHART_KEY = "store, country, device, chart, genre_id, chart_date"


def _stage(home: Home, days: int, countries=("us", "fr"), depth: int = 40) -> int:
    """Generate and stage ``days`` days of demo payloads; the number of chart rows they hold."""
    out = home.root / "demo_payloads"
    demo.generate(out, start=START, end=START + dt.timedelta(days=days - 1), countries=countries, depth=depth)
    with lake.session(home) as con:
        results = ingest.stage_files(con, store_for(home), [out], run_id="stage")
    assert not [r for r in results if r.status == "failed"]
    return sum(r.entry_count for r in results if r.status == "staged")


def _lander(home: Home, days: list[dt.date], *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(LANDER), str(home.root), ",".join(d.isoformat() for d in days),
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})


def _duplicates(con) -> list[tuple]:
    return con.execute(f"""select {CHART_KEY}, payload_sha256, rank, count(*) from raw.chart_entries
                           group by all having count(*) > 1 limit 5""").fetchall()


def _totals_per_snapshot(con) -> dict[int, int]:
    totals = {}
    for (snap,) in con.execute("select snapshot_id from lake.snapshots() order by 1").fetchall():
        try:
            totals[snap] = con.execute(f"select count(*) from raw.chart_entries AT (VERSION => {snap})").fetchone()[0]
        except Exception:  # before the table existed
            continue
    return totals


def test_parallel_landers_lose_and_duplicate_nothing_and_readers_see_whole_snapshots(service_lake):
    home, days = service_lake.home, [START + dt.timedelta(days=i) for i in range(30)]
    expected = _stage(home, len(days))
    observed: list[int] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader():
        try:
            with lake.session(home, read_only=True) as con:
                while not stop.is_set():
                    observed.append(con.execute("select count(*) from raw.chart_entries").fetchone()[0])
                    time.sleep(0.05)
        except BaseException as exc:  # reported by the test, not swallowed by the thread
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        procs = [_lander(home, days[i::4]) for i in range(4)]
        outs = [p.communicate(timeout=600) for p in procs]
    finally:
        stop.set()
        thread.join(60)
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    assert not errors, errors
    with lake.session(home, read_only=True) as con:
        assert con.execute("select count(*) from raw.chart_entries").fetchone()[0] == expected
        assert _duplicates(con) == []
        assert con.execute(f"select count(distinct ({CHART_KEY})) from raw.chart_entries").fetchone()[0] == 30 * 2 * 6
        landed = [m for (m,) in con.execute("select commit_message from lake.snapshots() "
                                             "where commit_message like 'land %'").fetchall()]
        assert sorted(landed) == sorted(f"land {d.isoformat()}" for d in days)  # one append commit per day
        totals = _totals_per_snapshot(con)
    # Every count a reader saw is the committed total of some snapshot, and it never went backwards.
    assert set(observed) <= set(totals.values()), sorted(set(observed) - set(totals.values()))
    assert observed == sorted(observed)
    assert len(set(observed)) >= 3, f"the reader saw too few states to tell anything: {sorted(set(observed))}"


@pytest.mark.parametrize("delay", [-1.0, 0.0, 0.02, 0.1])
def test_a_lander_killed_mid_commit_leaves_the_catalog_consistent(service_lake, postgres_server, delay):
    home, days = service_lake.home, [START + dt.timedelta(days=i) for i in range(2)]
    expected = _stage(home, len(days))
    per_day = expected // 2
    ready = home.root / "in-commit"
    killed = _lander(home, days[:1], "--die-after-insert", "--die-delay", str(delay), "--ready-file", str(ready))
    _, err = killed.communicate(timeout=300)
    assert killed.returncode == -9, err[-2000:]
    assert ready.read_text() == f"land {days[0].isoformat()}"  # it died inside the day's transaction
    # The server dropped the dead client's session: nothing is left holding a transaction open.
    deadline = time.time() + 30
    while postgres_server.query(service_lake.database, "select count(*) from pg_stat_activity where datname = "
                                f"'{service_lake.database}' and state like 'idle in transaction%'")[0][0]:
        assert time.time() < deadline, "a dead lander's transaction stayed open"
        time.sleep(0.2)
    with lake.session(home, read_only=True) as con:
        # All or nothing, and every file the catalog references can be read.
        n, _ = con.execute("select count(*), sum(hash(app_id, rank)) from raw.chart_entries").fetchone()
        assert n in (0, per_day)
    rerun = _lander(home, days)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-3000:]
    with lake.session(home, read_only=True) as con:
        assert con.execute("select count(*) from raw.chart_entries").fetchone()[0] == expected
        assert _duplicates(con) == []
    with lake.session(home) as con:  # and the catalog still takes writes
        assert ingest.land_day(con, store_for(home), days[0], run_id="again").rows_inserted == 0


def _mart_hashes(home: Home) -> dict[str, tuple[int, str]]:
    with lake.session(home, read_only=True) as con:
        tables = [t for (t,) in con.execute("select table_name from duckdb_tables() where database_name = 'lake' "
                                            "and schema_name = 'marts' order by 1").fetchall()]
        out = {}
        for t in tables:
            cols = [c for (c,) in con.execute("select column_name from duckdb_columns() where database_name = 'lake' "
                                              "and schema_name = 'marts' and table_name = ?", [t]).fetchall()]
            out[t] = content_hash(con, f"marts.{t}", sorted(set(cols) - RUN_COLUMNS))
    return out


def _dbt_show(sql: str, home: Home) -> list[dict]:
    """The plain dbt CLI (`dbt show`), with nothing but the environment telling it where the lake is."""
    dbt = Path(sys.executable).parent / "dbt"
    proc = subprocess.run([str(dbt), "show", "--inline", sql, "--output", "json", "--quiet",
                           "--target-path", str(home.root / "dbt_target"), "--log-path", str(home.root / "dbt_logs")],
                          cwd=DBT_PROJECT_DIR, env={**os.environ, "CHARTLAKE_HOME": str(home.root)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return json.loads(proc.stdout[proc.stdout.index("{"):])["show"]


DEMO_SLICE = ("demo", "--countries", "us,fr", "--start", "2025-01-13", "--end", "2025-01-15", "--depth", "20")


def test_demo_slice_on_postgres_and_s3_gives_the_marts_of_sqlite_and_local_files(service_lake, s3_server, monkeypatch,
                                                                                   tmp_path):
    shared = service_lake.home
    # No parse kept from staging to landing: every landed row is read back from the raw store on S3.
    monkeypatch.setenv("CHARTLAKE_PARSE_CACHE_ROWS", "0")
    assert run_chartlake(shared, *DEMO_SLICE) == 0
    on_services = _mart_hashes(shared)
    # Nothing went to the home's default places: the catalog is in Postgres, the files and payloads in the bucket.
    assert not shared.lake_catalog.exists() and not list(shared.lake_files.rglob("*.parquet"))
    assert not [p for p in shared.raw.rglob("*") if p.is_file()]
    keys = s3_server.keys(service_lake.bucket)
    assert any(k.startswith("lake/") and k.endswith(".parquet") for k in keys)
    with lake.session(shared, read_only=True) as con:
        staged = {h for (h,) in con.execute("select distinct payload_sha256 from raw.payloads "
                                                 "where payload_sha256 is not null").fetchall()}
        landed = {h for (h,) in con.execute("select distinct payload_sha256 from raw.chart_entries").fetchall()}
    assert landed and landed <= staged
    assert {k for k in keys if k.startswith("raw/")} == \
        {f"raw/{h[:2]}/{h}.{suffix}" for h in staged for suffix in ("payload.zst", "meta.json")}
    # The plain dbt CLI, configured by the same variables, reads the same lake Dagster's run wrote.
    with lake.session(shared, read_only=True) as con:
        python_side = con.execute("select count(*), sum(rank) from marts.mart_daily_rankings").fetchone()
    (row,) = _dbt_show("select count(*) as n, sum(rank) as s from lake.marts.mart_daily_rankings", shared)
    assert (row["n"], row["s"]) == python_side

    for name in service_lake.env:
        monkeypatch.delenv(name)
    local = Home(tmp_path / "local").ensure()
    assert run_chartlake(local, *DEMO_SLICE) == 0
    assert local.lake_catalog.exists()
    on_sqlite = _mart_hashes(local)
    assert set(on_sqlite) >= {"fct_chart_entries", "mart_daily_rankings", "mart_daily_country_summary",
                              "mart_breakouts", "dim_apps", "dim_countries"}
    # countries x days x (Apple's 6 charts + Google Play's, both demoed for us and fr) x depth
    assert on_sqlite["mart_daily_rankings"][0] == 2 * 3 * (6 + len(demo_play.CHARTS)) * 20 == 1080
    assert on_services == on_sqlite
