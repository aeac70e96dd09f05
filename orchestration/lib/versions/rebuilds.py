"""``rebuild``: every mart rebuilt from ``raw.*`` as of a publish's lake snapshot in a scratch home, compared by
content hash with what was published."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb

from orchestration.config import DBT_PROJECT_DIR, Home
from orchestration.lib import lake, serving

from .catalog import (
    _attach_lake_at, _base_connection, _columns, _ident, _open_publish, PARTITIONS, _previous, Publish, _recorded,
    resolve_publish, VersionsError)


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
        past = _open_publish(con, home, p, "p")
        return {m: content_hash(con, past.relation(m), sorted(_columns(con, past.relation(m)))) for m in past.marts}
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
    _recorded(p)  # before any work: an unrecorded publish cannot be compared
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
        return _compare(home, scratch_home, p)
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


def _compare(home: Home, scratch: Home, p: Publish) -> list[MartCheck]:
    con = _base_connection(home)
    try:
        past = _open_publish(con, home, p, "p")
        con.execute(lake.attach_sql(scratch, alias="r", read_only=True))
        quarantined = _quarantined(con, past.relation(serving.QUARANTINE), p.publish_id) \
            if serving.QUARANTINE in past.tables else []
        prev = _previous(home, p)
        before = _open_publish(con, home, prev, "prev") if quarantined and prev is not None else None
        checks = []
        for m in past.marts:
            pub_rel, new_rel = past.relation(m), f"r.marts.{_ident(m)}"
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
                        content_hash(con, before.relation(m), cols, inside, params)
            checks.append(MartCheck(m, pub_n, pub_h, new_n, new_h, len(quarantined) if parts else 0, carry))
        return checks
    finally:
        con.close()


def _quarantined(con, relation: str, publish_id: int) -> list[dict]:
    """The partitions publish ``publish_id`` held back, each as exactly the keys it names (``partition``, in
    files from before that column: its country-day)."""
    cols = _columns(con, relation)
    part = "partition" if "partition" in cols else "NULL"
    out = []
    for country, chart_date, partition in con.execute(
            f"SELECT DISTINCT country, chart_date, {part} FROM {relation} WHERE publish_id = ?",
            [publish_id]).fetchall():
        keys = json.loads(partition) if partition else {}
        out.append({**keys, "country": country, "chart_date": chart_date})
    return out


def _outside(parts: list[str], quarantined: list[dict]) -> tuple[str, list]:
    """A WHERE clause keeping the rows outside every quarantined partition (a key an entry does not name is every
    value; a mart's partition an entry is narrower than is held back whole, as publish did)."""
    if not parts or not quarantined:
        return "", []
    clauses, params = [], []
    for entry in quarantined:
        named = [c for c in parts if c in entry]
        clauses.append("(" + " AND ".join(f"{_ident(c)} IS NOT DISTINCT FROM ?" for c in named) + ")")
        params += [entry[c] for c in named]
    return f"WHERE NOT ({' OR '.join(clauses)})", params
