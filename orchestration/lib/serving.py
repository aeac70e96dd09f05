"""The serving writer: publish audited marts from the lake into the DuckDB file BI tools read.

Write-audit-publish, last step. The lake (DuckLake) holds every version of the marts; BI tools read one
small DuckDB file, ``<home>/serving/chartlake.duckdb``, read-only. This module builds a *new* file next to it
from one lake snapshot (time travel, ``AT (VERSION => n)``), then fsyncs it and renames it into place with
``os.replace``. So:

- a reader holding the old file open keeps its inode and keeps reading the old, complete state; a reader
  that opens the path afterwards gets the new, complete state; nobody ever sees a half-written file;
- the pipeline never opens the serving path through DuckDB at all (it reads a private byte copy of the previous
  file, checked against the digest its publish recorded, else rebuilt from the lake), so no BI tool, even one
  wrongly holding the file read-write, blocks a publish, and a stale ``.wal`` beside it is never replayed onto a new
  file (``serving_file``).

Grain of what is written, in schema ``analytics``:

- one table per mart (same name as given in ``marts``), rows as of the lake snapshot, except the rows of
  quarantined partitions, which are carried over unchanged from the previous serving file so an analyst keeps
  the last good data for that country/day;
- ``publish_log``: one row per publish ever made (carried over, plus the new one);
- ``quarantine``: one row per quarantined partition per publish (carried over, plus the new ones).

The new file starts as a byte copy of the previous one (same storage version, still written under a temporary
name and renamed), and only what changed is replaced in it: the chart dates a mart's rows changed in the lake
since the previous publish's snapshot, found in DuckLake's catalog without reading data, plus the partitions
the previous publish held back. So a one-day update costs a day, not the history. A first publish, a previous
file that is not a usable base, or a change to most rows writes the file from scratch instead.

Every publish is also recorded in the lake (``record_in_lake``, on by default): the published tables (marts exactly
as written to the file, quarantine carry-over included, plus ``quarantine``) go to the lake schema ``published``
in one DuckLake commit labelled ``publish <id>`` (the same rows deleted and inserted as in the file, or whole
tables when the file was written anew), and that commit's snapshot goes into
``publish_log.published_snapshot_id``. Time travel on the lake's ``marts.*`` at ``lake_snapshot_id`` is not
enough to answer "what did publish N say": a quarantined partition was published from the previous file, not
from the lake. ``orchestration.lib.versions`` answers as-of queries, diffs and lineage from ``published.*``.

The file is written with an explicit ``STORAGE_VERSION`` (v1.0.0): BI drivers bundle older DuckDB releases,
and a file in DuckDB 1.5's default storage format does not open in them.

Readers in a long-lived process should open the file with ``duckdb.connect(':memory:')`` + ``ATTACH ...
(READ_ONLY)`` or close every connection before reopening: ``duckdb.connect(path)`` reuses an already-open
database instance for the same path, i.e. the *old* file after a swap (see ``read_publish_log``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import duckdb

from orchestration.config import Home
from orchestration.lib import lake, serving_file

SCHEMA = "analytics"
# Oldest storage format DuckDB 1.5.5 writes: readable by DuckDB >= 1.0 (Metabase's driver bundled 1.4 in 2026).
STORAGE_VERSION = "v1.0.0"
PUBLISH_LOG = "publish_log"
QUARANTINE = "quarantine"
# Lake schema holding what each publish wrote (one DuckLake commit per publish, see record_in_lake).
PUBLISHED_SCHEMA = "published"
# Partition keys that get their own column in ``analytics.quarantine`` (the chart key, DESIGN.md); any other
# key an entry names is kept in the ``partition`` JSON column.
QUARANTINE_KEY_COLUMNS: list[tuple[str, str]] = [
    ("country", "VARCHAR"),
    ("chart_date", "DATE"),
    ("store", "VARCHAR"),
    ("device", "VARCHAR"),
    ("chart", "VARCHAR"),
    ("genre_id", "INTEGER"),
]
_RESERVED = {PUBLISH_LOG, QUARANTINE}
_RELATION = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}")

_PUBLISH_LOG_DDL = f"""CREATE TABLE {{db}}.{SCHEMA}.{PUBLISH_LOG} (
  publish_id BIGINT NOT NULL,
  published_at TIMESTAMP NOT NULL,
  lake_snapshot_id BIGINT NOT NULL,
  run_id VARCHAR,
  partitions_published BIGINT NOT NULL,
  partitions_quarantined BIGINT NOT NULL,
  check_summary VARCHAR,
  published_snapshot_id BIGINT
)"""
_QUARANTINE_DDL = (
    f"CREATE TABLE {{db}}.{SCHEMA}.{QUARANTINE} (\n  publish_id BIGINT NOT NULL,\n  "
    + ",\n  ".join(f"{c} {t}" for c, t in QUARANTINE_KEY_COLUMNS)
    + ",\n  partition VARCHAR,\n  reason VARCHAR,\n  payload_sha256 VARCHAR\n)"
)
_OWN_COMMENTS: dict[str, dict[str, Any]] = {
    PUBLISH_LOG: {
        "description": "One row per publish of this file: which lake snapshot it shows, which run wrote it, "
        "what was quarantined and the check results it was audited with. Grain: publish.",
        "columns": {
            "publish_id": "Increasing number of the publish; the highest one is what this file shows.",
            "published_at": "When the file was written (UTC).",
            "lake_snapshot_id": "DuckLake snapshot the marts were read from (query it again with "
            "AT (VERSION => lake_snapshot_id)).",
            "run_id": "Orchestrator run that published.",
            "partitions_published": "Distinct partitions (per partition-column set) taken from the lake.",
            "partitions_quarantined": "Quarantined partitions: their rows were kept from the previous publish.",
            "check_summary": "JSON: the data-quality check results this publish was audited with.",
            "published_snapshot_id": "DuckLake snapshot holding exactly the tables this publish wrote, in lake "
            "schema published (chartlake query --as-of <publish_id>); null if the publish was not recorded.",
        },
    },
    QUARANTINE: {
        "description": "Partitions held back by a publish: their rows in the marts are the last good ones "
        "(carried over from the previous publish), not the lake's. Grain: publish x partition.",
        "columns": {
            "publish_id": "Publish that held the partition back (see publish_log).",
            "country": "ISO 3166-1 alpha-2 country code, lower case.",
            "chart_date": "Chart day.",
            "store": "Store, when the quarantine is narrower than country x day.",
            "device": "Device (iphone|ipad), when the quarantine is narrower than country x day.",
            "chart": "Chart (top-free|top-paid|top-grossing), when narrower than country x day.",
            "genre_id": "Genre (null: all apps, or the key was not given; see partition).",
            "partition": "JSON of exactly the keys the quarantine names (absent key = every value).",
            "reason": "Why the partition failed its audit.",
            "payload_sha256": "Raw payload behind the failure, if one is known (file in the raw store).",
        },
    },
}


class ServingError(RuntimeError):
    pass


@dataclass(frozen=True)
class MartSpec:
    """A lake relation to publish and the columns that make up its partitions.

    ``relation`` is the relation inside the lake (``marts.mart_daily_rankings``). ``partition_columns`` is
    empty for marts that are not partitioned (dimensions): those are always published from the lake.
    ``window_column`` (one of the partition columns, e.g. ``chart_date``) lets a publish replace only the values
    of that column the lake changed since the previous publish; without it the mart is replaced whole.
    """

    relation: str
    partition_columns: tuple[str, ...] = ()
    window_column: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "partition_columns", tuple(self.partition_columns))
        # The relation is spliced into SQL: accept only a dotted name of plain identifiers.
        if not _RELATION.fullmatch(self.relation):
            raise ServingError(f"MartSpec: {self.relation!r} is not a lake relation name like marts.fct_x")
        if self.window_column is not None and self.window_column not in self.partition_columns:
            raise ServingError(f"MartSpec {self.relation}: window_column {self.window_column!r} is not one of its "
                               f"partition columns {list(self.partition_columns)}")


@dataclass(frozen=True)
class QuarantineEntry:
    """One partition held back from publication.

    ``country`` and ``chart_date`` always; ``keys`` narrows it further (``store``, ``device``, ``chart``,
    ``genre_id``, ...). A key that is absent means every value; ``genre_id: None`` present means the overall
    chart. Applied to a mart, only the keys that are among the mart's partition columns count, so a
    quarantine narrower than a mart's partitions holds back the whole enclosing partition (never publishes
    rows derived from a bad payload).
    """

    country: str
    chart_date: dt.date
    reason: str
    payload_sha256: str | None = None
    keys: Mapping[str, Any] = field(default_factory=dict)

    def partition(self) -> dict[str, Any]:
        clash = {"country", "chart_date"} & set(self.keys)
        if clash:
            raise ServingError(f"quarantine entry for {self.country}/{self.chart_date}: {sorted(clash)} "
                               "belong in their own fields, not in keys")
        return {"country": self.country, "chart_date": _as_date(self.chart_date), **dict(self.keys)}

    @classmethod
    def for_chart(cls, key, reason: str, payload_sha256: str | None = None) -> "QuarantineEntry":
        """Quarantine exactly one chart (an ``orchestration.sources.canonical.ChartKey``)."""
        return cls(
            country=key.country,
            chart_date=key.chart_date,
            reason=reason,
            payload_sha256=payload_sha256,
            keys={"store": key.store, "device": key.device, "chart": key.chart, "genre_id": key.genre_id},
        )


@dataclass(frozen=True)
class PublishResult:
    publish_id: int
    path: Path
    lake_snapshot_id: int
    row_counts: dict[str, int]  # analytics table -> rows in the new file (marts, publish_log, quarantine)
    carried_over: dict[str, int]  # mart -> rows kept from the previous file for quarantined partitions
    partitions_published: int
    partitions_quarantined: int
    published_snapshot_id: int | None = None  # lake snapshot of published.* for this publish
    # mart -> how the new file got it: "new file" (written from scratch), "whole" (replaced in a copy of the
    # previous file), "partitions" (only changed/released partitions replaced in that copy), "unchanged".
    refresh: dict[str, str] = field(default_factory=dict)
    refreshed_rows: dict[str, int] = field(default_factory=dict)  # mart -> rows written from the lake
    lake_recording: str | None = None  # "whole" or "partitions": how published.* was updated (None: not recorded)


def publish(
    home: Home,
    *,
    lake_snapshot_id: int,
    marts: Mapping[str, MartSpec],
    run_id: str,
    quarantined: list[QuarantineEntry],
    check_summary: Mapping[str, Any],
    descriptions: Mapping[str, Any],
    record_in_lake: bool = True,
    incremental: bool = True,
) -> PublishResult:
    """Write a new serving file from lake snapshot ``lake_snapshot_id`` and swap it into place.

    ``marts`` maps the serving table name to the lake relation. ``descriptions`` maps a table name to
    ``{"description": str, "columns": {column: str | {"description": str}}}`` (the shape of a dbt
    manifest node, so dbt's docs can be fed as they are); missing entries just leave no comment.
    Publishes are serialized with a lock file beside the serving file. With ``record_in_lake`` the published
    tables are committed to the lake's ``published`` schema before the swap; if that commit fails, nothing is
    swapped. (A crash between that commit and the swap leaves a lake commit no publish_log names: harmless,
    the next publish reuses the id and the log points at its own snapshot.)

    With ``incremental`` (the default) the new file starts as a copy of the previous one and only what changed is
    replaced: per mart with a ``window_column``, the partitions whose lake rows changed since the previous
    publish's snapshot (told from DuckLake's catalog) plus those the previous publish held back; other marts
    whole. The lake's ``published`` schema gets the same delete + insert. Without a usable previous file (none,
    another storage version, no publish log) or when most rows changed, the file is written anew as with
    ``incremental=False``; the rows published are the same either way.
    """
    if not marts:
        raise ServingError("publish: no marts given")
    bad = sorted(set(marts) & _RESERVED)
    if bad:
        raise ServingError(f"publish: mart names {bad} clash with the serving file's own tables")
    for name in marts:
        if not name.isidentifier():
            raise ServingError(f"publish: mart name {name!r} is not a plain identifier")
    entries = [(q, q.partition()) for q in quarantined]
    summary_json = json.dumps(check_summary, sort_keys=True, default=str)

    home.serving.mkdir(parents=True, exist_ok=True)
    target = home.serving_db
    with _publish_lock(target):
        serving_file.remove_stale_links(target)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
        base = tmp.with_name(tmp.name[: -len(".tmp")] + ".prev.tmp")
        try:
            result, lake_plans, prev_published = _build(
                home, tmp, base, target, lake_snapshot_id, marts, run_id, entries, summary_json, descriptions,
                incremental,
            )
            if record_in_lake:
                published, how = _record_in_lake(home, tmp, result.publish_id, [*marts, QUARANTINE, PUBLISH_LOG],
                                                 run_id, lake_snapshot_id, lake_plans, prev_published)
                _set_published_snapshot(tmp, result.publish_id, published)
                result = dataclasses.replace(result, published_snapshot_id=published, lake_recording=how)
            _fsync_path(tmp)
            serving_file.swap(tmp, target)
        finally:
            for leftover in (tmp, base):
                for path in (leftover, serving_file.wal_of(leftover)):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
    return result


@dataclass(frozen=True)
class _Previous:
    """What the next publish needs to know about the serving file it replaces."""

    publish_id: int
    lake_snapshot_id: int
    published_snapshot_id: int | None
    quarantine: list[tuple[None, dict]]  # the last publish's quarantined partitions, as (entry, partition) pairs
    columns: dict[str, list[tuple[str, str]]]  # analytics table -> [(column, type)] in order


@dataclass(frozen=True)
class _Refresh:
    """The rows of one mart a publish replaces in a copy of the previous file (None: none changed)."""

    predicate: str | None
    params: list


def _build(home, tmp, base, target, snapshot, marts, run_id, entries, summary_json, descriptions, incremental
           ) -> tuple[PublishResult, dict[str, tuple[str | None, list] | None], int | None]:
    """Write the new file at ``tmp``; also how each table changed (for the lake) and the previous publish's
    ``published_snapshot_id``.

    The previous file is read from ``base``, a private byte copy (no DuckDB lock on ``target``, no WAL: a client
    holding it read-write blocks nothing). A copy whose bytes are not what its publish wrote is not used at all:
    the previous state is then rebuilt into ``base`` from the lake's last ``publish`` commit (``_previous_from_lake``)
    and the file written anew.
    """
    con = lake.connect(home, read_only=True)
    try:
        _check_snapshot(con, home, snapshot)
        has_prev = target.exists()
        if has_prev:
            try:
                trusted = serving_file.private_copy(target, base)
            except FileNotFoundError:
                has_prev, trusted = False, None  # swapped away by nobody else (publishes hold the lock): gone
            if trusted is False:
                _previous_from_lake(home, con, target, base)
                incremental = False
        if has_prev:
            con.execute(f"ATTACH '{_q(base)}' AS prev (READ_ONLY)")
        prev_tables = _tables(con, "prev") if has_prev else set()
        columns = {name: _mart_columns(con, name, spec, snapshot) for name, spec in marts.items()}
        prev = _previous(con, prev_tables) if has_prev and incremental else None
        plans: dict[str, _Refresh | None] = {}
        if prev is not None:
            plans = {name: _plan(con, spec, name, columns[name], snapshot, prev) for name, spec in marts.items()}
        if any(p is not None for p in plans.values()):
            con.execute("DETACH prev")
            result, lake_plans = _build_from_copy(con, tmp, base, target, snapshot, marts, columns, plans, prev,
                                                  run_id, entries, summary_json, descriptions)
            return result, lake_plans, prev.published_snapshot_id
        result = _build_new(con, tmp, target, snapshot, marts, prev_tables, run_id, entries, summary_json,
                            descriptions)
        if has_prev:
            con.execute("DETACH prev")
        return result, {}, None
    finally:
        con.close()


def _previous_from_lake(home: Home, con, target: Path, base: Path) -> None:
    """Write into ``base`` the tables of the lake's last ``publish`` commit, as the serving file had them.

    For a previous file that cannot be trusted (a client wrote into it): what it should hold is in the lake, where
    every publish recorded its tables, publish log included (its own row without ``published_snapshot_id``, which
    is that commit's snapshot).
    """
    row = con.execute(
        f"SELECT max(snapshot_id) FROM {lake.LAKE_ALIAS}.snapshots() WHERE commit_message LIKE 'publish %'"
    ).fetchone()
    last = row[0] if row else None
    tables = set()
    if last is not None:
        con.execute(lake.attach_sql(home, alias="lake_prev", read_only=True)[:-1] + f", SNAPSHOT_VERSION {int(last)})")
        tables = {r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake_prev' AND schema_name = ?",
            [PUBLISHED_SCHEMA]).fetchall()}
    if PUBLISH_LOG not in tables:
        raise ServingError(
            f"{target} was changed by another client (its bytes are not those its publish wrote, "
            f"{serving_file.digest_path(target).name}) and the lake holds no publish log to rebuild it from; "
            f"move {target.name} aside only if you can recreate its history, or restore it from a backup")
    base.unlink(missing_ok=True)
    con.execute(f"ATTACH '{_q(base)}' AS b (STORAGE_VERSION '{STORAGE_VERSION}')")
    con.execute(f"CREATE SCHEMA b.{SCHEMA}")
    for t in sorted(tables):
        con.execute(f"CREATE TABLE b.{SCHEMA}.{_ident(t)} AS SELECT * FROM lake_prev.{PUBLISHED_SCHEMA}.{_ident(t)}")
    con.execute(f"UPDATE b.{SCHEMA}.{PUBLISH_LOG} SET published_snapshot_id = ? WHERE published_snapshot_id IS NULL "
                f"AND publish_id = (SELECT max(publish_id) FROM b.{SCHEMA}.{PUBLISH_LOG})", [int(last)])
    con.execute("CHECKPOINT b")
    con.execute("DETACH b")
    con.execute("DETACH lake_prev")


def _build_new(con, tmp, target, snapshot, marts, prev_tables, run_id, entries, summary_json, descriptions
               ) -> PublishResult:
    """A new file from scratch: every mart from the lake, quarantined partitions from the previous file."""
    con.execute(f"ATTACH '{_q(tmp)}' AS s (STORAGE_VERSION '{STORAGE_VERSION}')")
    con.execute(f"CREATE SCHEMA s.{SCHEMA}")

    row_counts: dict[str, int] = {}
    carried: dict[str, int] = {}
    published_parts: set[tuple] = set()
    for name, spec in marts.items():
        n, c, parts = _copy_mart(con, name, spec, snapshot, entries, f"s.{SCHEMA}.{_ident(name)}",
                                 ("prev", name) if name in prev_tables else None)
        row_counts[name], carried[name] = n, c
        published_parts |= parts

    prev_log = PUBLISH_LOG in prev_tables
    publish_id = 1
    con.execute(_PUBLISH_LOG_DDL.format(db="s"))
    if prev_log:
        con.execute(f"INSERT INTO s.{SCHEMA}.{PUBLISH_LOG} BY NAME SELECT * FROM prev.{SCHEMA}.{PUBLISH_LOG}")
        publish_id = con.execute(
            f"SELECT coalesce(max(publish_id), 0) + 1 FROM prev.{SCHEMA}.{PUBLISH_LOG}"
        ).fetchone()[0]
    con.execute(_QUARANTINE_DDL.format(db="s"))
    if QUARANTINE in prev_tables:
        con.execute(f"INSERT INTO s.{SCHEMA}.{QUARANTINE} BY NAME SELECT * FROM prev.{SCHEMA}.{QUARANTINE}")
    return _finish(con, target, marts, publish_id, snapshot, run_id, published_parts, entries, summary_json,
                   descriptions, row_counts, carried, refresh={name: "new file" for name in marts},
                   refreshed_rows={name: row_counts[name] - carried[name] for name in marts})


def _build_from_copy(con, tmp, base, target, snapshot, marts, columns, plans, prev: _Previous, run_id, entries,
                     summary_json, descriptions) -> tuple[PublishResult, dict]:
    """The previous file copied, then only what changed replaced: the cost follows the run's window.

    A mart whose ``_Refresh`` is known has the rows matching it deleted and read again from the lake, except in
    quarantined partitions (their rows stay: the last good ones); any other mart is rebuilt whole in the copy.
    """
    # The private copy of the previous file becomes the new file: a rename, not a query.
    os.replace(base, tmp)
    con.execute(f"ATTACH '{_q(tmp)}' AS s")
    copied = _tables(con, "s")
    row_counts: dict[str, int] = {}
    carried: dict[str, int] = {}
    refreshed: dict[str, int] = {}
    how: dict[str, str] = {}
    lake_plans: dict[str, tuple[str | None, list] | None] = {}
    published_parts: set[tuple] = set()
    for gone in sorted(copied - set(marts) - _RESERVED):
        con.execute(f"DROP TABLE s.{SCHEMA}.{_ident(gone)}")
    for name, spec in marts.items():
        plan = plans.get(name)
        table = f"s.{SCHEMA}.{_ident(name)}"
        if plan is None:
            staging = f"_chartlake_new_{name}"
            n, c, parts = _copy_mart(con, name, spec, snapshot, entries, f"s.{SCHEMA}.{_ident(staging)}",
                                     ("s", name) if name in copied else None)
            if name in copied:
                con.execute(f"DROP TABLE {table}")
            con.execute(f"ALTER TABLE s.{SCHEMA}.{_ident(staging)} RENAME TO {_ident(name)}")
            how[name], refreshed[name], lake_plans[name] = "whole", n - c, None
        else:
            types = dict(columns[name])
            qpred, qparams = _quarantine_predicate(spec, types, entries)
            cond, params = plan.predicate, list(plan.params)
            written = 0
            if cond is not None:
                if qpred:
                    cond, params = f"({cond}) AND NOT coalesce({qpred}, false)", params + qparams
                con.execute(f"DELETE FROM {table} WHERE {cond}", params)
                order = ", ".join(map(_ident, spec.partition_columns))
                written = con.execute(
                    f"INSERT INTO {table} SELECT * FROM {_lake_source(spec, snapshot)} WHERE {cond} ORDER BY {order}",
                    params,
                ).fetchone()[0]
            n = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            c = con.execute(f"SELECT count(*) FROM {table} WHERE coalesce({qpred}, false)", qparams).fetchone()[0] \
                if qpred else 0
            keep = f" WHERE NOT coalesce({qpred}, false)" if qpred else ""
            pcols = ", ".join(map(_ident, spec.partition_columns))
            parts = {(spec.partition_columns, tuple(r))
                     for r in con.execute(f"SELECT DISTINCT {pcols} FROM {table}{keep}", qparams).fetchall()}
            how[name] = "partitions" if cond is not None else "unchanged"
            refreshed[name], lake_plans[name] = written, (cond, params)
        row_counts[name], carried[name] = n, c
        published_parts |= parts

    publish_id = prev.publish_id + 1
    lake_plans[QUARANTINE] = ("publish_id = ?", [publish_id])
    # The previous row too: the lake got it before its published_snapshot_id was known, the file has it now.
    lake_plans[PUBLISH_LOG] = ("publish_id >= ?", [prev.publish_id])
    return _finish(con, target, marts, publish_id, snapshot, run_id, published_parts, entries, summary_json,
                   descriptions, row_counts, carried, refresh=how, refreshed_rows=refreshed), lake_plans


def _finish(con, target, marts, publish_id, snapshot, run_id, published_parts, entries, summary_json, descriptions,
            row_counts, carried, *, refresh, refreshed_rows) -> "PublishResult":
    """Append this publish to ``publish_log`` and ``quarantine``, comment every table, checkpoint the file; the
    publish's result, whichever way (new file or refresh) its marts were written."""
    con.execute(
        f"INSERT INTO s.{SCHEMA}.{PUBLISH_LOG} VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
        [publish_id, _utcnow(), snapshot, run_id, len(published_parts), len(entries), summary_json],
    )
    for q, part in entries:
        con.execute(
            f"INSERT INTO s.{SCHEMA}.{QUARANTINE} VALUES (?, {', '.join('?' for _ in QUARANTINE_KEY_COLUMNS)}, ?, ?, ?)",
            [publish_id, *(part.get(c) for c, _ in QUARANTINE_KEY_COLUMNS),
             json.dumps(part, sort_keys=True, default=str), q.reason, q.payload_sha256],
        )
    for own in (PUBLISH_LOG, QUARANTINE):
        row_counts[own] = con.execute(f"SELECT count(*) FROM s.{SCHEMA}.{own}").fetchone()[0]
    for table in [*marts, PUBLISH_LOG, QUARANTINE]:
        _comment(con, table, descriptions.get(table) or _OWN_COMMENTS.get(table))
    con.execute("CHECKPOINT s")
    con.execute("DETACH s")
    return PublishResult(publish_id=publish_id, path=target, lake_snapshot_id=snapshot, row_counts=row_counts,
                         carried_over=carried, partitions_published=len(published_parts),
                         partitions_quarantined=len(entries), refresh=refresh, refreshed_rows=refreshed_rows)


def _lake_source(spec: MartSpec, snapshot) -> str:
    return f"{lake.LAKE_ALIAS}.{spec.relation} AT (VERSION => {int(snapshot)})"


def _mart_columns(con, name, spec: MartSpec, snapshot) -> list[tuple[str, str]]:
    source = _lake_source(spec, snapshot)
    try:
        cols = [(c[0], c[1]) for c in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    except duckdb.Error as exc:
        raise ServingError(
            f"mart {name!r}: cannot read lake relation {spec.relation!r} at snapshot {snapshot}: {exc}"
        ) from exc
    missing = [p for p in spec.partition_columns if p not in dict(cols)]
    if missing:
        raise ServingError(
            f"mart {name!r} ({spec.relation} at snapshot {snapshot}): partition columns {missing} not in "
            f"its columns {sorted(dict(cols))}"
        )
    return cols


def _previous(con, prev_tables: set[str]) -> _Previous | None:
    """The previous file's last publish, or None when the file cannot be the base of this one."""
    if PUBLISH_LOG not in prev_tables or QUARANTINE not in prev_tables:
        return None
    tags = con.execute("SELECT tags FROM duckdb_databases() WHERE database_name = 'prev'").fetchone()[0] or {}
    # A copy keeps the storage format of its source: only a file BI drivers can read may be copied.
    if not str(dict(tags).get("storage_version", "")).startswith(STORAGE_VERSION):
        return None
    last = con.execute(
        f"SELECT publish_id, lake_snapshot_id, published_snapshot_id FROM prev.{SCHEMA}.{PUBLISH_LOG} "
        "ORDER BY publish_id DESC LIMIT 1"
    ).fetchone()
    if last is None:
        return None
    keys = [c for c, _ in QUARANTINE_KEY_COLUMNS]
    quarantine = []
    for row in con.execute(
        f"SELECT partition, {', '.join(keys)} FROM prev.{SCHEMA}.{QUARANTINE} WHERE publish_id = ?", [last[0]]
    ).fetchall():
        part = json.loads(row[0]) if row[0] else {k: v for k, v in zip(keys, row[1:]) if v is not None}
        quarantine.append((None, part))
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, col, typ in con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE database_name = 'prev' "
        "AND schema_name = ? ORDER BY table_name, column_index", [SCHEMA]
    ).fetchall():
        columns.setdefault(table, []).append((col, typ))
    return _Previous(int(last[0]), int(last[1]), None if last[2] is None else int(last[2]), quarantine, columns)


# Above this share of a mart's rows, replacing them in a copy costs about as much as writing the mart anew
# (measured: a third of 1.08 M rows took as long) and leaves the copy up to twice its size.
_WHOLE_SHARE = 0.25


def _plan(con, spec: MartSpec, name: str, columns, snapshot, prev: _Previous) -> _Refresh | None:
    """The rows of ``name`` the previous file got wrong for ``snapshot``; None: rebuild the mart whole.

    Those are the partitions whose lake rows changed between the previous publish's snapshot and this one, and
    the partitions the previous publish held back (released now, or still held back: then they are kept).
    """
    if spec.window_column is None or prev.columns.get(name) != columns:
        return None
    types = dict(columns)
    ranges = _changed_ranges(con, spec, types[spec.window_column], prev.lake_snapshot_id, snapshot)
    if ranges is None:
        return None
    col, typ = _ident(spec.window_column), types[spec.window_column]
    clauses, params = [], []
    for lo, hi in ranges:
        clauses.append(f"{col} BETWEEN CAST(? AS {typ}) AND CAST(? AS {typ})")
        params += [lo, hi]
    qpred, qparams = _quarantine_predicate(spec, types, prev.quarantine)
    if qpred:
        clauses.append(f"coalesce({qpred}, false)")
        params += qparams
    if not clauses:
        return _Refresh(None, [])
    cond = "(" + " OR ".join(clauses) + ")"
    total, hit = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {cond}) FROM prev.{SCHEMA}.{_ident(name)}", params
    ).fetchone()
    if total and hit > _WHOLE_SHARE * total:
        return None
    return _Refresh(cond, params)


