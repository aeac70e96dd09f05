"""Data versions: what the warehouse said at any past publish, what changed between two, where a row came from,
whether a publish can be rebuilt from raw, and lake maintenance that keeps all of that answerable.

Why a separate ``published`` schema in the lake (written by ``serving.publish``, one DuckLake commit per publish,
its snapshot recorded as ``publish_log.published_snapshot_id``) instead of time travel on ``marts.*`` at the
publish's ``lake_snapshot_id``: a quarantined partition is published from the *previous* serving file, not from
the lake, so ``marts.*`` at that snapshot holds rows nobody was ever shown. An as-of answer must be exactly
what was published; ``published.*`` at the publish's snapshot is, byte for byte.

Grain of the things here:

- a *publish* is one row of the serving file's ``analytics.publish_log`` (``Publish``);
- ``query`` runs one read-only SELECT against the marts of one publish (or the current serving file);
- ``diff`` counts rows added, removed and changed per mart x partition (country x chart_date for the daily
  marts, country for breakouts, the whole table for dimensions) between two publishes;
- ``lineage`` walks one mart row to the raw payload versions and the lake snapshots that landed them;
- ``rebuild`` rebuilds every mart from ``raw.*`` as of a publish's lake snapshot in a scratch home and compares
  a content hash per mart with what was published;
- ``maintain`` compacts small files and expires snapshots, never one a publish references.

Plain Python, no Dagster: the CLI and the maintenance job both call it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import duckdb

from orchestration.config import DBT_PROJECT_DIR, Home
from orchestration.lib import lake, readonly_query, serving, serving_file

PUBLISHED = serving.PUBLISHED_SCHEMA
# Tables of the published schema that are not marts.
_NOT_MARTS = {serving.QUARANTINE, serving.PUBLISH_LOG}
# The partitions a publish holds back per mart: mirrors ``orchestration.defs.publish.assets.MARTS`` (a test keeps
# them equal; lib code may not import the Dagster definitions). Unknown marts: the whole table is one partition.
PARTITIONS: dict[str, tuple[str, ...]] = {
    "fct_chart_entries": ("country", "chart_date"),
    "mart_daily_rankings": ("country", "chart_date"),
    "mart_daily_country_summary": ("country", "chart_date"),
    "mart_breakouts": ("country",),
    "dim_apps": (),
    "dim_countries": (),
    "dim_products": (),
    "mart_product_daily_ranks": ("country",),
    "mart_product_breakouts": ("country",),
}
# The grain of each mart (its dbt uniqueness test): rows with the same key in two publishes are "changed" when
# any other column differs. A mart without a known grain only has rows added and removed.
GRAINS: dict[str, tuple[str, ...]] = {
    "fct_chart_entries": ("chart_id", "chart_date", "rank"),
    "mart_daily_rankings": ("chart_id", "chart_date", "rank"),
    "mart_daily_country_summary": ("chart_id", "chart_date"),
    "mart_breakouts": ("chart_id", "app_id", "breakout_date"),
    "dim_apps": ("app_id", "valid_from"),
    "dim_countries": ("code",),
    "dim_products": ("product_id",),
    "mart_product_daily_ranks": ("product_id", "country", "chart", "chart_date"),
    "mart_product_breakouts": ("product_id", "country", "chart"),
}
# Columns a mart row shares with raw.chart_entries: how lineage finds the raw rows behind it.
_RAW_LINK = ("store", "country", "device", "chart", "genre_id", "chart_date", "app_id", "payload_sha256")
_CHART_KEY = ("store", "country", "device", "chart", "genre_id", "chart_date")


class VersionsError(ValueError):
    """A bad argument (unknown publish, mart, key, writing SQL...): the message says which and what is valid."""


@dataclass(frozen=True)
class Publish:
    """One publish of the serving file, as its publish_log row records it."""

    publish_id: int
    published_at: dt.datetime
    lake_snapshot_id: int  # the lake snapshot the marts were read from (raw + marts as built)
    published_snapshot_id: int | None  # the lake snapshot of published.* for this publish
    run_id: str | None
    partitions_published: int
    partitions_quarantined: int
    failed_checks: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: dict) -> "Publish":
        summary = row.get("check_summary")
        try:
            failed = (json.loads(summary) if isinstance(summary, str) else summary or {}).get("failed") or []
        except ValueError:
            failed = []
        return cls(
            publish_id=int(row["publish_id"]),
            published_at=row["published_at"],
            lake_snapshot_id=int(row["lake_snapshot_id"]),
            published_snapshot_id=row.get("published_snapshot_id"),
            run_id=row.get("run_id"),
            partitions_published=int(row["partitions_published"]),
            partitions_quarantined=int(row["partitions_quarantined"]),
            failed_checks=tuple(failed),
        )


# ---------------------------------------------------------------------------------------------------- publishes


def publishes(home: Home) -> list[Publish]:
    """Every publish recorded in the serving file, oldest first (``[]`` before the first publish).

    When the serving file cannot be read (a client holds it read-write), from the lake: every publish recorded its
    log there too (``published.publish_log`` at its commit, its own row's snapshot being that commit's).
    """
    try:
        return [Publish.from_row(r) for r in serving.read_publish_log(home.serving_db)]
    except serving_file.ServingFileError as exc:
        rows = _lake_publish_log(home)
        if rows is None:
            raise VersionsError(str(exc)) from None
        return [Publish.from_row(r) for r in rows]


def _lake_publish_log(home: Home) -> list[dict] | None:
    if not home.lake_catalog.exists():
        return None
    with lake.session(home, read_only=True) as con:
        last = con.execute(f"SELECT max(snapshot_id) FROM {lake.LAKE_ALIAS}.snapshots() "
                           "WHERE commit_message LIKE 'publish %'").fetchone()[0]
        if last is None:
            return None
        _attach_lake_at(con, home, "last_publish", last)
        if serving.PUBLISH_LOG not in _all_tables(con, "last_publish"):
            return None
        cur = con.execute(f"SELECT * FROM last_publish.{PUBLISHED}.{serving.PUBLISH_LOG} ORDER BY publish_id")
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
    if rows and rows[-1].get("published_snapshot_id") is None:
        rows[-1]["published_snapshot_id"] = int(last)
    return rows


def resolve_publish(home: Home, ref: str | int) -> Publish:
    """A publish by id (``3``) or by time (``2025-01-31T12:00``: the latest publish at or before it, UTC)."""
    log = publishes(home)
    if not log:
        raise VersionsError(f"nothing published yet in {home.serving_db}: run the pipeline first")
    text = str(ref).strip()
    if text.lstrip("-").isdigit():
        wanted = int(text)
        for p in log:
            if p.publish_id == wanted:
                return p
        raise VersionsError(f"unknown publish {wanted}: publishes are {_id_range(log)}")
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise VersionsError(f"{text!r} is neither a publish id ({_id_range(log)}) nor an ISO timestamp "
                            "(YYYY-MM-DD[THH:MM[:SS]], UTC)") from None
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    before = [p for p in log if p.published_at <= when]
    if not before:
        raise VersionsError(f"{text} is before the first publish (#{log[0].publish_id} at "
                            f"{log[0].published_at:%Y-%m-%d %H:%M:%S} UTC)")
    return before[-1]


def _id_range(log: list[Publish]) -> str:
    return f"{log[0].publish_id}..{log[-1].publish_id}" if len(log) > 1 else str(log[0].publish_id)


def recent_snapshots(home: Home, limit: int = 10) -> list[dict]:
    """The newest lake snapshots with their commit messages and extra info (newest first)."""
    if not lake.exists(home):
        return []
    with lake.session(home, read_only=True) as con:
        return lake.snapshots(con, limit=limit)


def _recorded(p: Publish) -> int:
    if p.published_snapshot_id is None:
        raise VersionsError(f"publish {p.publish_id} predates data versions: its tables were not recorded in the "
                            f"lake (schema {PUBLISHED}); only later publishes can be queried as of")
    return int(p.published_snapshot_id)


# ---------------------------------------------------------------------------------------------------- connections


def _base_connection(home: Home, con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
    con = con or duckdb.connect(":memory:")
    try:
        lake.prepare(con, home)
    except Exception:
        con.close()
        raise
    return con


def _attach_lake_at(con, home: Home, alias: str, snapshot: int) -> None:
    if not lake.exists(home):
        raise VersionsError(f"no lake at {home.lake_catalog}")
    sql = lake.attach_sql(home, alias=alias, read_only=True, snapshot=snapshot)
    try:
        con.execute(sql)
    except duckdb.Error as exc:
        raise VersionsError(f"lake snapshot {snapshot} cannot be opened in {home.lake_catalog} (expired?): {exc}") \
            from exc


def open_as_of(home: Home, publish: Publish | None, *,
               memory_limit: str = readonly_query.DEFAULT_MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    """A locked-down read-only session whose default schema holds the marts of ``publish`` by bare name.

    ``publish`` None: the current serving file (``analytics`` schema), opened read-only with any WAL beside it
    ignored. Otherwise the lake is attached read-only at the publish's ``published`` snapshot (``SNAPSHOT_VERSION``):
    DuckLake time travel, nothing copied, no lake file named by SQL. Either way the session then has no file access
    beyond what that attach reads (``readonly_query.lock_down``).
    """
    con = readonly_query.connect(memory_limit)
    try:
        if publish is None:
            try:
                serving_file.attach_read_only(con, home.serving_db, "srv")
            except serving_file.ServingFileError as exc:
                raise VersionsError(str(exc)) from None
            con.execute(f"USE srv.{serving.SCHEMA}")
            readonly_query.lock_down(con, [])
        else:
            snapshot = _recorded(publish)
            _base_connection(home, con)
            _attach_lake_at(con, home, "at_publish", snapshot)
            con.execute(f"USE at_publish.{PUBLISHED}")
            # DuckLake reads its Parquet through DuckDB's file system: that directory stays readable, for the
            # attach only (check_read_only keeps SQL from naming a file).
            readonly_query.lock_down(con, [home.lake_files])
    except Exception:
        con.close()
        raise
    return con


def check_read_only(sql: str) -> str:
    """The statement to run if ``sql`` only reads marts (see ``readonly_query.check``); else VersionsError."""
    try:
        return readonly_query.check(sql).sql
    except readonly_query.QueryRefused as exc:
        raise VersionsError(str(exc)) from None


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    publish: Publish | None  # None: the current serving file


def query(home: Home, sql: str, as_of: str | int | None = None, *,
          timeout: float = readonly_query.DEFAULT_TIMEOUT_S,
          memory_limit: str = readonly_query.DEFAULT_MEMORY_LIMIT,
          max_rows: int = readonly_query.DEFAULT_MAX_ROWS) -> QueryResult:
    """Run one read-only SELECT against the marts of publish ``as_of`` (id or timestamp) or the current serving file.

    Marts are addressed by bare name (``select ... from mart_daily_rankings``). Anything that could write or read
    beyond the marts is refused before a connection is opened; the query is stopped after ``timeout`` seconds, on
    Ctrl-C, above ``memory_limit`` or beyond ``max_rows`` rows (VersionsError, nothing written either way).
    """
    statement = check_read_only(sql)  # before anything is opened: a refused query touches nothing
    if timeout <= 0:
        raise VersionsError(f"--timeout must be a positive number of seconds, got {timeout:g}")
    if max_rows < 1:
        raise VersionsError(f"--max-rows must be at least 1, got {max_rows}")
    publish = resolve_publish(home, as_of) if as_of is not None else None
    try:
        con = open_as_of(home, publish, memory_limit=memory_limit)
    except readonly_query.QueryRefused as exc:
        raise VersionsError(str(exc)) from None
    where = f"publish {publish.publish_id}" if publish else "the current serving file"
    try:
        try:
            columns, rows = readonly_query.run(con, statement, timeout=timeout, max_rows=max_rows)
        except readonly_query.QueryAborted as exc:
            raise VersionsError(f"{exc} (against {where})") from None
        except duckdb.Error as exc:
            raise VersionsError(f"query failed against {where}: {readonly_query.one_line(exc)}; marts there: "
                                f"{', '.join(_marts_in(con))}") from None
        return QueryResult(columns, rows, publish)
    finally:
        con.close()


def _marts_in(con) -> list[str]:
    db, schema = con.execute("SELECT current_database(), current_schema()").fetchone()
    return [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = ? ORDER BY 1",
        [db, schema]).fetchall() if r[0] not in _NOT_MARTS]


def _columns(con, relation: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]


# ---------------------------------------------------------------------------------------------------- diff


@dataclass(frozen=True)
class PartitionDiff:
    mart: str
    partition: dict[str, Any]  # {} for an unpartitioned mart
    added: int
    removed: int
    changed: int

    def label(self) -> str:
        return "/".join(str(v) for v in self.partition.values()) or "(all)"


@dataclass
class DiffResult:
    a: Publish
    b: Publish
    marts: list[str]
    partitions: list[PartitionDiff] = field(default_factory=list)

    def summary(self) -> str:
        added = sum(p.added for p in self.partitions)
        removed = sum(p.removed for p in self.partitions)
        changed = sum(p.changed for p in self.partitions)
        marts = sorted({p.mart for p in self.partitions})
        return (f"publish {self.a.publish_id} -> {self.b.publish_id}: {len(self.partitions)} partitions differ in "
                f"{len(marts)} of {len(self.marts)} marts; {added} rows added, {removed} removed, {changed} changed")


def diff(home: Home, a: str | int, b: str | int, mart: str | None = None) -> DiffResult:
    """Rows added, removed and changed per mart and partition from publish ``a`` to publish ``b``."""
    pa, pb = resolve_publish(home, a), resolve_publish(home, b)
    sa, sb = _recorded(pa), _recorded(pb)
    con = _base_connection(home)
    try:
        _attach_lake_at(con, home, "pa", sa)
        _attach_lake_at(con, home, "pb", sb)
        marts_a, marts_b = set(_published_marts(con, "pa")), set(_published_marts(con, "pb"))
        names = sorted(marts_a | marts_b)
        if mart is not None:
            if mart not in names:
                raise VersionsError(f"unknown mart {mart!r}: publishes {pa.publish_id} and {pb.publish_id} have "
                                    f"{', '.join(names)}")
            names = [mart]
        result = DiffResult(pa, pb, names)
        for name in names:
            result.partitions += _diff_mart(con, name, name in marts_a, name in marts_b)
        return result
    finally:
        con.close()


def _published_marts(con, db: str) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = ? ORDER BY 1",
        [db, PUBLISHED]).fetchall() if r[0] not in _NOT_MARTS]


def _diff_mart(con, name: str, in_a: bool, in_b: bool) -> list[PartitionDiff]:
    rel_a, rel_b = f"pa.{PUBLISHED}.{_ident(name)}", f"pb.{PUBLISHED}.{_ident(name)}"
    cols_a = _columns(con, rel_a) if in_a else []
    cols_b = _columns(con, rel_b) if in_b else []
    cols = cols_b or cols_a
    common = [c for c in cols if (not in_a or c in cols_a) and (not in_b or c in cols_b)]
    parts = [c for c in PARTITIONS.get(name, ()) if c in common]
    grain = list(GRAINS.get(name, ()))
    # A grain column missing on either side (a renamed column): fall back to whole-row identity.
    key = grain if grain and all(c in common for c in grain) else common  # no grain: a row is its whole content, so a change shows as removed + added

    def side(rel, present):
        if not present:
            # A mart missing on one side: every row of the other side is added (or removed).
            return f"(SELECT {', '.join('NULL::VARCHAR AS ' + _ident(c) for c in set(parts + key))}, " \
                   f"NULL::VARCHAR AS _h WHERE false)"
        return (f"(SELECT {', '.join(map(_ident, dict.fromkeys(parts + key)))}, "
                f"md5(CAST(struct_pack({', '.join(f'{_ident(c)} := {_ident(c)}' for c in common)}) AS VARCHAR)) "
                f"AS _h FROM {rel})")

    on = " AND ".join(f"a.{_ident(c)} IS NOT DISTINCT FROM b.{_ident(c)}" for c in key)
    part_sel = ", ".join(f"coalesce(a.{_ident(c)}, b.{_ident(c)}) AS {_ident(c)}" for c in parts)
    group = f"GROUP BY {', '.join(str(i + 1) for i in range(len(parts)))}" if parts else ""
    sql = f"""
        SELECT {part_sel + ',' if parts else ''}
               count(*) FILTER (WHERE a._h IS NULL) AS added,
               count(*) FILTER (WHERE b._h IS NULL) AS removed,
               count(*) FILTER (WHERE a._h <> b._h) AS changed
        FROM {side(rel_a, in_a)} a FULL OUTER JOIN {side(rel_b, in_b)} b ON {on}
        {group}
        HAVING count(*) FILTER (WHERE a._h IS NULL OR b._h IS NULL OR a._h <> b._h) > 0
        {'ORDER BY ' + ', '.join(str(i + 1) for i in range(len(parts))) if parts else ''}"""
    out = []
    for row in con.execute(sql).fetchall():
        part = {c: (v.isoformat() if isinstance(v, dt.date) else v) for c, v in zip(parts, row)}
        added, removed, changed = row[len(parts):]
        out.append(PartitionDiff(name, part, int(added), int(removed), int(changed)))
    return out


# ---------------------------------------------------------------------------------------------------- lineage


@dataclass(frozen=True)
class PayloadLineage:
    """One raw payload version behind a mart row, and the lake snapshot that landed it."""

    payload_sha256: str
    chart: str  # the chart key label, store/country/device/chart[/genre]/date
    source_url: str | None
    source_format: str | None
    fetched_at: dt.datetime | None
    run_id: str | None
    rows: int
    landed_snapshot_id: int
    landed_message: str | None  # None when that snapshot was expired by maintenance
    landed_extra: dict | None
    used: bool  # the version the marts were built from: current in raw.payload_versions at that snapshot
    captured_at: dt.datetime | None = None  # what versions are ordered by (the fetch or the archive's capture time)


@dataclass
class Lineage:
    mart: str
    row: dict[str, Any]
    publish: Publish | None
    lake_snapshot_id: int
    payloads: list[PayloadLineage]


def lineage(home: Home, mart: str, keys: dict[str, str], as_of: str | int | None = None) -> Lineage:
    """The raw payloads, source URLs, fetch times, run ids and lake snapshots one mart row came from.

    ``keys`` are ``column=value`` pairs that must pick exactly one row of ``mart`` (current serving file, or
    publish ``as_of``). Raw rows are looked up in the lake as of that publish's ``lake_snapshot_id``, by the
    columns the mart row shares with ``raw.chart_entries`` (the exact payload hash where the mart carries it).
    """
    if not keys:
        raise VersionsError(f"lineage {mart}: give column=value pairs that identify one row")
    publish = resolve_publish(home, as_of) if as_of is not None else None
    if publish is None:
        log = publishes(home)
        if not log:
            raise VersionsError(f"nothing published yet: {home.serving_db} does not exist")
        current = log[-1]
    else:
        current = publish
    con = open_as_of(home, publish)
    try:
        marts = _marts_in(con)
        if mart not in marts:
            raise VersionsError(f"unknown mart {mart!r}: marts are {', '.join(marts)}")
        cols = _columns(con, _ident(mart))
        bad = sorted(set(keys) - set(cols))
        if bad:
            raise VersionsError(f"mart {mart} has no column {', '.join(bad)}; columns: {', '.join(cols)}")
        where = " AND ".join(f"CAST({_ident(c)} AS VARCHAR) = ?" for c in keys)
        cur = con.execute(f"SELECT * FROM {_ident(mart)} WHERE {where} LIMIT 2", list(keys.values()))
        rows = cur.fetchall()
        names = [d[0] for d in cur.description]
    finally:
        con.close()
    if not rows:
        raise VersionsError(f"no row of {mart} has {_fmt_keys(keys)}")
    if len(rows) > 1:
        raise VersionsError(f"{_fmt_keys(keys)} matches more than one row of {mart}: add more of its columns "
                            f"(grain: {', '.join(GRAINS.get(mart, names))})")
    row = dict(zip(names, rows[0]))
    link = [c for c in _RAW_LINK if c in row and row[c] is not None]
    if not link:
        raise VersionsError(f"mart {mart} has none of the columns that lead to raw rows ({', '.join(_RAW_LINK)})")
    return Lineage(mart, row, publish, current.lake_snapshot_id,
                   _raw_payloads(home, current.lake_snapshot_id, {c: row[c] for c in link}))


def _raw_payloads(home: Home, snapshot: int, match: dict[str, Any]) -> list[PayloadLineage]:
    con = _base_connection(home)
    try:
        _attach_lake_at(con, home, "l", snapshot)
        where = " AND ".join(f"{_ident(c)} = ?" for c in match)
        key = ", ".join(_CHART_KEY)
        # Which version of each chart was current is raw.payload_versions' answer as of that snapshot (the one
        # staging read); the row's own version may not be it (the current one may not list the app).
        versions = lake.versions_relation(con, "l")
        sql = f"""
            WITH hit AS (
                SELECT {key}, payload_sha256, source_url, source_format, fetched_at, run_id, snapshot_id,
                       count(*) AS n
                FROM l.raw.chart_entries WHERE {where} GROUP BY ALL
            )
            SELECT hit.*, s.commit_message, s.commit_extra_info, c.captured_at, coalesce(c.is_current, false) AS used
            FROM hit LEFT JOIN l.snapshots() s ON s.snapshot_id = hit.snapshot_id
            LEFT JOIN {versions} c ON c.payload_sha256 = hit.payload_sha256
              AND {' AND '.join(f'c.{k} IS NOT DISTINCT FROM hit.{k}' for k in _CHART_KEY)}
            ORDER BY chart_date, country, device, chart, genre_id, c.captured_at, fetched_at, snapshot_id"""
        out = []
        cur = con.execute(sql, list(match.values()))
        names = [d[0] for d in cur.description]
        for r in cur.fetchall():
            d = dict(zip(names, r))
            genre = f"/genre={d['genre_id']}" if d["genre_id"] is not None else ""
            extra = d["commit_extra_info"]
            try:
                extra = json.loads(extra) if extra else None
            except ValueError:
                extra = {"text": extra}
            out.append(PayloadLineage(
                payload_sha256=d["payload_sha256"],
                chart=f"{d['store']}/{d['country']}/{d['device']}/{d['chart']}{genre}/{d['chart_date']}",
                source_url=d["source_url"], source_format=d["source_format"], fetched_at=d["fetched_at"],
                run_id=d["run_id"], rows=int(d["n"]), landed_snapshot_id=int(d["snapshot_id"]),
                landed_message=d["commit_message"], landed_extra=extra, used=bool(d["used"]),
                captured_at=d["captured_at"],
            ))
        return out
    finally:
        con.close()


def _fmt_keys(keys: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in keys.items())


# ---------------------------------------------------------------------------------------------------- reproducibility


@dataclass(frozen=True)
class MartCheck:
    """One mart of a publish against its rebuild from raw: row counts and content hashes."""

    mart: str
    published_rows: int
    published_hash: str
    rebuilt_rows: int
    rebuilt_hash: str
    excluded_partitions: int  # quarantined partitions of the publish, compared against the previous publish
    carry_over_ok: bool | None  # None: nothing was quarantined

    @property
    def matches(self) -> bool:
        return (self.published_hash == self.rebuilt_hash and self.published_rows == self.rebuilt_rows
                and self.carry_over_ok is not False)


def content_hash(con, relation: str, columns: list[str], where: str = "", params: list | None = None) -> tuple[int, str]:
    """(rows, hash) of a relation's content, independent of row order; duplicates count."""
    packed = ", ".join(f"{_ident(c)} := {_ident(c)}" for c in columns)
    row = con.execute(
        f"SELECT count(*), coalesce(md5(string_agg(h, ',' ORDER BY h)), md5('')) FROM "
        f"(SELECT md5(CAST(struct_pack({packed}) AS VARCHAR)) AS h FROM {relation} {where})",
        params or [],
    ).fetchone()
    return int(row[0]), row[1]


