"""The one place that opens DuckDB connections to the lake, and the one that builds its ATTACH.

Extensions come from the pip packages ``duckdb-extension-{ducklake,sqlite,postgres,httpfs}``: their signed binaries
are installed into the home's extension directory with ``INSTALL '<path>'`` (signature checking stays on), so no
step ever contacts DuckDB's extension server.

Where the lake lives is configuration (``LakeConfig``, read from the environment when a connection is made):

- ``CHARTLAKE_LAKE_CATALOG``: unset, the SQLite catalog ``<home>/lake/catalog.sqlite`` (``make demo`` needs nothing
  but the home); ``sqlite:<file>`` another SQLite file; anything else a PostgreSQL DSN (``dbname=.. host=..``) or
  URI (``postgresql://user@host:5432/db``), shared by many writers. ``CHARTLAKE_LAKE_METADATA_SCHEMA``: the
  Postgres schema of the catalog's tables (several lakes in one database).
- ``CHARTLAKE_LAKE_DATA_PATH``: unset, ``<home>/lake/files/``; or a directory, or an ``s3://bucket/prefix/`` URL
  with ``CHARTLAKE_S3_KEY_ID`` / ``_SECRET`` / ``_REGION`` / ``_ENDPOINT`` / ``_URL_STYLE`` / ``_USE_SSL`` given
  to DuckDB as an S3 secret.

dbt's connection is opened by this module too: ``dbt_project/profiles.yml`` names the plugin ``orchestration.lib.dbt_lake``,
which reads the same variables when dbt connects (tests/lib/test_dbt_lake.py, tests/services).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import duckdb

from orchestration.config import Home

LAKE_ALIAS = "lake"
# Loaded on every lake connection (the default layout); postgres and httpfs only when the configuration uses them.
EXTENSIONS = ("ducklake", "sqlite")
PACKAGED_EXTENSIONS = ("ducklake", "sqlite", "postgres", "httpfs")
# The pip package ships postgres.duckdb_extension, but its entry point is postgres_scanner's: installed under its
# own name DuckDB refuses to load it ("did not contain the expected entrypoint function").
_INSTALL_AS = {"postgres": "postgres_scanner"}
# SQLite catalog under concurrent readers and one writer: WAL plus a busy timeout, or clients see
# "database is locked" (DESIGN.md). Postgres rejects these options: they are for SQLite only.
BUSY_TIMEOUT_MS = 30_000
# DuckDB's default memory limit is 80% of RAM, and it keeps what it read cached: a publish or check in the Dagster
# process then grows to several GB beside dbt's own DuckDB (dbt's is bounded by this module too, through orchestration.lib.dbt_lake).
# With a bound it spills under the home instead.
MEMORY_LIMIT_ENV = "CHARTLAKE_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "2GB"
CATALOG_ENV = "CHARTLAKE_LAKE_CATALOG"
DATA_PATH_ENV = "CHARTLAKE_LAKE_DATA_PATH"
METADATA_SCHEMA_ENV = "CHARTLAKE_LAKE_METADATA_SCHEMA"
S3_SECRET_NAME = "chartlake_s3"

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
    """Install the packaged extensions into ``home``'s extension directory (idempotent).

    An installed extension is never fetched again, so dbt-duckdb's ``extensions:`` list then works offline when its
    profile points at the same directory.
    """
    ext_dir = home.duckdb_extensions
    ext_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_install_copies(ext_dir)
    own = con is None
    con = con or duckdb.connect(":memory:")
    try:
        con.execute(f"SET extension_directory = '{_sql_str(ext_dir)}'")
        installed: set[str] = set()
        for name, aliases, path in con.execute(
            "select extension_name, aliases, install_path from duckdb_extensions() where installed"
        ).fetchall():
            # A process killed inside INSTALL leaves DuckDB's copy in progress (<name>.duckdb_extension.tmp-<uuid>
            # ...), which DuckDB lists as installed but cannot LOAD: it would then try to download the extension.
            # Installed means the finished file.
            if _IN_PROGRESS in Path(path or "").name:
                continue
            installed.update([name, *(aliases or [])])  # sqlite installs as sqlite_scanner
        for name in PACKAGED_EXTENSIONS:
            if name not in installed:
                con.execute(f"INSTALL '{_sql_str(_installable(name, ext_dir))}'")
    finally:
        if own:
            con.close()
    return ext_dir


_IN_PROGRESS = ".duckdb_extension.tmp-"
# INSTALL copies a few MB: a copy this old was left by a process that died, never one still being written.
_STALE_INSTALL_SECONDS = 600


def _remove_stale_install_copies(ext_dir: Path) -> None:
    now = time.time()
    for leftover in ext_dir.rglob(f"*{_IN_PROGRESS}*"):
        with contextlib.suppress(OSError):
            if now - leftover.lstat().st_mtime > _STALE_INSTALL_SECONDS:
                leftover.unlink()


def _installable(name: str, ext_dir: Path) -> Path:
    binary = extension_binary(name)
    if name not in _INSTALL_AS:
        return binary
    # INSTALL names the extension after the file: a renamed copy (same signed bytes) installs under the right name.
    staged = ext_dir / ".packaged" / f"{_INSTALL_AS[name]}.duckdb_extension"
    staged.parent.mkdir(parents=True, exist_ok=True)
    if not staged.exists() or staged.stat().st_size != binary.stat().st_size:
        shutil.copyfile(binary, staged)
    return staged


@dataclass(frozen=True)
class S3Settings:
    key_id: str = ""
    secret: str = ""
    region: str = "us-east-1"
    endpoint: str = "s3.amazonaws.com"
    url_style: str = "vhost"
    use_ssl: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "S3Settings":
        d = cls()
        ssl = (env.get("CHARTLAKE_S3_USE_SSL") or "true").strip().lower()
        if ssl not in ("true", "false", "1", "0"):
            raise LakeError(f"CHARTLAKE_S3_USE_SSL={ssl!r}: expected true or false")
        return cls(key_id=env.get("CHARTLAKE_S3_KEY_ID") or d.key_id, secret=env.get("CHARTLAKE_S3_SECRET") or d.secret,
                   region=env.get("CHARTLAKE_S3_REGION") or d.region,
                   endpoint=env.get("CHARTLAKE_S3_ENDPOINT") or d.endpoint,
                   url_style=env.get("CHARTLAKE_S3_URL_STYLE") or d.url_style, use_ssl=ssl in ("true", "1"))

    def secret_sql(self) -> str:
        return (f"CREATE OR REPLACE SECRET {S3_SECRET_NAME} (TYPE s3, KEY_ID '{_sql_str(self.key_id)}', "
                f"SECRET '{_sql_str(self.secret)}', REGION '{_sql_str(self.region)}', "
                f"ENDPOINT '{_sql_str(self.endpoint)}', URL_STYLE '{_sql_str(self.url_style)}', "
                f"USE_SSL {str(self.use_ssl).lower()})")


@dataclass(frozen=True)
class LakeConfig:
    """Where one home's lake lives: its DuckLake catalog and its data files."""

    catalog: str  # DuckLake's metadata path: "sqlite:<file>" or "postgres:<DSN or URI>"
    data_path: str  # ends with "/"
    default_data_path: bool  # the home's own files directory (a moved home overrides the recorded path)
    metadata_schema: str | None = None
    s3: S3Settings | None = None

    @classmethod
    def resolve(cls, home: Home, env: Mapping[str, str] | None = None) -> "LakeConfig":
        env = os.environ if env is None else env
        raw = (env.get(CATALOG_ENV) or "").strip()
        if not raw:
            catalog = f"sqlite:{home.lake_catalog}"
        elif raw.startswith("sqlite:"):
            catalog = f"sqlite:{Path(raw[len('sqlite:'):]).expanduser().resolve()}"
        elif re.match(r"^(ducklake:|postgres:(?!//))", raw):
            raise LakeError(f"{CATALOG_ENV}={mask(raw)!r}: give the PostgreSQL DSN or URI itself "
                            "(e.g. 'dbname=lake host=db' or 'postgresql://user@db/lake'), without a ducklake:/postgres: prefix")
        else:
            catalog = f"postgres:{raw}"
        given = (env.get(DATA_PATH_ENV) or "").strip()
        data_path = given or str(home.lake_files)
        if not data_path.startswith("s3://"):
            data_path = str(Path(data_path).expanduser().resolve())
        s3_wanted = data_path.startswith("s3://") or any(k.startswith("CHARTLAKE_S3_") for k in env)
        return cls(catalog=catalog, data_path=data_path.rstrip("/") + "/", default_data_path=not given,
                   metadata_schema=(env.get(METADATA_SCHEMA_ENV) or "").strip() or None,
                   s3=S3Settings.from_env(env) if s3_wanted else None)

    @property
    def is_sqlite(self) -> bool:
        return self.catalog.startswith("sqlite:")

    @property
    def sqlite_file(self) -> Path | None:
        return Path(self.catalog[len("sqlite:"):]) if self.is_sqlite else None

    @property
    def extensions(self) -> tuple[str, ...]:
        extra = ("postgres",) if not self.is_sqlite else ()
        return EXTENSIONS + extra + (("httpfs",) if self.s3 else ())

    def describe(self) -> str:
        """The catalog and data path for messages, without a password."""
        return f"{mask(self.catalog)} (data {self.data_path})"

    def attach_sql(self, alias: str = LAKE_ALIAS, read_only: bool = False, snapshot: int | None = None) -> str:
        opts = [f"DATA_PATH '{_sql_str(self.data_path)}'"]
        if self.default_data_path:
            # The catalog remembers the data path it was created with; a home that was moved or copied must still
            # open with its own files directory. A configured path is a team's shared one: never overridden.
            opts.append("OVERRIDE_DATA_PATH true")
        if self.is_sqlite:
            opts += ["META_JOURNAL_MODE 'WAL'", f"META_BUSY_TIMEOUT {BUSY_TIMEOUT_MS}"]
        if self.metadata_schema:
            opts.append(f"METADATA_SCHEMA '{_sql_str(self.metadata_schema)}'")
        if read_only:
            opts.append("READ_ONLY")
        if snapshot is not None:
            opts.append(f"SNAPSHOT_VERSION {int(snapshot)}")
        return f"ATTACH 'ducklake:{_sql_str(self.catalog)}' AS {alias} ({', '.join(opts)})"