def _changed_ranges(con, spec: MartSpec, typ: str, a: int, b: int) -> list[tuple[Any, Any]] | None:
    """[lo, hi] ranges of ``spec.window_column`` covering every row that differs between lake snapshots a and b.

    Read from DuckLake's catalog (files and their column statistics), no data file is opened: files live at one
    snapshot and not the other, files whose deletes changed, files compacted over the span (their rows carry
    their own snapshots up to ``partial_max``), and inlined rows. None when that cannot be told (a recreated or
    unknown table, nulls or missing statistics): the caller then replaces the mart whole.
    """
    names = spec.relation.split(".")
    if len(names) > 2:
        return None
    schema, table = names if len(names) == 2 else ("main", names[0])
    a, b = int(a), int(b)
    if a == b:
        return []
    lo, hi = min(a, b), max(a, b)
    meta = f"__ducklake_metadata_{lake.LAKE_ALIAS}"

    def live(x: str, s: int) -> str:
        return f"({x}.begin_snapshot <= {s} AND ({x}.end_snapshot IS NULL OR {x}.end_snapshot > {s}))"

    changed = (f"(({live('f', a)}) <> ({live('f', b)}) OR (f.partial_max IS NOT NULL AND f.partial_max > {lo} "
               f"AND f.begin_snapshot <= {hi} AND (f.end_snapshot IS NULL OR f.end_snapshot > {lo})))")
    col = spec.window_column
    try:
        ids = set()
        for s in (a, b):
            rows = con.execute(
                f"SELECT t.table_id FROM {meta}.ducklake_table t JOIN {meta}.ducklake_schema sc "
                f"ON sc.schema_id = t.schema_id WHERE sc.schema_name = ? AND t.table_name = ? "
                f"AND {live('t', s)} AND {live('sc', s)}", [schema, table]).fetchall()
            if len(rows) != 1:
                return None
            ids.add(rows[0][0])
        if len(ids) != 1:
            return None  # dropped and created again (CREATE OR REPLACE, a full refresh): no file lineage
        tid = ids.pop()
        cids = con.execute(
            f"SELECT column_id FROM {meta}.ducklake_column c WHERE table_id = ? AND column_name = ? "
            f"AND parent_column IS NULL AND {live('c', a)} AND {live('c', b)}", [tid, col]).fetchall()
        if len(cids) != 1:
            return None
        files = {r[0] for r in con.execute(
            f"SELECT data_file_id FROM {meta}.ducklake_data_file f WHERE table_id = ? AND {changed} "
            f"UNION SELECT data_file_id FROM {meta}.ducklake_delete_file f WHERE table_id = ? AND {changed}",
            [tid, tid]).fetchall()}
        try:
            files |= {r[0] for r in con.execute(
                f"SELECT DISTINCT file_id FROM {meta}.ducklake_inlined_delete_{int(tid)} "
                f"WHERE begin_snapshot > {lo} AND begin_snapshot <= {hi}").fetchall()}
        except duckdb.CatalogException:
            pass  # no row of this table was ever deleted inline
        ranges = []
        if files:
            stats = con.execute(
                f"SELECT TRY_CAST(min_value AS {typ}), TRY_CAST(max_value AS {typ}), null_count "
                f"FROM {meta}.ducklake_file_column_stats WHERE table_id = ? AND column_id = ? "
                f"AND data_file_id IN ({', '.join(str(int(f)) for f in files)})", [tid, cids[0][0]]).fetchall()
            if len(stats) != len(files) or any(mn is None or mx is None or n != 0 for mn, mx, n in stats):
                return None
            ranges += [(mn, mx) for mn, mx, _ in stats]
        for (inlined,) in con.execute(
            f"SELECT table_name FROM {meta}.ducklake_inlined_data_tables WHERE table_id = ?", [tid]
        ).fetchall():
            n, nulls, mn, mx = con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE {_ident(col)} IS NULL), min(CAST({_ident(col)} AS {typ})), "
                f"max(CAST({_ident(col)} AS {typ})) FROM {meta}.{_ident(inlined)} f "
                f"WHERE ({live('f', a)}) <> ({live('f', b)})").fetchone()
            if nulls:
                return None
            if n:
                ranges.append((mn, mx))
    except duckdb.Error:
        return None
    return _merge_ranges(ranges)


