"""Helpers of the writer and fault-trial tests: real ``chartlake`` processes on real homes, and what to compare."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb

from orchestration.config import Home
from orchestration.lib import lake
from orchestration.lib.versions import content_hash

REPO = Path(__file__).resolve().parents[2]
CHARTLAKE = Path(sys.executable).parent / "chartlake"
# Columns that say when and by which run a row was loaded: they differ between two homes fed the same payloads.
VOLATILE = {"fetched_at", "run_id", "ingested_at"}
MARTS = ("fct_chart_entries", "mart_daily_rankings", "mart_daily_country_summary", "mart_breakouts", "dim_apps",
         "dim_countries")
RAW_KEY = "store, country, device, chart, genre_id, chart_date, rank, payload_sha256"


def start(home: Home, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``chartlake --home HOME ARGS`` in its own process group (so a kill takes its children, dbt included)."""
    return subprocess.Popen([str(CHARTLAKE), "--home", str(home.root), *args], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO), "CHARTLAKE_HOME": str(home.root),
                                 **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def run(home: Home, *args: str, timeout: float = 900, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess:
    proc = start(home, *args, env=env)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def mart_hashes(home: Home) -> dict[str, tuple[int, str]]:
    """(rows, content hash) of each published mart, without the load-time columns."""
    con = duckdb.connect(str(home.serving_db), read_only=True)
    try:
        out = {}
        for mart in MARTS:
            cols = [c for (c,) in con.execute(
                "select column_name from duckdb_columns() where schema_name = 'analytics' and table_name = ? "
                "order by column_index", [mart]).fetchall() if c not in VOLATILE]
            out[mart] = content_hash(con, f"analytics.{mart}", cols)
        return out
    finally:
        con.close()


def raw_counts(home: Home) -> tuple[int, int]:
    """(raw rows, rows beyond the first of their chart key x rank x payload): the second must be 0."""
    with lake.session(home, read_only=True) as con:
        rows = con.execute("select count(*) from raw.chart_entries").fetchone()[0]
        dups = con.execute(f"select coalesce(sum(n - 1), 0) from (select count(*) n from raw.chart_entries "
                           f"group by {RAW_KEY})").fetchone()[0]
    return int(rows), int(dups)