def mask(text: str) -> str:
    """A DSN or URI with its password replaced by ***."""
    text = re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", text, flags=re.I)
    return re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1***@", text)


def lake_config(home: Home) -> LakeConfig:
    return LakeConfig.resolve(home)


def prepare(con: duckdb.DuckDBPyConnection, home: Home, config: LakeConfig | None = None) -> LakeConfig:
    """Install and load what the home's lake needs on ``con`` and create its S3 secret; no ATTACH yet."""
    config = config or lake_config(home)
    install_extensions(home, con)
    for name in config.extensions:
        con.execute(f"LOAD {name}")
    if config.s3:
        con.execute(config.s3.secret_sql())
    return config


def exists(home: Home) -> bool:
    """Whether the home's lake has a catalog yet (a SQLite file, or DuckLake's tables in Postgres)."""
    return exists_at(home, lake_config(home))


def exists_at(home: Home, config: LakeConfig) -> bool:
    if config.is_sqlite:
        return config.sqlite_file.exists()
    con = duckdb.connect(":memory:")
    try:
        prepare(con, home, config)
        con.execute(config.attach_sql(read_only=True))
        return True
    except duckdb.Error:
        return False
    finally:
        con.close()


def attach_sql(home: Home, alias: str = LAKE_ALIAS, read_only: bool = False, snapshot: int | None = None) -> str:
    """The ATTACH of ``home``'s lake as ``alias`` (optionally at a snapshot), run on a ``prepare``d connection."""
    return lake_config(home).attach_sql(alias, read_only=read_only, snapshot=snapshot)


