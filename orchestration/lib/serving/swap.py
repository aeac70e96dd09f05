"""Write-audit-publish's last step: build the new file beside the serving file (anew or from a private copy of
the previous one), record it, fsync it and rename it into place, one publish at a time."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import uuid
from pathlib import Path
from typing import Any, Iterator, Mapping

from orchestration.config import Home
from orchestration.lib import lake, serving_file

from .carry_over import _copy_mart, _quarantine_predicate
from .model import (
    _ident, _lake_source, _mart_columns, MartSpec, PUBLISH_LOG, PUBLISHED_SCHEMA, PublishResult, _q, QUARANTINE,
    QuarantineEntry, _RESERVED, SCHEMA, ServingError, STORAGE_VERSION, _tables)
from . import recorded
from .publish_log import _finish, _PUBLISH_LOG_DDL, _QUARANTINE_DDL, _set_published_snapshot
from .refresh_plan import _plan, _Previous, _previous, _Refresh


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
    Publishes are serialized with a lock file beside the serving file. With ``record_in_lake`` what the lake
    snapshot cannot reproduce (log, quarantine, carried-over rows: ``recorded``) is committed to the lake before
    the swap; if that commit fails, nothing is swapped. (A crash between that commit and the swap leaves a lake
    commit no publish_log names: harmless, the next publish reuses the id and the log points at its own snapshot.)

    With ``incremental`` (the default) the new file starts as a copy of the previous one and only what changed is
    replaced: per mart with a ``window_column``, the partitions whose lake rows changed since the previous
    publish's snapshot (told from DuckLake's catalog) plus those the previous publish held back; other marts
    whole. Without a usable previous file (none, another storage version, no publish log) or when most rows
    changed, the file is written anew as with ``incremental=False``; the rows published are the same either way.
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
            result = _build(home, tmp, base, target, lake_snapshot_id, marts, run_id, entries, summary_json,
                            descriptions, incremental)
            if record_in_lake:
                published, carried = recorded.record_in_lake(home, tmp, result, marts, entries, run_id)
                _set_published_snapshot(tmp, result.publish_id, published)
                result = dataclasses.replace(result, published_snapshot_id=published,
                                             lake_recording=f"log + {carried} carried-over rows")
            serving_file.fsync_path(tmp)
            serving_file.swap(tmp, target)
        finally:
            for leftover in (tmp, base):
                for path in (leftover, serving_file.wal_of(leftover)):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
    return result


def _build(home, tmp, base, target, snapshot, marts, run_id, entries, summary_json, descriptions, incremental
           ) -> PublishResult:
    """Write the new file at ``tmp``.

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
            return _build_from_copy(con, tmp, base, target, snapshot, marts, columns, plans, prev, run_id, entries,
                                    summary_json, descriptions)
        result = _build_new(con, tmp, target, snapshot, marts, prev_tables, run_id, entries, summary_json,
                            descriptions)
        if has_prev:
            con.execute("DETACH prev")
        return result
    finally:
        con.close()


def _previous_from_lake(home: Home, con, target: Path, base: Path) -> None:
    """Write into ``base`` the tables of the lake's last ``publish`` commit, as the serving file had them.

    For a previous file that cannot be trusted (a client wrote into it): what it should hold is what the lake can
    answer for any publish (``recorded.attach_publish``), publish log included (its own row without
    ``published_snapshot_id``, which is that commit's snapshot).
    """
    row = con.execute(
        f"SELECT max(snapshot_id) FROM {lake.LAKE_ALIAS}.snapshots() WHERE commit_message LIKE 'publish %'"
    ).fetchone()
    last = row[0] if row else None
    log = None
    if last is not None:
        con.execute(lake.attach_sql(home, alias="lake_prev", read_only=True, snapshot=int(last)))
        if PUBLISH_LOG in _tables(con, "lake_prev", PUBLISHED_SCHEMA):
            log = con.execute(f"SELECT publish_id, lake_snapshot_id FROM lake_prev.{PUBLISHED_SCHEMA}.{PUBLISH_LOG} "
                              "ORDER BY publish_id DESC LIMIT 1").fetchone()
        con.execute("DETACH lake_prev")
    if log is None:
        raise ServingError(
            f"{target} was changed by another client (its bytes are not those its publish wrote, "
            f"{serving_file.digest_path(target).name}) and the lake holds no publish log to rebuild it from; "
            f"move {target.name} aside only if you can recreate its history, or restore it from a backup")
    past = recorded.attach_publish(con, home, publish_id=int(log[0]), lake_snapshot_id=int(log[1]),
                                   published_snapshot_id=int(last), name="prev_publish")
    base.unlink(missing_ok=True)
    con.execute(f"ATTACH '{_q(base)}' AS b (STORAGE_VERSION '{STORAGE_VERSION}')")
    con.execute(f"CREATE SCHEMA b.{SCHEMA}")
    for t in past.tables:
        con.execute(f"CREATE TABLE b.{SCHEMA}.{_ident(t)} AS SELECT * FROM {past.relation(t)}")
    con.execute(f"UPDATE b.{SCHEMA}.{PUBLISH_LOG} SET published_snapshot_id = ? WHERE published_snapshot_id IS NULL "
                f"AND publish_id = (SELECT max(publish_id) FROM b.{SCHEMA}.{PUBLISH_LOG})", [int(last)])
    con.execute("CHECKPOINT b")
    con.execute("DETACH b")
    con.execute("DROP SCHEMA memory.prev_publish CASCADE")
    for alias in past.attached:
        con.execute(f"DETACH {alias}")


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
                     summary_json, descriptions) -> PublishResult:
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
            how[name], refreshed[name] = "whole", n - c
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
            refreshed[name] = written
        row_counts[name], carried[name] = n, c
        published_parts |= parts

    return _finish(con, target, marts, prev.publish_id + 1, snapshot, run_id, published_parts, entries,
                   summary_json, descriptions, row_counts, carried, refresh=how, refreshed_rows=refreshed)


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

