"""Recorded repeats: positions where a payload listed an app it had already listed higher up.

Google Play's ``list()`` scraper reads the chart page by page and the pages overlap, so one app can come twice
in one chart (PROVENANCE.md of price-of-privacy-play). The parser keeps the app at its first position and drops
the repeat (``ParsedChart.repeats``); this table records each dropped position, so that:

- the raw check knows a chart's gaps in rank are recorded repeats (a warning), not a cut or spliced feed (which
  it quarantines): a chart's positions are its rows plus its recorded repeats;
- row counts reconcile: rows = items in the payload - recorded repeats.

Grain: one row per (payload, chart key, position dropped). Written when a payload is staged, in its own commit
after the registry's, only when there is something to record. No Dagster.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from orchestration.lib import lake

TABLE = "raw.chart_repeats"
COLUMNS = [
    ("payload_sha256", "VARCHAR"), ("store", "VARCHAR"), ("country", "VARCHAR"), ("device", "VARCHAR"),
    ("chart", "VARCHAR"), ("genre_id", "INTEGER"), ("chart_date", "DATE"),
    ("position", "INTEGER"),  # where the repeat was listed (1 = first)
    ("app_id", "VARCHAR"), ("first_rank", "INTEGER"),  # the app's first position: its rank in raw.chart_entries
    ("run_id", "VARCHAR"), ("recorded_at", "TIMESTAMP"),
]


def rows_for(chart, sha256: str) -> list[dict]:
    """The table's rows for one ``ParsedChart``'s repeats (without run id and time)."""
    k = chart.key
    return [{"payload_sha256": sha256, "store": k.store, "country": k.country, "device": k.device,
             "chart": k.chart, "genre_id": k.genre_id, "chart_date": k.chart_date, **r} for r in chart.repeats]


def record(con: duckdb.DuckDBPyConnection, rows: list[dict], *, run_id: str, now: dt.datetime) -> int:
    """Insert repeat rows in one labelled commit (none: no commit). Returns how many were recorded."""
    if not rows:
        return 0
    _ensure(con)
    df = pd.DataFrame([{**r, "run_id": run_id, "recorded_at": now} for r in rows], columns=[c for c, _ in COLUMNS])
    names = ", ".join(c for c, _ in COLUMNS)
    exprs = ", ".join(f"cast({c} as {t}) as {c}" for c, t in COLUMNS)
    con.register("_chartlake_repeats", df)
    con.execute("BEGIN")
    try:
        con.execute(f"INSERT INTO {TABLE} ({names}) SELECT {exprs} FROM _chartlake_repeats")
        lake.set_commit_message(con, f"record {len(df)} repeated chart positions", run_id=run_id, rows=len(df))
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("_chartlake_repeats")
    return len(df)


def read_day(con: duckdb.DuckDBPyConnection, day: dt.date) -> pd.DataFrame:
    """The recorded repeats of one chart date (every column); an empty frame when none were ever recorded."""
    if not _exists(con):
        return pd.DataFrame(columns=[c for c, _ in COLUMNS])
    return con.execute(f"select distinct * exclude (run_id, recorded_at) from {TABLE} where chart_date = ? "
                       "order by store, country, device, chart, genre_id, payload_sha256, position", [day]).df()


def _exists(con) -> bool:
    return bool(con.execute(
        "select count(*) from duckdb_tables() where database_name = ? and schema_name = 'raw' "
        "and table_name = 'chart_repeats'", [lake.LAKE_ALIAS]).fetchone()[0])


def _ensure(con) -> None:
    if _exists(con):
        return
    cols = ", ".join(f"{c} {t}" for c, t in COLUMNS)
    con.execute("BEGIN")
    try:
        con.execute(f"CREATE TABLE IF NOT EXISTS {lake.LAKE_ALIAS}.{TABLE} ({cols})")
        lake.set_commit_message(con, "create raw.chart_repeats")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
