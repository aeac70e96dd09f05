"""Reading the lake for the audits, and the one quarantine store.

Every reader of "the current version of a chart" goes through ``lake.payload_versions`` (``raw.payload_versions``):
the raw check and its history, the raw asset's top-10 preview, landing's summary, the CLI. The quarantine of a chart
date lives in ``raw.quarantined_payloads``, written by the ``raw/quarantined_payloads`` asset only: staging never
reads a quarantined payload as current, and publish holds back what each entry names (``HeldBack.scope``): one
chart when its key is known, else the store's or the whole country-day; their last good published rows stay.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import astuple, dataclass
from typing import Sequence

import duckdb
import pandas as pd

from orchestration.lib import lake

CHART_KEY = "store, country, device, chart, genre_id, chart_date"
# The chart-key fields each scope names (publish holds back exactly these, with country and day).
SCOPE_KEYS = {"chart": ("store", "device", "chart", "genre_id"), "store": ("store",), "country": ()}
SCOPES = tuple(SCOPE_KEYS)


def what_held(entry) -> str:
    """What an entry (``HeldBack`` or a ``quarantine_entries`` row) names beyond its country and day:
    ``apple/iphone/top-free`` (a genre id after it), ``google_play`` for a store's day, "" for the whole day."""
    get = entry.get if isinstance(entry, dict) else lambda k: getattr(entry, k)
    return "/".join(str(get(k)) for k in SCOPE_KEYS[get("scope") or "country"] if get(k) is not None)


@dataclass(frozen=True)
class HeldBack:
    """One entry of the quarantine store: what a payload (or a failure naming none) holds back on its chart date.

    ``scope`` says how much: ``chart`` the chart key (store, device, chart, genre_id; a null genre is the overall
    chart), ``store`` that store's charts of the country-day, ``country`` the country-day. ``of_known`` picks the
    narrowest scope the known fields allow: a bad Play chart never holds back Apple's charts, nor a bad chart its
    neighbours.
    """

    country: str | None
    payload_sha256: str | None
    reason: str
    store: str | None = None
    device: str | None = None
    chart: str | None = None
    genre_id: int | None = None
    scope: str = "country"

    def __post_init__(self):
        if self.scope not in SCOPES:
            raise ValueError(f"quarantine scope {self.scope!r} is not one of {SCOPES}")

    @classmethod
    def of_known(cls, country, payload_sha256, reason, *, store=None, device=None, chart=None,
                 genre_id=None) -> "HeldBack":
        """The narrowest entry these fields allow. Without a known device and chart name, the store's
        country-day. A known chart's null genre id is its overall chart, as in the chart key."""
        store, device, chart, genre_id = (None if v is None or pd.isna(v) else v
                                          for v in (store, device, chart, genre_id))
        if store and device and chart:
            return cls(country, payload_sha256, reason, store, device, chart,
                       None if genre_id is None else int(genre_id), "chart")
        if store:
            return cls(country, payload_sha256, reason, store, scope="store")
        return cls(country, payload_sha256, reason)


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
    cur = con.execute("""select store, country, device, chart, genre_id, source_url, payload_sha256, error
                         from raw.payloads
                         where status = 'failed' and chart_date = ? order by country, source_url""", [day])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def record_quarantine(con: duckdb.DuckDBPyConnection, day: dt.date, held: Sequence[HeldBack],
                      run_id: str) -> int | None:
    """Replace the day's quarantine with the ``held`` entries in one labelled commit.

    A payload that broke the raw suite is never current; an entry without a payload (a payload that did not
    parse, a fetch that failed, a suite that could not run) only holds its scope back at publish.
    Returns the lake snapshot of the commit."""
    from orchestration.lib.payload_store import utcnow

    now = utcnow()
    con.execute("BEGIN")
    try:
        con.execute("delete from raw.quarantined_payloads where chart_date = ?", [day])
        if held:
            frame = pd.DataFrame([astuple(e) for e in held],
                                 columns=["country", "payload_sha256", "reason", "store", "device", "chart",
                                          "genre_id", "scope"]).astype({"genre_id": "Int64"})
            con.register("_quarantine_batch", frame)
            con.execute("""insert into raw.quarantined_payloads
                             (chart_date, country, payload_sha256, reason, run_id, checked_at,
                              store, device, chart, genre_id, scope)
                           select ?, country, payload_sha256, reason, ?, ?, store, device, chart, genre_id, scope
                           from _quarantine_batch""", [day, run_id, now])
            con.unregister("_quarantine_batch")
        lake.set_commit_message(con, f"quarantine {day.isoformat()}", asset="raw/quarantined_payloads",
                                check="raw_chart_quality", partition=day.isoformat(), run_id=run_id,
                                entries=len(held))
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return lake.current_snapshot(con)


def quarantine_entries(con: duckdb.DuckDBPyConnection, day: dt.date | None = None) -> list[dict]:
    """The quarantine store, one entry per thing held back (``HeldBack``: its scope and key, reasons and payloads
    joined), oldest day first; only ``day``'s when given. Rows from before per-chart quarantine (no scope) hold
    back their country-day. Entries without a country (a suite that could not run at all) are listed too."""
    cur = con.execute(f"""
        with q as (
            select *, coalesce(scope, 'country') as held_scope from raw.quarantined_payloads
            {"where chart_date = ?" if day else ""}
        )
        select chart_date, country, held_scope as scope,
               case when held_scope <> 'country' then store end as store,
               case when held_scope = 'chart' then device end as device,
               case when held_scope = 'chart' then chart end as chart,
               case when held_scope = 'chart' then genre_id end as genre_id,
               string_agg(distinct reason, '; ' order by reason) as reason,
               string_agg(distinct payload_sha256, ',' order by payload_sha256) as payload_sha256,
               max(run_id) as run_id, max(checked_at) as checked_at
        from q
        group by all
        order by chart_date, country nulls first, store nulls first, device nulls first, chart nulls first,
                 genre_id nulls first""", [day] if day else [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]