def memory_limit(home: Home, env: Mapping[str, str] | None = None) -> str:
    """DuckDB's memory bound for ``home``'s sessions: the home's own setting, else ``CHARTLAKE_DUCKDB_MEMORY_LIMIT``,
    else ``DEFAULT_MEMORY_LIMIT`` (dbt's sessions too, through orchestration.lib.dbt_lake)."""
    env = os.environ if env is None else env
    return (home.duckdb_memory_limit or env.get(MEMORY_LIMIT_ENV) or "").strip() or DEFAULT_MEMORY_LIMIT


def connect_options(home: Home) -> dict[str, str]:
    """The options a lake session's ``duckdb.connect`` takes: they cannot change once the session is used (DuckDB
    refuses another temp directory then). dbt's connection takes the same (``orchestration.lib.dbt_lake``)."""
    return {"memory_limit": memory_limit(home), "temp_directory": str(home.root / ".duckdb_tmp")}


def attach(con: duckdb.DuckDBPyConnection, home: Home, config: LakeConfig, *, read_only: bool = False) -> None:
    """``prepare`` ``con``, make the local data directory, and ATTACH the lake as ``lake`` (a ``LakeError`` naming
    the lake if it cannot be attached). Every lake session goes through here, dbt's included."""
    prepare(con, home, config)
    if not config.data_path.startswith("s3://"):
        Path(config.data_path).mkdir(parents=True, exist_ok=True)
    try:
        con.execute(config.attach_sql(read_only=read_only))
    except duckdb.Error as exc:
        raise LakeError(f"cannot attach the lake {config.describe()}: {exc}") from exc


