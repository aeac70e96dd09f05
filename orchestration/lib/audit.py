"""Reading the lake for the audits: a day's current raw rows and its history, and the quarantine file.

The quarantine of a chart date is written by the raw check as ``quality/raw/<date>/quarantine.json`` and read by
publish: a country-day listed there is not published (its last good published rows stay).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Sequence

import duckdb
import pandas as pd

from orchestration.config import Home

CHART_KEY = "store, country, device, chart, genre_id, chart_date"


def current_raw_rows(con: duckdb.DuckDBPyConnection, day: dt.date, days_before: int = 0,
                     columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Raw rows of the current payload version of every chart in ``[day - days_before, day]``; all columns, or
    only ``columns`` (a week of history at 50 storefronts is ~3x smaller with the few a check needs)."""
    selected = ", ".join(f"e.{c}" for c in columns) if columns else "e.*"
    return con.execute(f"""
        with versions as (
            select {CHART_KEY}, payload_sha256,
                   row_number() over (partition by {CHART_KEY}
                       order by max(fetched_at) desc, max(ingested_at) desc, payload_sha256 desc) as rn
            from raw.chart_entries where chart_date between ? and ?
            group by {CHART_KEY}, payload_sha256)
        select {selected} from raw.chart_entries e
        join versions v on v.payload_sha256 = e.payload_sha256 and v.rn = 1
          and v.store = e.store and v.country = e.country and v.device = e.device and v.chart = e.chart
          and v.genre_id is not distinct from e.genre_id and v.chart_date = e.chart_date
        order by e.country, e.device, e.chart, e.genre_id, e.rank""",
        [day - dt.timedelta(days=days_before), day]).df()


def failed_payloads(con: duckdb.DuckDBPyConnection, day: dt.date) -> list[dict]:
    cur = con.execute("""select country, device, chart, source_url, payload_sha256, error from raw.payloads
                         where status = 'failed' and chart_date = ? order by country, source_url""", [day])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def quarantine_path(home: Home, day: dt.date) -> Path:
    return home.quality / "raw" / day.isoformat() / "quarantine.json"


def write_quarantine(home: Home, day: dt.date, entries: list[dict], run_id: str) -> Path:
    path = quarantine_path(home, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"chart_date": day.isoformat(), "run_id": run_id, "entries": entries},
                              indent=1, default=str))
    tmp.replace(path)
    return path


def read_quarantine(home: Home, day: dt.date) -> dict | None:
    path = quarantine_path(home, day)
    return json.loads(path.read_text()) if path.exists() else None


def record_quarantine(con: duckdb.DuckDBPyConnection, day: dt.date, payloads: list[tuple[str, str, str]],
                      run_id: str) -> None:
    """Replace the day's quarantined payloads ``(country, payload_sha256, reason)`` in one labelled commit."""
    from orchestration.lib import lake
    from orchestration.lib.payload_store import utcnow

    now = utcnow()
    con.execute("BEGIN")
    try:
        con.execute("delete from raw.quarantined_payloads where chart_date = ?", [day])
        for country, sha, reason in payloads:
            con.execute("insert into raw.quarantined_payloads values (?, ?, ?, ?, ?, ?)",
                        [day, country, sha, reason, run_id, now])
        lake.set_commit_message(con, f"quarantine {day.isoformat()}", asset="raw/chart_entries",
                                check="raw_chart_quality", partition=day.isoformat(), run_id=run_id,
                                payloads=len(payloads))
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
