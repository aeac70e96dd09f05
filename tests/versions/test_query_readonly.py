"""Issue 17: ``chartlake query`` only reads marts. Every escape of the issue's table (EXPLAIN ANALYZE of a write, two
statements, table functions that read lake or catalog files, other schemas, time travel, PRAGMA/SET/CALL/ATTACH/
COPY...) exits 2 with one line and changes no byte of the lake or the serving file; a runaway query is stopped by
its time limit, its memory limit or Ctrl-C; control characters never reach the terminal raw."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, run_chartlake
from orchestration.config import Home
from orchestration.lib import lake

from versions_fixtures import load, publish, rankings

US = ["741292507", "835599320", "6448311069"]
FR = ["6446901002", "741292507", "1641486558"]
HOSTILE = "\x1b[2J\x9b31mRed\x07Note\nnext line\x7f"


@pytest.fixture(scope="module")
def qhome(tmp_path_factory):
    """Two publishes in a home whose path holds an apostrophe (every ATTACH path must be escaped)."""
    home = Home(tmp_path_factory.mktemp("query") / "analyst's home").ensure()
    with lake.session(home) as con:
        lake.ensure_raw_schema(con)  # what status reads first
    publish(home, load(home, rankings(US, FR), "v1"))
    publish(home, load(home, rankings(US + [HOSTILE], FR), "v2"))
    with lake.session(home) as con:
        # Rows this few stay inlined in the catalog; the escapes need the Parquet files real marts live in.
        con.execute(f"CALL ducklake_flush_inlined_data('{lake.LAKE_ALIAS}')")
    return home


def _state(home: Home) -> tuple:
    """Lake snapshots, every lake data file and the serving file, byte for byte."""
    with lake.session(home, read_only=True) as con:
        snaps = con.execute("select max(snapshot_id), count(*) from snapshots()").fetchone()
    files = {str(p.relative_to(home.root)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(home.lake_files.rglob("*")) if p.is_file()}
    return snaps, files, hashlib.sha256(home.serving_db.read_bytes()).hexdigest()


def _q(value) -> str:
    return str(value).replace("'", "''")


def _escapes(home: Home) -> list[str]:
    parquet = _q(next(home.lake_files.rglob("*.parquet")))
    catalog = _q(home.lake_catalog)
    return [
        f"EXPLAIN ANALYZE COPY (SELECT * REPLACE ('HACKED' AS app_id) FROM mart_daily_rankings) TO '{parquet}' "
        "(FORMAT parquet)",
        "EXPLAIN ANALYZE CREATE TABLE memory.main.t AS SELECT 1",
        "EXPLAIN ANALYZE CALL ducklake_expire_snapshots('at_publish', older_than => now())",
        "EXPLAIN ANALYZE PRAGMA version",
        "explain analyse select 1",
        f"EXPLAIN COPY mart_daily_rankings TO '{parquet}'",
        "select 1; select 2",
        "select count(*) from mart_daily_rankings; drop table mart_daily_rankings",
        f"select * from read_parquet('{parquet}')",
        f"select * from '{parquet}'",
        f"select * from parquet_scan('{parquet}')",
        f"select * from read_blob('{catalog}')",
        f"select * from sqlite_scan('{catalog}', 'ducklake_data_file')",
        "select count(*) from read_text('/etc/hostname')",
        "select * from glob('*')",
        "select * from query('select 1')",
        "with x as (select * from read_csv('/etc/passwd')) select * from x",
        "select (select count(*) from read_json('/etc/hostname')) as n",
        "select * from mart_daily_rankings where app_id in (select content from read_text('/etc/hostname'))",
        "select * from raw.chart_entries",
        "select * from at_publish.raw.chart_entries",
        "select * from mart_daily_rankings at (version => 1)",
        "pragma version",
        "set threads = 1",
        "call ducklake_expire_snapshots('at_publish', older_than => now())",
        "attach ':memory:' as x",
        f"copy mart_daily_rankings to '{parquet}' (format parquet)",
        "create table memory.main.t as select 1",
        "insert into mart_daily_rankings values ('x', 'us', '2025-01-14', 9, 'x')",
        "export database '/tmp/chartlake-export'",
        "pivot mart_daily_rankings on country",
        "load httpfs",
        "checkpoint",
        "use memory",
        "begin",
        "",
    ]


ESCAPES = 36


@pytest.mark.parametrize("index", range(ESCAPES))
def test_every_escape_exits_2_with_one_line_and_writes_nothing(qhome, capsys, index):
    sql = _escapes(qhome)[index]
    before = _state(qhome)
    for as_of in (["--as-of", "1"], []):
        code = run_chartlake(qhome, "query", *as_of, sql)
        err = capsys.readouterr().err
        assert code == 2, (sql, err)
        assert err.startswith("chartlake query: error: ") and err.count("\n") == 1, err
        assert "Traceback" not in err
    assert _state(qhome) == before


def test_every_escape_is_parametrized(qhome):
    assert len(_escapes(qhome)) == ESCAPES


@pytest.mark.parametrize("sql, expected", [
    ("select count(*) from mart_daily_rankings", [[12]]),
    ("from range(3) select sum(range)", [[3]]),
    ("with t as (select * from mart_daily_rankings where rank = 1) select count(*) from t", [[4]]),
    ("select count(*) from (select unnest([1, 2, 3]))", [[3]]),
    ("select count(*) from mart_daily_rankings where app_id in (select app_id from mart_daily_rankings "
     "where country = 'fr')", [[8]]),  # fr: 6 rows; us: RedNote on 2 days
    ("select column_name from (describe mart_daily_rankings) order by 1 limit 1", [["app_id"]]),
])
def test_plain_reads_run(qhome, capsys, sql, expected):
    assert run_chartlake(qhome, "query", "--as-of", "1", "--format", "json", sql) == 0
    assert [list(r.values()) for r in json.loads(capsys.readouterr().out)] == expected


def test_plain_explain_runs_and_shows_a_plan(qhome, capsys):
    assert run_chartlake(qhome, "query", "--as-of", "1", "explain select count(*) from mart_daily_rankings") == 0
    out = capsys.readouterr().out
    assert "physical_plan" in out


def test_show_tables_lists_the_marts_of_the_current_file(qhome, capsys):
    assert run_chartlake(qhome, "query", "--format", "csv", "show tables") == 0
    assert set(capsys.readouterr().out.split()) == {"name", "dim_countries", "mart_daily_rankings", "publish_log",
                                                    "quarantine"}


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_control_characters_are_escaped_in_every_format(qhome, capsys, fmt):
    sql = "select app_id, app_id as \"col\x1b[1m\" from mart_daily_rankings where rank = 4 and country = 'us' limit 1"
    assert run_chartlake(qhome, "query", "--format", fmt, sql) == 0
    out = capsys.readouterr().out
    assert not any(ch in out for ch in "\x1b\x9b\x07\x7f"), repr(out)
    if fmt == "json":
        assert json.loads(out)[0]["app_id"] == HOSTILE  # escaped, and still exactly the value
    else:
        assert "\\x1b[2J\\x9b31mRed\\x07Note\\nnext line\\x7f" in out and "col\\x1b[1m" in out


def test_status_and_query_work_on_a_home_with_an_apostrophe(qhome, capsys):
    assert "'" in str(qhome.root)
    assert run_chartlake(qhome, "status") == 0
    assert "last publish #2" in capsys.readouterr().out
    for as_of in (["--as-of", "1"], []):
        assert run_chartlake(qhome, "query", *as_of, "--format", "csv", "select count(*) as n from dim_countries") == 0
        assert capsys.readouterr().out.split() == ["n", "2"]


def test_a_query_past_its_time_limit_is_interrupted(qhome, capsys):
    start = time.monotonic()
    code = run_chartlake(qhome, "query", "--timeout", "1", "select count(*) from range(100000000000000)")
    err = capsys.readouterr().err
    assert code == 2 and "time limit of 1 s" in err and err.count("\n") == 1, err
    assert time.monotonic() - start < 15


def test_a_query_past_its_memory_limit_stops(qhome, capsys):
    start = time.monotonic()
    code = run_chartlake(qhome, "query", "--as-of", "1", "--memory-limit", "100MB", "--timeout", "120",
                         "select count(*) from (select distinct range from range(3000000000))")
    err = capsys.readouterr().err
    assert code == 2 and "more memory than its limit" in err and err.count("\n") == 1, err
    assert time.monotonic() - start < 100


@pytest.mark.parametrize("value", ["0", "-1", "nan", "soon"])
def test_a_bad_timeout_is_a_usage_error(qhome, capsys, value):
    with pytest.raises(SystemExit) as exc:
        run_chartlake(qhome, "query", "--timeout", value, "select 1")
    assert exc.value.code == 2 and "not a positive number of seconds" in capsys.readouterr().err


def test_a_bad_memory_limit_is_one_line(qhome, capsys):
    assert run_chartlake(qhome, "query", "--memory-limit", "banana", "select 1") == 2
    err = capsys.readouterr().err
    assert "--memory-limit 'banana'" in err and err.count("\n") == 1


def test_ctrl_c_interrupts_a_running_query(qhome):
    env = {**os.environ, "PYTHONPATH": str(REPO), "CHARTLAKE_HOME": str(qhome.root)}
    proc = subprocess.Popen([sys.executable, "-m", "orchestration.cli", "query",
                             "select count(*) from range(100000000000000)"],
                            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Ready when the query's session has the serving file open (its private link, see serving_file).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            fds = Path(f"/proc/{proc.pid}/fd")
            try:
                if any("chartlake.duckdb" in os.readlink(fd) for fd in fds.iterdir()):
                    break
            except OSError:
                pass
            time.sleep(0.05)
        time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, err
    assert time.monotonic() - sent < 10
    assert "interrupted (Ctrl-C)" in err and err.count("\n") == 1 and "Traceback" not in err