def _merge_ranges(ranges: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    merged: list[list[Any]] = []
    for lo, hi in sorted(ranges):
        if merged:
            end = merged[-1][1]
            # Consecutive days are one range: a window of N days becomes one BETWEEN, not N.
            touching = isinstance(end, dt.date) and not isinstance(end, dt.datetime) and lo == end + dt.timedelta(1)
            if lo <= end or touching:
                merged[-1][1] = max(end, hi)
                continue
        merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def _copy_mart(con, name, spec: MartSpec, snapshot, entries, target, prev) -> tuple[int, int, set[tuple]]:
    """Create ``target``: lake rows outside quarantine + rows of table ``prev`` = (database, name) inside it."""
    source = _lake_source(spec, snapshot)
    types = dict(_mart_columns(con, name, spec, snapshot))
    pred, params = _quarantine_predicate(spec, types, entries)
    order = f" ORDER BY {', '.join(map(_ident, spec.partition_columns))}" if spec.partition_columns else ""
    keep = f" WHERE NOT coalesce({pred}, false)" if pred else ""
    con.execute(f"CREATE TABLE {target} AS SELECT * FROM {source}{keep}{order}", params)

    carried = 0
    if pred and prev:
        prev_db, prev_name = prev
        prev_cols = {
            r[0]
            for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? "
                "AND table_name = ?",
                [prev_db, SCHEMA, prev_name],
            ).fetchall()
        }
        if all(p in prev_cols for p in spec.partition_columns):
            # Columns the mart gained since the previous publish stay null for carried rows; dropped ones go.
            common = [c for c in types if c in prev_cols]
            col_list = ", ".join(map(_ident, common))
            carried = con.execute(
                f"INSERT INTO {target} ({col_list}) SELECT {col_list} FROM {prev_db}.{SCHEMA}.{_ident(prev_name)} "
                f"WHERE coalesce({pred}, false)",
                params,
            ).fetchone()[0]
    n = con.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
    parts: set[tuple] = set()
    if spec.partition_columns:
        pcols = ", ".join(map(_ident, spec.partition_columns))
        for row in con.execute(f"SELECT DISTINCT {pcols} FROM {source}{keep}", params).fetchall():
            parts.add((spec.partition_columns, tuple(row)))
    return n, carried, parts


