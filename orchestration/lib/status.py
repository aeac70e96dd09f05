"""What the CLI reports about a home, read from the lake: the staged window a run covers, the payloads by status,
the raw rows, the top of one chart. The CLI's verbs only print what these return; no other SQL is in ``cli.py``.

"The current version" of a raw chart is ``raw.payload_versions``'s (``lake.versions_relation``), as everywhere.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from orchestration.lib import lake

MARTS_RANKINGS = "marts.mart_daily_rankings"


def staged_window(con: duckdb.DuckDBPyConnection, first: dt.date,
                  last: dt.date) -> tuple[dt.date | None, dt.date | None, int]:
    """First and last staged chart date within ``[first, last]``, and how many staged dates lie outside it."""
    return con.execute(
        "select min(chart_date) filter (where chart_date between $1 and $2), "
        "max(chart_date) filter (where chart_date between $1 and $2), "
        "count(distinct chart_date) filter (where chart_date not between $1 and $2) "
        "from raw.payloads where status='staged'", [first, last]).fetchone()


def payload_counts(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int, dt.date, dt.date]]:
    """(status, payloads, first chart date, last chart date) per payload status, by status."""
    return con.execute("""
        select status, count(*), min(chart_date), max(chart_date) from raw.payloads group by status order by 1
    """).fetchall()


def failed_payloads(con: duckdb.DuckDBPyConnection, limit: int = 20) -> list[tuple[dt.date, str, str, str]]:
    """(chart date, country, source url, error) of the newest ``limit`` payloads that failed to parse."""
    return con.execute("""
        select chart_date, country, source_url, error from raw.payloads where status='failed'
        order by chart_date desc limit ?""", [limit]).fetchall()


def raw_row_count(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("select count(*) from raw.chart_entries").fetchone()[0]


def top_of_chart(con: duckdb.DuckDBPyConnection, *, country: str, device: str, chart: str, day: dt.date,
                 n: int = 5) -> list[tuple[int, str, str]]:
    """(rank, app name, app id) of the best ``n`` of one overall chart on one day: from the marts once they exist,
    else the current version of the raw chart."""
    has_marts = con.execute(
        "select count(*) from duckdb_tables() where schema_name='marts' and table_name='mart_daily_rankings'"
    ).fetchone()[0]
    rel = MARTS_RANKINGS if has_marts else f"""(
        select e.* from raw.chart_entries e semi join {lake.versions_relation(con)} v
          on v.is_current and v.payload_sha256 = e.payload_sha256 and v.store = e.store and v.country = e.country
          and v.device = e.device and v.chart = e.chart and v.genre_id is not distinct from e.genre_id
          and v.chart_date = e.chart_date)"""
    return con.execute(f"""
        select rank, app_name, app_id from {rel}
        where country=? and device=? and chart=? and chart_date=?
          {"and genre_id is null" if not has_marts else ""}
        order by rank limit ?""", [country, device, chart, day, n]).fetchall()