def published_hashes(home: Home, ref: str | int) -> dict[str, tuple[int, str]]:
    """(rows, content hash) per mart as publish ``ref`` wrote them."""
    p = resolve_publish(home, ref)
    con = _base_connection(home)
    try:
        _attach_lake_at(con, home, "p", _recorded(p))
        return {m: content_hash(con, f"p.{PUBLISHED}.{_ident(m)}", sorted(_columns(con, f"p.{PUBLISHED}.{_ident(m)}")))
                for m in _published_marts(con, "p")}
    finally:
        con.close()


def rebuild(home: Home, ref: str | int, scratch: str | os.PathLike, *, keep: bool = False) -> list[MartCheck]:
    """Rebuild every mart from ``raw.*`` as of publish ``ref``'s lake snapshot in ``scratch`` and compare.

    The scratch home gets a fresh DuckLake whose raw tables are the source lake's raw tables at the publish's
    ``lake_snapshot_id`` (read through a read-only attach, the source is never written); the dbt project then
    builds everything there (models and seeds, no tests) with its own target and log paths. Per mart, the rows
    outside the publish's quarantined partitions must hash equal; inside them, the publish must equal the
    previous publish (carry-over), which is how those rows were produced.
    """
    p = resolve_publish(home, ref)
    published = _recorded(p)
    scratch_home = Home(Path(scratch).resolve())
    if scratch_home.root.exists() and any(scratch_home.root.iterdir()):
        raise VersionsError(f"scratch location {scratch_home.root} is not empty")
    scratch_home.ensure()
    try:
        with lake.session(scratch_home) as con:
            _attach_lake_at(con, home, "src", p.lake_snapshot_id)
            con.execute("BEGIN")
            con.execute("CREATE SCHEMA raw")
            # Staging reads the quarantine too: what publish N's marts were built from includes what was held back.
            for table in ("chart_entries", "payloads", "quarantined_payloads"):
                con.execute(f"CREATE TABLE raw.{table} AS SELECT * FROM src.raw.{table}")
            lake.set_commit_message(con, f"raw as of lake snapshot {p.lake_snapshot_id} (publish {p.publish_id})",
                                    source=str(home.lake_catalog), publish_id=p.publish_id)
            con.execute("COMMIT")
            lake.ensure_raw_schema(con)  # the version view staging reads (and captured_at, if that lake predates it)
        _run_dbt(scratch_home)
        return _compare(home, scratch_home, p, published)
    finally:
        if not keep:
            shutil.rmtree(scratch_home.root, ignore_errors=True)