def _quarantine_predicate(spec: MartSpec, types: dict[str, str], entries) -> tuple[str | None, list]:
    """SQL that is true for rows of a quarantined partition of this mart, with its parameters."""
    clauses, params = [], []
    for q, part in entries:
        keys = [k for k in spec.partition_columns if k in part]
        if not keys:
            continue
        conds = []
        for k in keys:
            # Cast the value to the column's type: a date given as text still matches a DATE column.
            conds.append(f"{_ident(k)} IS NOT DISTINCT FROM CAST(? AS {types[k]})")
            params.append(part[k])
        clauses.append("(" + " AND ".join(conds) + ")")
    if not clauses:
        return None, []
    return "(" + " OR ".join(clauses) + ")", params


def _comment(con, table: str, doc: Any) -> None:
    if not doc:
        return
    if isinstance(doc, str):
        doc = {"description": doc}
    if doc.get("description"):
        con.execute(f"COMMENT ON TABLE s.{SCHEMA}.{_ident(table)} IS '{_q(doc['description'])}'")
    existing = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = 's' AND schema_name = ? "
            "AND table_name = ?",
            [SCHEMA, table],
        ).fetchall()
    }
    for col, cdoc in (doc.get("columns") or {}).items():
        text = cdoc.get("description") if isinstance(cdoc, Mapping) else cdoc
        # dbt docs may describe columns the mart no longer has; a stale doc must not fail a publish.
        if text and col in existing:
            con.execute(f"COMMENT ON COLUMN s.{SCHEMA}.{_ident(table)}.{_ident(col)} IS '{_q(text)}'")


