"""Reading the lake for the audits, and the one quarantine store.

Every reader of "the current version of a chart" goes through ``lake.payload_versions`` (``raw.payload_versions``):
the raw check and its history, the raw asset's top-10 preview, landing's summary, the CLI. The quarantine of a chart
date lives in ``raw.quarantined_payloads``, written by the ``raw/quarantined_payloads`` asset only: staging never
reads a quarantined payload as current, and publish holds back the country-days listed there (their last good
published rows stay).
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence

import duckdb
import pandas as pd

from orchestration.lib import lake

CHART_KEY = "store, country, device, chart, genre_id, chart_date"


def current_raw_rows(con: duckdb.DuckDBPyConnection, day: dt.date, days_before: int = 0,
                     columns: Sequence[str] | None = None, *, newest: bool = False) -> pd.DataFrame:
    """Raw rows of the current payload version of every chart in ``[day - days_before, day]``; all columns, or
    only ``columns`` (a week of history at 50 storefronts is ~3x smaller with the few a check needs).

    ``newest``: the newest version of each chart whether or not it is quarantined: what the raw check judges (it
    must keep judging a payload it quarantined before, or a re-run would release it)."""
    selected = ", ".join(f"e.{c}" for c in columns) if columns else "e.*"
    chosen = "v.version_rank = 1" if newest else "v.is_current"
    return con.execute(f"""
        select {selected} from raw.chart_entries e
        join {lake.versions_relation(con)} v on v.payload_sha256 = e.payload_sha256 and {chosen}
          and v.store = e.store and v.country = e.country and v.device = e.device and v.chart = e.chart
          and v.genre_id is not distinct from e.genre_id and v.chart_date = e.chart_date
        where e.chart_date between ? and ?
        order by e.country, e.device, e.chart, e.genre_id, e.rank""",
        [day - dt.timedelta(days=days_before), day]).df()


def failed_payloads(con: duckdb.DuckDBPyConnection, day: dt.date) -> list[dict]:
    cur = con.execute("""select country, device, chart, source_url, payload_sha256, error from raw.payloads
                         where status = 'failed' and chart_date = ? order by country, source_url""", [day])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def record_quarantine(con: duckdb.DuckDBPyConnection, day: dt.date, entries: list[tuple[str | None, str | None, str]],
                      run_id: str) -> int | None:
    """Replace the day's quarantine with ``(country, payload_sha256, reason)`` entries in one labelled commit.

    A payload that broke the raw suite is never current; an entry without a payload (a payload that did not
    parse, a fetch that failed, a suite that could not run) only holds its country-day back at publish.
    Returns the lake snapshot of the commit."""
    from orchestration.lib.payload_store import utcnow

    now = utcnow()
    con.execute("BEGIN")
    try:
        con.execute("delete from raw.quarantined_payloads where chart_date = ?", [day])
        if entries:
            frame = pd.DataFrame(entries, columns=["country", "payload_sha256", "reason"])
            con.register("_quarantine_batch", frame)
            con.execute("""insert into raw.quarantined_payloads
                           select ?, country, payload_sha256, reason, ?, ? from _quarantine_batch""", [day, run_id, now])
            con.unregister("_quarantine_batch")
        lake.set_commit_message(con, f"quarantine {day.isoformat()}", asset="raw/quarantined_payloads",
                                check="raw_chart_quality", partition=day.isoformat(), run_id=run_id,
                                entries=len(entries))
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return lake.current_snapshot(con)


def quarantine_entries(con: duckdb.DuckDBPyConnection, day: dt.date | None = None) -> list[dict]:
    """The quarantine store, one entry per country-day (reasons and payloads joined), oldest day first; only
    ``day``'s when given. Entries without a country (a suite that could not run at all) are listed too."""
    cur = con.execute(f"""
        select chart_date, country, string_agg(distinct reason, '; ' order by reason) as reason,
               string_agg(distinct payload_sha256, ',' order by payload_sha256) as payload_sha256,
               max(run_id) as run_id, max(checked_at) as checked_at
        from raw.quarantined_payloads {"where chart_date = ?" if day else ""}
        group by chart_date, country order by chart_date, country nulls first""", [day] if day else [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]