def _run_dbt(scratch: Home) -> None:
    dbt = Path(sys.executable).parent / "dbt"
    if not dbt.exists():
        raise VersionsError(f"dbt not found beside {sys.executable}")
    proc = subprocess.run(
        [str(dbt), "build", "--exclude", "resource_type:test", "resource_type:unit_test",
         "--target-path", str(scratch.root / "dbt_target"), "--log-path", str(scratch.root / "dbt_logs")],
        cwd=DBT_PROJECT_DIR, env={**os.environ, "CHARTLAKE_HOME": str(scratch.root)},
        capture_output=True, text=True, timeout=1800,
    )
    if proc.returncode != 0:
        raise VersionsError(f"dbt build in scratch home {scratch.root} failed:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")


def _compare(home: Home, scratch: Home, p: Publish, published: int) -> list[MartCheck]:
    con = _base_connection(home)
    try:
        _attach_lake_at(con, home, "p", published)
        con.execute(lake.attach_sql(scratch, alias="r", read_only=True))
        quarantined = con.execute(
            f"SELECT DISTINCT country, chart_date FROM p.{PUBLISHED}.{serving.QUARANTINE} WHERE publish_id = ?",
            [p.publish_id]).fetchall() if serving.QUARANTINE in _all_tables(con, "p") else []
        prev = _previous(home, p)
        if quarantined and prev is not None:
            _attach_lake_at(con, home, "prev", _recorded(prev))
        checks = []
        for m in _published_marts(con, "p"):
            pub_rel, new_rel = f"p.{PUBLISHED}.{_ident(m)}", f"r.marts.{_ident(m)}"
            cols = sorted(_columns(con, pub_rel))
            try:
                new_cols = sorted(_columns(con, new_rel))
            except duckdb.Error:
                new_cols = []
            parts = [c for c in PARTITIONS.get(m, ()) if c in cols]
            where, params = _outside(parts, quarantined)
            pub_n, pub_h = content_hash(con, pub_rel, cols, where, params)
            if new_cols == cols:
                new_n, new_h = content_hash(con, new_rel, cols, where, params)
            else:
                new_n, new_h = -1, f"columns differ: {new_cols}"
            carry = None
            if quarantined and parts:
                inside = where.replace("WHERE NOT ", "WHERE ", 1)
                if prev is None:
                    carry = content_hash(con, pub_rel, cols, inside, params)[0] == 0
                else:
                    carry = content_hash(con, pub_rel, cols, inside, params) == \
                        content_hash(con, f"prev.{PUBLISHED}.{_ident(m)}", cols, inside, params)
            checks.append(MartCheck(m, pub_n, pub_h, new_n, new_h, len(quarantined) if parts else 0, carry))
        return checks
    finally:
        con.close()