def _record_in_lake(home: Home, tmp: Path, publish_id: int, tables: list[str], run_id: str,
                    source_snapshot: int, plans: Mapping[str, tuple[str | None, list] | None],
                    prev_published: int | None) -> tuple[int, str]:
    """Record ``tables`` of the new serving file in lake schema ``published`` in one commit: its snapshot id and
    "partitions" or "whole" (how).

    Time travel then reads any publish's state from a single snapshot. When ``published.*`` still holds exactly
    the previous publish (its commit is the lake's latest publish commit), a table with a plan gets only the rows
    the plan names deleted and inserted again from the file (nothing at all for a ``None`` predicate); otherwise
    whole tables are replaced. The commit is found again by a token in its extra info, not by "latest snapshot",
    because another process may commit right after it.
    """
    token = uuid.uuid4().hex
    con = lake.connect(home)
    how = "whole"
    try:
        con.execute(f"ATTACH '{_q(tmp)}' AS s (READ_ONLY)")
        con.execute("BEGIN")
        try:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {lake.LAKE_ALIAS}.{PUBLISHED_SCHEMA}")
            chained = prev_published is not None and con.execute(
                f"SELECT max(snapshot_id) FROM {lake.LAKE_ALIAS}.snapshots() WHERE commit_message LIKE 'publish %'"
            ).fetchone()[0] == prev_published
            for table in tables:
                dest = f"{lake.LAKE_ALIAS}.{PUBLISHED_SCHEMA}.{_ident(table)}"
                plan = plans.get(table) if chained else None
                if plan is not None and _column_types(con, lake.LAKE_ALIAS, PUBLISHED_SCHEMA, table) == \
                        _column_types(con, "s", SCHEMA, table):
                    how = "partitions"
                    cond, params = plan
                    if cond is not None:
                        con.execute(f"DELETE FROM {dest} WHERE {cond}", params)
                        con.execute(f"INSERT INTO {dest} SELECT * FROM s.{SCHEMA}.{_ident(table)} WHERE {cond}",
                                    params)
                else:
                    con.execute(f"CREATE OR REPLACE TABLE {dest} AS SELECT * FROM s.{SCHEMA}.{_ident(table)}")
            lake.set_commit_message(con, f"publish {publish_id}", publish_id=publish_id, run_id=run_id,
                                    source_snapshot=source_snapshot, token=token)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        row = con.execute(
            f"SELECT max(snapshot_id) FROM {lake.LAKE_ALIAS}.snapshots() WHERE commit_extra_info LIKE ?",
            [f'%"token": "{token}"%'],
        ).fetchone()
        con.execute("DETACH s")
    except duckdb.Error as exc:
        raise ServingError(f"publish {publish_id}: cannot record the published tables in the lake "
                           f"{home.lake_catalog}: {exc}") from exc
    finally:
        con.close()
    if not row or row[0] is None:
        raise ServingError(f"publish {publish_id}: the lake commit of the published tables was not found")
    return int(row[0]), how