def connect(home: Home | None = None, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB session with the lake attached as ``lake`` and selected with ``USE``."""
    home = home or Home.resolve()
    config = lake_config(home)
    if read_only and config.is_sqlite and not config.sqlite_file.exists():
        raise LakeError(f"no lake at {config.sqlite_file}: load some charts first (chartlake import / demo)")
    options = connect_options(home)
    try:
        con = duckdb.connect(":memory:", config=options)
    except duckdb.Error as exc:
        source = "the configured memory limit" if home.duckdb_memory_limit else MEMORY_LIMIT_ENV
        raise LakeError(f"{source}={options['memory_limit']!r} is not a DuckDB memory limit (e.g. 2GB, 512MB): "
                        f"{exc}") from None
    try:
        attach(con, home, config, read_only=read_only)
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
  checked_at TIMESTAMP, store VARCHAR, device VARCHAR, chart VARCHAR, genre_id INTEGER, scope VARCHAR"""
# What an entry holds back at publish (audit.HeldBack.scope): 'chart' (store, device, chart, genre_id: the chart
# key), 'store' (the store's charts of the country-day) or 'country' (the country-day). Columns a home from before
# per-chart quarantine lacks: its rows have no scope and hold back their country-day, as they did.
_QUARANTINE_KEY_COLUMNS = (("store", "VARCHAR"), ("device", "VARCHAR"), ("chart", "VARCHAR"), ("genre_id", "INTEGER"),
                           ("scope", "VARCHAR"))


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw layer if missing, or bring an older home's up to date (one snapshot, only when needed):
    the tables, the ``captured_at`` columns, and the ``raw.payload_versions`` view."""
    from orchestration.sources.canonical import RAW_COLUMNS

    tables = {r[0] for r in con.execute(
        "select table_name from duckdb_tables() where database_name = ? and schema_name = 'raw'",
        [LAKE_ALIAS]).fetchall()}
    columns = set(con.execute(
        "select table_name, column_name from duckdb_columns() where database_name = ? and schema_name = 'raw' "
        "and (column_name = 'captured_at' or table_name = 'quarantined_payloads')", [LAKE_ALIAS]).fetchall())
    view = con.execute(
        "select comment from duckdb_views() where database_name = ? and schema_name = 'raw' "
        "and view_name = 'payload_versions'", [LAKE_ALIAS]).fetchall()
    missing_columns = [t for t in ("chart_entries", "payloads") if t in tables and (t, "captured_at") not in columns]
    missing_keys = [(c, t) for c, t in _QUARANTINE_KEY_COLUMNS
                    if "quarantined_payloads" in tables and ("quarantined_payloads", c) not in columns]
    if {"chart_entries", "payloads", "quarantined_payloads"} <= tables and not missing_columns \
            and not missing_keys and view == [(VERSION_RULE,)]:
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
        # were refused (their chart, or what of it is known, is held back at publish).
        con.execute(f"CREATE TABLE IF NOT EXISTS {LAKE_ALIAS}.raw.quarantined_payloads (\n  {_QUARANTINE_COLUMNS}\n)")
        for table in missing_columns:  # a home from before capture times: its rows fall back to fetched_at
            con.execute(f"ALTER TABLE {LAKE_ALIAS}.raw.{table} ADD COLUMN captured_at TIMESTAMP")
        for column, typ in missing_keys:
            con.execute(f"ALTER TABLE {LAKE_ALIAS}.raw.quarantined_payloads ADD COLUMN {column} {typ}")
        con.execute(f"CREATE OR REPLACE VIEW {LAKE_ALIAS}.{PAYLOAD_VERSIONS} AS {_versions_sql()}")
        con.execute(f"COMMENT ON VIEW {LAKE_ALIAS}.{PAYLOAD_VERSIONS} IS '{_sql_str(VERSION_RULE)}'")
        set_commit_message(con, "create raw schema" if not tables else "update raw schema")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
