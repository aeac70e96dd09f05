"""Helpers for the dbt tests: synthetic raw rows, a temporary home to run dbt on, and lake comparison.

The synthetic month (2025-01-01 .. 2025-01-31) is small but exercises the logic the marts exist for:
- RedNote (741292507) surges from outside the US chart (#55 on Jan 12, #8 on Jan 13, #1 on Jan 14-16) and
  from outside the French chart (absent until Jan 13, #9 on Jan 14): two breakouts a day apart;
- its US name changes from "Xiaohongshu" to "RedNote" on Jan 14 (name history in dim_apps);
- TikTok leaves the US chart on Jan 18-19 and re-enters on Jan 20 (exit, re-entry across a gap);
- TikTok, ChatGPT, Instagram and Temu are overtaken in the US on Jan 14 by RedNote, #8 the day before;
- the French chart of Jan 10 has three payload versions: the correction fetched last must win over
  the original and over a version fetched earlier but ingested later;
- the GB chart was not captured on Jan 25 (the previous chart day of Jan 26 is Jan 24).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from orchestration.config import DBT_PROJECT_DIR, Home
from orchestration.lib import lake
from orchestration.sources.canonical import RAW_COLUMNS

START = dt.date(2025, 1, 1)
DAYS = 31
CHART_SIZE = 60

REDNOTE = "741292507"
TIKTOK = "835599320"
INSTAGRAM = "389801252"
WHATSAPP = "310633997"
CHATGPT = "6448311069"
YOUTUBE = "544007664"
TEMU = "1641486558"
# Heavyweights near the top of every chart, in this order.
HEAVYWEIGHTS = [(TIKTOK, "TikTok"), (CHATGPT, "ChatGPT"), (INSTAGRAM, "Instagram"), (WHATSAPP, "WhatsApp"),
                (YOUTUBE, "YouTube"), (TEMU, "Temu")]
CHARTS = [("us", "iphone"), ("fr", "iphone"), ("gb", "iphone"), ("us", "ipad")]


def day(n: int) -> dt.date:
    """2025-01-<n>."""
    return dt.date(2025, 1, n)


def _filler(country: str, device: str, d: dt.date) -> list[tuple[str, str]]:
    """A slowly drifting pool of 70 ordinary apps, of which the chart shows the best."""
    rng = random.Random(f"{country}/{device}/{d.isoformat()}")
    scored = [(i + rng.uniform(-4, 4), f"10000{i:02d}", f"Filler {i:02d}") for i in range(70)]
    return [(app_id, name) for _, app_id, name in sorted(scored)]


def _placements(country: str, device: str, d: dt.date) -> dict[str, tuple[int, str] | None]:
    """Special apps: app_id -> (rank, name) to force, or None to remove from the chart that day."""
    out: dict[str, tuple[int, str] | None] = {}
    n = d.day
    if country == "us":
        us_rednote = {12: 55, 13: 8, 14: 1, 15: 1, 16: 1, 17: 3, 18: 6, 19: 12, 20: 25, 21: 40}
        if n in us_rednote:
            name = "Xiaohongshu" if n < 14 else "RedNote"
            out[REDNOTE] = (us_rednote[n], name)
        if device == "iphone" and n in (18, 19):
            out[TIKTOK] = None
    if country == "fr" and device == "iphone":
        fr_rednote = {14: 9, 15: 4, 16: 4, 17: 7, 18: 15}
        if n in fr_rednote:
            out[REDNOTE] = (fr_rednote[n], "RedNote")
    if country == "gb" and device == "iphone" and n == 20:
        out[REDNOTE] = (40, "RedNote")
    return out


def chart_apps(country: str, device: str, d: dt.date) -> list[tuple[str, str]]:
    """The ranked (app_id, name) list of one chart on one day."""
    apps = list(HEAVYWEIGHTS) + _filler(country, device, d)
    placements = _placements(country, device, d)
    apps = [a for a in apps if a[0] not in placements]
    for app_id, placed in sorted(placements.items(), key=lambda kv: kv[1][0] if kv[1] else 0):
        if placed is not None:
            rank, name = placed
            apps.insert(rank - 1, (app_id, name))
    return apps[:CHART_SIZE]


def _rows(country, device, d, apps, *, fetched_at, ingested_at, tag="") -> list[tuple]:
    sha = hashlib.sha256(f"{country}/{device}/{d}/{tag}/{apps}".encode()).hexdigest()
    rows = []
    for rank, (app_id, name) in enumerate(apps, start=1):
        rows.append((
            "apple", country, device, "top-free", None, d, rank, app_id,
            # Raw names may carry stray whitespace: staging trims them.
            f" {name} " if rank % 7 == 0 else name,
            f"Dev {app_id}", f"dev{app_id}", "Social Networking", dt.date(2020, 1, 1), 0, "USD",
            f"https://apps.apple.com/{country}/app/id{app_id}",
            sha, f"https://example.test/{country}/{device}/{d}", "synthetic", fetched_at,
            "test-run", ingested_at, fetched_at,  # captured when fetched, as a fetch is
        ))
    return rows


def synthetic_rows() -> list[tuple]:
    """All raw rows of the synthetic month, in RAW_COLUMNS order."""
    rows: list[tuple] = []
    for i in range(DAYS):
        d = START + dt.timedelta(days=i)
        noon = dt.datetime.combine(d, dt.time(12))
        for country, device in CHARTS:
            if country == "gb" and d == day(25):
                continue
            apps = chart_apps(country, device, d)
            if country == "fr" and device == "iphone" and d == day(10):
                # Three versions of one chart key. The correction (fetched last) must win; the version
                # fetched first but ingested last must not.
                original = [("999001", "Glitched App")] + apps[:-1]
                early = [("999002", "Early Glitch")] + apps[:-1]
                rows += _rows(country, device, d, original, fetched_at=noon, ingested_at=noon, tag="original")
                rows += _rows(country, device, d, early, fetched_at=noon - dt.timedelta(hours=3),
                              ingested_at=noon + dt.timedelta(days=2), tag="early")
                rows += _rows(country, device, d, apps, fetched_at=noon + dt.timedelta(hours=1),
                              ingested_at=noon + dt.timedelta(hours=1), tag="correction")
                continue
            rows += _rows(country, device, d, apps, fetched_at=noon, ingested_at=noon)
    return rows


def load_raw(home: Home, rows: list[tuple]) -> None:
    """Create the raw schema in ``home``'s lake and insert ``rows`` in one snapshot."""
    lake.install_extensions(home)
    with lake.session(home) as con:
        lake.ensure_raw_schema(con)
        # A DataFrame scan: executemany would insert row by row (seconds per thousand rows).
        frame = pd.DataFrame(rows, columns=[name for name, _ in RAW_COLUMNS])
        casts = ", ".join(f"cast(frame.{name} as {typ}) as {name}" for name, typ in RAW_COLUMNS)
        con.execute("BEGIN")
        con.execute(f"insert into lake.raw.chart_entries select {casts} from frame")
        lake.set_commit_message(con, "synthetic raw rows for dbt tests", rows=len(rows))
        con.execute("COMMIT")