def _column_types(con, db: str, schema: str, table: str) -> list[tuple[str, str]]:
    return [(c, t) for c, t in con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? "
        "AND table_name = ? ORDER BY column_index", [db, schema, table]).fetchall()]


def _set_published_snapshot(tmp: Path, publish_id: int, snapshot: int) -> None:
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{_q(tmp)}' AS s")
        con.execute(f"UPDATE s.{SCHEMA}.{PUBLISH_LOG} SET published_snapshot_id = ? WHERE publish_id = ?",
                    [snapshot, publish_id])
        con.execute("CHECKPOINT s")
        con.execute("DETACH s")
    finally:
        con.close()


def read_publish_log(path: str | os.PathLike) -> list[dict]:
    """The publish log of a serving file, oldest first; ``[]`` when the file does not exist.

    Opens through ``ATTACH ... (READ_ONLY)`` from an in-memory database: ``duckdb.connect(path)`` would reuse
    a database instance this process already has open for the path, which after a swap is the old file. Any WAL
    beside the file is ignored, and a client holding it read-write is a one-line ``ServingFileError``
    (``serving_file.attach_read_only``).
    """
    path = Path(path)
    if not path.exists():
        return []
    con = duckdb.connect(":memory:")
    try:
        serving_file.attach_read_only(con, path, "srv")
        if PUBLISH_LOG not in _tables(con, "srv"):
            raise ServingError(f"{path} has no {SCHEMA}.{PUBLISH_LOG}: not a chartlake serving file")
        cur = con.execute(f"SELECT * FROM srv.{SCHEMA}.{PUBLISH_LOG} ORDER BY publish_id")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]
    finally:
        con.close()