def _outside(parts: list[str], quarantined: list[tuple]) -> tuple[str, list]:
    if not parts or not quarantined:
        return "", []
    clauses, params = [], []
    for country, chart_date in quarantined:
        values = {"country": country, "chart_date": chart_date}
        clauses.append("(" + " AND ".join(f"{_ident(c)} IS NOT DISTINCT FROM ?" for c in parts) + ")")
        params += [values[c] for c in parts]
    return f"WHERE NOT ({' OR '.join(clauses)})", params


def _previous(home: Home, p: Publish) -> Publish | None:
    earlier = [q for q in publishes(home) if q.publish_id < p.publish_id and q.published_snapshot_id is not None]
    return earlier[-1] if earlier else None


def _all_tables(con, db: str) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = ?", [db, PUBLISHED]
    ).fetchall()}


# ---------------------------------------------------------------------------------------------------- maintenance


@dataclass
class MaintenanceResult:
    files_before: int
    files_after: int
    merged_tables: int
    expired: list[int]
    kept_for_publishes: list[int]
    files_deleted: int


def referenced_snapshots(home: Home, con=None) -> set[int]:
    """Snapshots a publish needs: the marts/raw it was read from and its own ``published`` commit.

    From the serving file's publish log and, should that file be lost, from the lake's own ``publish N`` commits.
    """
    refs: set[int] = set()
    for p in publishes(home):
        refs.add(p.lake_snapshot_id)
        if p.published_snapshot_id is not None:
            refs.add(int(p.published_snapshot_id))
    if con is not None:
        for sid, extra in con.execute(
            f"SELECT snapshot_id, commit_extra_info FROM {lake.LAKE_ALIAS}.snapshots() "
            "WHERE commit_message LIKE 'publish %'"
        ).fetchall():
            refs.add(int(sid))
            try:
                src = json.loads(extra or "{}").get("source_snapshot")
            except ValueError:
                src = None
            if src is not None:
                refs.add(int(src))
    return refs


