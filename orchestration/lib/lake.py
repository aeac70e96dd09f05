"""The one place that opens DuckDB connections to the lake.

DuckLake and SQLite come from the pip packages ``duckdb-extension-ducklake`` / ``duckdb-extension-sqlite``:
their signed binaries are installed into the home's extension directory with ``INSTALL '<path>'`` (signature
checking stays on), so no step ever contacts DuckDB's extension server. The lake is a DuckLake with a SQLite
catalog at ``<home>/lake/catalog.sqlite`` and Parquet files under ``<home>/lake/files/``; the dbt profile and
the CLI attach the same layout.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
from pathlib import Path
from typing import Iterator

import duckdb

from orchestration.config import Home

LAKE_ALIAS = "lake"
EXTENSIONS = ("ducklake", "sqlite")
# SQLite catalog under concurrent readers and one writer: WAL plus a busy timeout, or clients see
# "database is locked" (DESIGN.md).
BUSY_TIMEOUT_MS = 30_000
# DuckDB's default memory limit is 80% of RAM, and it keeps what it read cached: a publish or check in the Dagster
# process then grows to several GB beside dbt's own DuckDB (bounded the same way in dbt_project/profiles.yml).
# With a bound it spills under the home instead.
MEMORY_LIMIT_ENV = "CHARTLAKE_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "2GB"


class LakeError(RuntimeError):
    pass


def extension_binary(name: str) -> Path:
    """Path of the signed extension binary shipped by the ``duckdb-extension-<name>`` package."""
    module = importlib.import_module(f"duckdb_extension_{name}")
    root = Path(module.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    found = sorted(root.glob(f"{name}.duckdb_extension"))
    if not found:
        raise LakeError(
            f"extension {name!r} for DuckDB {duckdb.__version__} not found in package duckdb-extension-{name} "
            f"(looked in {root}); reinstall the project's pinned dependencies"
        )
    return found[0]


def install_extensions(home: Home, con: duckdb.DuckDBPyConnection | None = None) -> Path:
    """Install DuckLake and SQLite from the pip packages into ``home``'s extension directory (idempotent).

    An installed extension is never fetched again, so dbt-duckdb's ``extensions: [ducklake, sqlite]`` then
    works offline when its profile points at the same directory.
    """
    ext_dir = home.duckdb_extensions
    ext_dir.mkdir(parents=True, exist_ok=True)
    own = con is None
    con = con or duckdb.connect(":memory:")
    try:
        con.execute(f"SET extension_directory = '{_sql_str(ext_dir)}'")
        installed: set[str] = set()
        for name, aliases in con.execute(
            "select extension_name, aliases from duckdb_extensions() where installed"
        ).fetchall():
            installed.update([name, *(aliases or [])])  # sqlite installs as sqlite_scanner
        for name in EXTENSIONS:
            if name not in installed:
                con.execute(f"INSTALL '{_sql_str(extension_binary(name))}'")
    finally:
        if own:
            con.close()
    return ext_dir


def attach_sql(home: Home, alias: str = LAKE_ALIAS, read_only: bool = False) -> str:
    # OVERRIDE_DATA_PATH: the catalog remembers the data path it was created with; a home that was moved or
    # copied must still open with its own files directory.
    opts = [
        f"DATA_PATH '{_sql_str(home.lake_files)}/'",
        "OVERRIDE_DATA_PATH true",
        "META_JOURNAL_MODE 'WAL'",
        f"META_BUSY_TIMEOUT {BUSY_TIMEOUT_MS}",
    ]
    if read_only:
        opts.append("READ_ONLY")
    return f"ATTACH 'ducklake:sqlite:{_sql_str(home.lake_catalog)}' AS {alias} ({', '.join(opts)})"


def connect(home: Home | None = None, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB session with the lake attached as ``lake`` and selected with ``USE``."""
    home = home or Home.resolve()
    if read_only and not home.lake_catalog.exists():
        raise LakeError(f"no lake at {home.lake_catalog}: load some charts first (chartlake import / demo)")
    home.lake_files.mkdir(parents=True, exist_ok=True)
    limit = os.environ.get(MEMORY_LIMIT_ENV) or DEFAULT_MEMORY_LIMIT
    try:
        con = duckdb.connect(":memory:", config={"memory_limit": limit,
                                                 "temp_directory": str(home.root / ".duckdb_tmp")})
    except duckdb.Error as exc:
        raise LakeError(f"{MEMORY_LIMIT_ENV}={limit!r} is not a DuckDB memory limit (e.g. 2GB, 512MB): {exc}") from None
    try:
        install_extensions(home, con)
        for name in EXTENSIONS:
            con.execute(f"LOAD {name}")
        con.execute(attach_sql(home, read_only=read_only))
        con.execute(f"USE {LAKE_ALIAS}")
    except Exception:
        con.close()
        raise
    return con