def last_publish(home: Home) -> dict | None:
    """The newest publish_log row of ``home``'s serving file, or None if nothing was published yet."""
    log = read_publish_log(home.serving_db)
    return log[-1] if log else None


@contextlib.contextmanager
def _publish_lock(target: Path) -> Iterator[None]:
    # Two publishes at once would both read publish_id n and both write n + 1; the second rename would win
    # and lose the first's log row. An advisory lock beside the file serializes them (released on exit,
    # also when the process dies).
    lock_path = target.with_name(f".{target.name}.publish.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def remove_temp_files(home: Home) -> list[Path]:
    """Remove the new-file temps (``.chartlake.duckdb.<pid>.<id>.tmp`` and their ``.wal``) of publishes killed
    mid-way. Only the writer's own temp names: the serving file and a ``.wal`` beside it are never touched."""
    target = home.serving_db
    removed = []
    if not target.parent.is_dir():
        return removed
    with _publish_lock(target):
        for pattern in (f".{target.name}.*.tmp", f".{target.name}.*.tmp.wal"):
            for tmp in target.parent.glob(pattern):
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                    removed.append(tmp)
    return removed


def _check_snapshot(con, home: Home, snapshot: int) -> None:
    known = con.execute(
        f"SELECT count(*) FROM {lake.LAKE_ALIAS}.snapshots() WHERE snapshot_id = ?", [int(snapshot)]
    ).fetchone()[0]
    if not known:
        latest = lake.current_snapshot(con)
        raise ServingError(
            f"lake snapshot {snapshot} does not exist in {home.lake_catalog} (latest is {latest})"
        )


def _tables(con, db: str) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = ?", [db, SCHEMA]
        ).fetchall()
    }


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _q(value: object) -> str:
    return str(value).replace("'", "''")