@dataclass
class DbtHome:
    """A temporary chartlake home with its own copy of dbt's target/ and logs."""

    home: Home
    target: Path

    def dbt(self, *args: str, check: bool = True, window: tuple[dt.date, dt.date] | None = None):
        """Run dbt in-process against this home. CHARTLAKE_HOME is set only for the call; ``window`` is the
        chart-date window handed over as Dagster does (the environment, not --vars)."""
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
        from dbt.cli.main import dbtRunner

        from orchestration.defs.dbt.assets import WINDOW_ENV

        cli = [
            *args,
            "--project-dir", str(DBT_PROJECT_DIR),
            "--profiles-dir", str(DBT_PROJECT_DIR),
            "--target-path", str(self.target),
        ]
        env = {"CHARTLAKE_HOME": str(self.home.root), "DBT_LOG_PATH": str(self.target / "logs")}
        if window:
            env.update({WINDOW_ENV["min_date"]: window[0].isoformat(), WINDOW_ENV["max_date"]: window[1].isoformat()})
        try:
            with _env(**env):
                result = dbtRunner().invoke(cli)
        finally:
            # dbt-duckdb keeps its DuckDB environment for the process and reuses it while the profile is the same,
            # which it is in every home: each call gets its own, as a `dbt` command does.
            with DuckDBConnectionManager._LOCK:
                if DuckDBConnectionManager._ENV is not None:
                    DuckDBConnectionManager._ENV.close()
                DuckDBConnectionManager.close_all_connections()
        if check and not result.success:
            failed = []
            res = result.result
            for r in getattr(res, "results", None) or []:
                if str(getattr(r, "status", "")).lower() not in ("success", "pass"):
                    failed.append(f"{r.node.unique_id}: {r.status}: {r.message}")
            raise AssertionError(f"dbt {' '.join(args)} failed on {self.home.root}: {result.exception or ''}\n"
                                 + "\n".join(failed))
        return result

    def query(self, sql: str, params=None) -> list[tuple]:
        with lake.session(self.home, read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def query_dicts(self, sql: str, params=None) -> list[dict]:
        with lake.session(self.home, read_only=True) as con:
            cur = con.execute(sql, params or [])
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, r)) for r in cur.fetchall()]


@contextlib.contextmanager
def _env(**values: str):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def make_dbt_home(root: Path) -> DbtHome:
    """A new home whose target/ starts from the project's partial-parse state, as dagster-dbt seeds each run's."""
    home = Home(root / "home").ensure()
    target = root / "target"
    target.mkdir(parents=True, exist_ok=True)
    parsed = DBT_PROJECT_DIR / "target" / "partial_parse.msgpack"
    if parsed.exists():
        shutil.copy(parsed, target / parsed.name)
    return DbtHome(home=home, target=target)


# Every relation the project builds, by schema; the equality test compares them all.
BUILT_RELATIONS = [
    "staging.stg_apple__chart_entries",
    "intermediate.int_chart_days",
    "intermediate.int_app_names_daily",
    "intermediate.int_watchlist_overtakes",
    "marts.fct_chart_entries",
    "marts.mart_daily_rankings",
    "marts.mart_daily_country_summary",
    "marts.mart_breakouts",
    "marts.dim_apps",
    "marts.dim_countries",
    "marts.watchlist",
]


def compare_lakes(a: Home, b: Home, relations=BUILT_RELATIONS) -> dict[str, tuple[int, int, int, int]]:
    """For each relation: (rows in a, rows in b, rows only in a, rows only in b), as multisets."""
    out = {}
    with lake.session(a, read_only=True) as con:
        con.execute(lake.attach_sql(b, alias="other", read_only=True))
        for rel in relations:
            n_a = con.execute(f"select count(*) from lake.{rel}").fetchone()[0]
            n_b = con.execute(f"select count(*) from other.{rel}").fetchone()[0]
            only_a = con.execute(
                f"select count(*) from (select * from lake.{rel} except all select * from other.{rel})"
            ).fetchone()[0]
            only_b = con.execute(
                f"select count(*) from (select * from other.{rel} except all select * from lake.{rel})"
            ).fetchone()[0]
            out[rel] = (n_a, n_b, only_a, only_b)
    return out