@contextlib.contextmanager
def session(home: Home | None = None, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(home, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


def set_commit_message(con: duckdb.DuckDBPyConnection, message: str, **extra) -> None:
    """Label the current transaction's DuckLake snapshot (call inside BEGIN ... COMMIT)."""
    con.execute(
        f"CALL {LAKE_ALIAS}.set_commit_message(?, ?, extra_info => ?)",
        ["chartlake", message, json.dumps(extra, sort_keys=True, default=str)],
    )


def current_snapshot(con: duckdb.DuckDBPyConnection) -> int | None:
    row = con.execute(f"select max(snapshot_id) from {LAKE_ALIAS}.snapshots()").fetchone()
    return row[0] if row else None


def snapshots(con: duckdb.DuckDBPyConnection, limit: int = 20) -> list[dict]:
    cur = con.execute(
        f"select snapshot_id, snapshot_time, commit_message, commit_extra_info, changes "
        f"from {LAKE_ALIAS}.snapshots() order by snapshot_id desc limit {int(limit)}"
    )
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def _sql_str(value: object) -> str:
    return str(value).replace("'", "''")


# --------------------------------------------------------------------------------------------------- raw layer

PAYLOAD_VERSIONS = "raw.payload_versions"
# Bumped whenever _versions_sql changes: ensure_raw_schema replaces a view whose comment names another rule.
VERSION_RULE = "payload-versions rule 2: captured_at desc, payload_sha256 desc; quarantined never current"
_VERSION_KEY = "store, country, device, chart, genre_id, chart_date"


def _versions_sql(prefix: str = "", capture: str = "coalesce(max(captured_at), max(fetched_at))") -> str:
    """The one version rule of the raw layer (grain: chart key x payload), over ``<prefix>raw.*``.

    A version is ordered by when its chart was captured (``captured_at``: the fetch time, or the time an archive
    records; rows landed before that column existed fall back to ``fetched_at``), newest first; equal capture
    times are broken by the payload hash, descending, so the order never depends on when or in which order the
    payloads were imported. ``version_rank`` counts every version; the current one is the newest that is not
    quarantined. Every step is per chart key, and chart_date is part of it, so a chart_date filter on the
    relation reaches the raw scan (staging relies on that).
    """
    return f"""
with versions as (
    select {_VERSION_KEY}, payload_sha256,
           {capture} as captured_at,
           min(source_url) as source_url, min(source_format) as source_format, count(*) as row_count,
           max(fetched_at) as fetched_at, max(ingested_at) as ingested_at, min(run_id) as run_id
    from {prefix}raw.chart_entries
    group by {_VERSION_KEY}, payload_sha256
),
quarantined as (
    select distinct chart_date, country, payload_sha256 from {prefix}raw.quarantined_payloads
),
-- A left join, not EXISTS: DuckDB carries a chart_date filter through a left join's left side, not a mark join.
flagged as (
    select v.*, q.payload_sha256 is not null as is_quarantined
    from versions v
    left join quarantined q
      on q.payload_sha256 = v.payload_sha256 and q.chart_date = v.chart_date and q.country = v.country
)
select *,
    row_number() over (partition by {_VERSION_KEY}
                       order by captured_at desc nulls last, payload_sha256 desc) as version_rank,
    not is_quarantined and row_number() over (
        partition by {_VERSION_KEY}, is_quarantined
        order by captured_at desc nulls last, payload_sha256 desc) = 1 as is_current
from flagged"""


def versions_relation(con: duckdb.DuckDBPyConnection, catalog: str = LAKE_ALIAS) -> str:
    """What to read for the payload versions of ``catalog``: the view, or (a home not written since the view was
    added, opened read-only; a lake snapshot from before it) the same rule inline over that catalog's tables."""
    found = con.execute(
        "select count(*) from duckdb_views() where database_name = ? and schema_name = 'raw' "
        "and view_name = 'payload_versions'", [catalog]).fetchone()[0]
    if found:
        return f"{catalog}.{PAYLOAD_VERSIONS}"
    has_capture = con.execute(
        "select count(*) from duckdb_columns() where database_name = ? and schema_name = 'raw' "
        "and table_name = 'chart_entries' and column_name = 'captured_at'", [catalog]).fetchone()[0]
    capture = "coalesce(max(captured_at), max(fetched_at))" if has_capture else "max(fetched_at)"
    return f"({_versions_sql(f'{catalog}.', capture)})"


_QUARANTINE_COLUMNS = """chart_date DATE, country VARCHAR, payload_sha256 VARCHAR, reason VARCHAR, run_id VARCHAR,
  checked_at TIMESTAMP"""


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw layer if missing, or bring an older home's up to date (one snapshot, only when needed):
    the tables, the ``captured_at`` columns, and the ``raw.payload_versions`` view."""
    from orchestration.sources.canonical import RAW_COLUMNS

    tables = {r[0] for r in con.execute(
        "select table_name from duckdb_tables() where database_name = ? and schema_name = 'raw'",
        [LAKE_ALIAS]).fetchall()}
    columns = set(con.execute(
        "select table_name, column_name from duckdb_columns() where database_name = ? and schema_name = 'raw' "
        "and column_name = 'captured_at'", [LAKE_ALIAS]).fetchall())
    view = con.execute(
        "select comment from duckdb_views() where database_name = ? and schema_name = 'raw' "
        "and view_name = 'payload_versions'", [LAKE_ALIAS]).fetchall()
    missing_columns = [t for t in ("chart_entries", "payloads") if t in tables and (t, "captured_at") not in columns]
    if {"chart_entries", "payloads", "quarantined_payloads"} <= tables and not missing_columns \
            and view == [(VERSION_RULE,)]:
        return
    cols = ",\n  ".join(f"{name} {typ}" for name, typ in RAW_COLUMNS)
    con.execute("BEGIN")
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {LAKE_ALIAS}.raw")
        con.execute(f"CREATE TABLE IF NOT EXISTS {LAKE_ALIAS}.raw.chart_entries (\n  {cols}\n)")
        con.execute(
            f"""CREATE TABLE IF NOT EXISTS {LAKE_ALIAS}.raw.payloads (
  payload_sha256 VARCHAR,   -- the payload's file in the raw store
  store VARCHAR, country VARCHAR, device VARCHAR, chart VARCHAR, genre_id INTEGER, chart_date DATE,
  source_url VARCHAR, source_format VARCHAR, http_status INTEGER,
  fetched_at TIMESTAMP, run_id VARCHAR, registered_at TIMESTAMP,
  status VARCHAR,           -- staged | failed
  error VARCHAR,
  entry_count INTEGER,
  captured_at TIMESTAMP     -- when the chart was captured (see payload_versions)
)"""
        )
        # The one quarantine store, written by the raw/quarantined_payloads asset: payloads that broke a blocking
        # expectation (never current, so the previous good version, if any, stays current) and payloads that
        # did not parse (their country-day is held back at publish).
        con.execute(f"CREATE TABLE IF NOT EXISTS {LAKE_ALIAS}.raw.quarantined_payloads (\n  {_QUARANTINE_COLUMNS}\n)")
        for table in missing_columns:  # a home from before capture times: its rows fall back to fetched_at
            con.execute(f"ALTER TABLE {LAKE_ALIAS}.raw.{table} ADD COLUMN captured_at TIMESTAMP")
        con.execute(f"CREATE OR REPLACE VIEW {LAKE_ALIAS}.{PAYLOAD_VERSIONS} AS {_versions_sql()}")
        con.execute(f"COMMENT ON VIEW {LAKE_ALIAS}.{PAYLOAD_VERSIONS} IS '{_sql_str(VERSION_RULE)}'")
        set_commit_message(con, "create raw schema" if not tables else "update raw schema")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
