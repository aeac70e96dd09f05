"""The refresh plan of an incremental publish: which rows of each mart the previous file got wrong for this lake
snapshot, told from DuckLake's catalog without reading data files."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import duckdb

from orchestration.lib import lake

from .carry_over import _quarantine_predicate
from .model import _ident, MartSpec, PUBLISH_LOG, QUARANTINE, QUARANTINE_KEY_COLUMNS, SCHEMA, STORAGE_VERSION


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