def maintain(home: Home, *, older_than: dt.timedelta = dt.timedelta(days=7), keep_last: int = 10,
             cleanup_older_than: dt.timedelta | None = dt.timedelta(hours=1), dry_run: bool = False,
             now: dt.datetime | None = None) -> MaintenanceResult:
    """Compact small files, expire old snapshots no publish references, delete files nothing needs any more.

    A snapshot is expired only if it is older than ``older_than``, not among the newest ``keep_last``, and not
    referenced by any publish (``referenced_snapshots``); expiry is by explicit version list, never by age alone.
    Files dropped by expiry or merging are deleted once they were scheduled more than ``cleanup_older_than`` ago
    (None: all of them now), so a reader still scanning one keeps it for a while.
    """
    if keep_last < 1:
        raise VersionsError(f"keep_last must be at least 1, got {keep_last}")
    if not lake.exists(home):
        raise VersionsError(f"no lake at {home.lake_catalog}")
    now = now or dt.datetime.now(dt.timezone.utc)
    before = _count_files(home)
    with lake.session(home) as con:
        refs = referenced_snapshots(home, con)
        merged = 0
        if not dry_run:
            merged = len(con.execute(f"CALL ducklake_merge_adjacent_files('{lake.LAKE_ALIAS}')").fetchall())
        snaps = con.execute(
            f"SELECT snapshot_id, snapshot_time FROM {lake.LAKE_ALIAS}.snapshots() ORDER BY snapshot_id DESC"
        ).fetchall()
        newest = {s for s, _ in snaps[:keep_last]}
        cutoff = now - older_than
        expire = sorted(s for s, t in snaps if s not in newest and s not in refs and _aware(t) < cutoff)
        if expire and not dry_run:
            con.execute(f"CALL ducklake_expire_snapshots('{lake.LAKE_ALIAS}', versions => "
                        f"[{', '.join(map(str, expire))}])")
        deleted = 0
        if not dry_run:
            if cleanup_older_than is None:
                deleted = len(con.execute(
                    f"CALL ducklake_cleanup_old_files('{lake.LAKE_ALIAS}', cleanup_all => true)").fetchall())
            else:
                ts = (now - cleanup_older_than).isoformat()
                deleted = len(con.execute(
                    f"CALL ducklake_cleanup_old_files('{lake.LAKE_ALIAS}', older_than => '{ts}'::TIMESTAMPTZ)"
                ).fetchall())
    kept = sorted(r for r in refs if any(s == r for s, _ in snaps))
    return MaintenanceResult(before, _count_files(home), merged, expire, kept, deleted)


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.timezone.utc)


def _count_files(home: Home) -> int:
    return sum(1 for _ in home.lake_files.rglob("*.parquet"))


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
