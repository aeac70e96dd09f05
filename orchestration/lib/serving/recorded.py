"""What a publish records in the lake, and how a past publish is read back from it.

A publish reads its marts from one lake snapshot (``lake_snapshot_id``); DuckLake's time travel already keeps that
snapshot, so the lake needs only what the snapshot cannot reproduce: the rows of quarantined partitions, which came
from the previous serving file, not the lake. Each publish commits, in one DuckLake commit labelled ``publish <id>``
(its snapshot is ``publish_log.published_snapshot_id``):

- ``published.publish_log`` and ``published.quarantine``: the file's own tables (a few rows per publish);
- ``published.publish_marts``: one row per mart of the publish (its lake relation and partition columns), so a
  reader knows which marts it had and which rows a quarantine entry held back;
- ``carried_over.<mart>``: exactly the rows of that mart the file kept from the previous publish (a table only for
  a mart with such rows).

Publish N is then: per mart, its relation at ``lake_snapshot_id`` without N's quarantined partitions, plus N's
``carried_over`` rows (``attach_publish``). Publishes made before this layout committed every mart in full to
``published.<mart>``; their snapshot has no ``publish_marts`` table and those copies are read as they are. The first
publish in the new layout drops the full copies from the current state (their snapshots keep them).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import duckdb

from orchestration.config import Home
from orchestration.lib import lake

from .carry_over import _quarantine_predicate
from .model import (_ident, MartSpec, PUBLISH_LOG, PUBLISHED_SCHEMA, PublishResult, _q, QUARANTINE, SCHEMA,
                    ServingError, _tables)

CARRIED_SCHEMA = "carried_over"
PUBLISH_MARTS = "publish_marts"
_OWN = (PUBLISH_LOG, QUARANTINE)


def record_in_lake(home: Home, tmp: Path, result: PublishResult, marts: Mapping[str, MartSpec], entries,
                   run_id: str) -> tuple[int, int]:
    """Commit what ``result``'s publish (the new file at ``tmp``) adds to the lake snapshot it read: its snapshot id
    and how many carried-over rows it stored. Row counts are the publish's own (``result``), not counted again.

    The commit is found again by a token in its extra info, not by "latest snapshot", because another process may
    commit right after it.
    """
    token = uuid.uuid4().hex
    publish_id = result.publish_id
    L = lake.LAKE_ALIAS
    con = lake.connect(home)
    carried_total = 0
    try:
        con.execute(f"ATTACH '{_q(tmp)}' AS s (READ_ONLY)")
        con.execute("BEGIN")
        try:
            for schema in (PUBLISHED_SCHEMA, CARRIED_SCHEMA):
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {L}.{schema}")
            # Full mart copies an earlier release recorded: their own snapshots keep them for as-of queries.
            for old in sorted(_tables(con, L, PUBLISHED_SCHEMA) - {*_OWN, PUBLISH_MARTS}):
                con.execute(f"DROP TABLE {L}.{PUBLISHED_SCHEMA}.{_ident(old)}")
            for own in _OWN:
                con.execute(f"CREATE OR REPLACE TABLE {L}.{PUBLISHED_SCHEMA}.{own} AS SELECT * FROM s.{SCHEMA}.{own}")
            con.execute(f"CREATE OR REPLACE TABLE {L}.{PUBLISHED_SCHEMA}.{PUBLISH_MARTS} (mart VARCHAR NOT NULL, "
                        "relation VARCHAR NOT NULL, partition_columns VARCHAR[] NOT NULL, row_count BIGINT NOT NULL, "
                        "carried_rows BIGINT NOT NULL)")
            stale = _tables(con, L, CARRIED_SCHEMA)
            for name, spec in marts.items():
                carried = result.carried_over.get(name, 0)
                if carried:
                    # The file's rows inside its quarantine are exactly the ones carried over (carry_over).
                    types = dict(con.execute(
                        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 's' "
                        "AND schema_name = ? AND table_name = ?", [SCHEMA, name]).fetchall())
                    pred, params = _quarantine_predicate(spec, types, entries)
                    con.execute(f"CREATE OR REPLACE TABLE {L}.{CARRIED_SCHEMA}.{_ident(name)} AS SELECT * FROM "
                                f"s.{SCHEMA}.{_ident(name)} WHERE coalesce({pred}, false)", params)
                    stale.discard(name)
                con.execute(f"INSERT INTO {L}.{PUBLISHED_SCHEMA}.{PUBLISH_MARTS} VALUES (?, ?, ?, ?, ?)",
                            [name, spec.relation, list(spec.partition_columns), result.row_counts[name], carried])
                carried_total += carried
            for name in sorted(stale):
                con.execute(f"DROP TABLE {L}.{CARRIED_SCHEMA}.{_ident(name)}")
            lake.set_commit_message(con, f"publish {publish_id}", publish_id=publish_id, run_id=run_id,
                                    source_snapshot=result.lake_snapshot_id, token=token)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        row = con.execute(
            f"SELECT max(snapshot_id) FROM {L}.snapshots() WHERE commit_extra_info LIKE ?",
            [f'%"token": "{token}"%'],
        ).fetchone()
        con.execute("DETACH s")
    except duckdb.Error as exc:
        raise ServingError(f"publish {publish_id}: cannot record the publish in the lake {home.lake_catalog}: "
                           f"{exc}") from exc
    finally:
        con.close()
    if not row or row[0] is None:
        raise ServingError(f"publish {publish_id}: the lake commit of the publish was not found")
    return int(row[0]), carried_total


@dataclass
class PastPublish:
    """A past publish attached to a session: one view per table it served, in schema ``memory.<name>``."""

    name: str
    marts: list[str]
    tables: list[str]  # marts, then publish_log and quarantine where recorded
    full_copy: bool  # recorded by an earlier release as a full copy of every mart
    attached: list[str] = field(default_factory=list)

    def relation(self, table: str) -> str:
        return f"memory.{_ident(self.name)}.{_ident(table)}"


def attach_publish(con, home: Home, *, publish_id: int, lake_snapshot_id: int, published_snapshot_id: int,
                   name: str) -> PastPublish:
    """Views in ``memory.<name>`` that return exactly what publish ``publish_id``'s serving file held.

    The lake is attached read-only at the publish's own commit (what it recorded) and, for the marts, at the snapshot
    it read them from; the views are plain SQL over both (quarantine values inlined), so a session locked down
    afterwards still reads them.
    """
    pub = f"{name}_pub"
    con.execute(lake.attach_sql(home, alias=pub, read_only=True, snapshot=published_snapshot_id))
    attached = [pub]
    tables = _tables(con, pub, PUBLISHED_SCHEMA)
    views: dict[str, str] = {}
    full_copy = PUBLISH_MARTS not in tables
    if full_copy:
        for t in sorted(tables - set(_OWN)):
            views[t] = f"SELECT * FROM {pub}.{PUBLISHED_SCHEMA}.{_ident(t)}"
    else:
        src = f"{name}_lake"
        con.execute(lake.attach_sql(home, alias=src, read_only=True, snapshot=lake_snapshot_id))
        attached.append(src)
        parts = [(None, json.loads(p)) for (p,) in con.execute(
            f"SELECT partition FROM {pub}.{PUBLISHED_SCHEMA}.{QUARANTINE} WHERE publish_id = ?", [publish_id]
        ).fetchall()]
        carried = _tables(con, pub, CARRIED_SCHEMA)
        for mart, relation, pcols, carried_rows in con.execute(
                f"SELECT mart, relation, partition_columns, carried_rows FROM {pub}.{PUBLISHED_SCHEMA}.{PUBLISH_MARTS} "
                "ORDER BY mart").fetchall():
            spec = MartSpec(relation, tuple(pcols))
            rel = f"{src}.{spec.relation}"
            types = {c: t for c, t, *_ in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()}
            pred, _ = _quarantine_predicate(spec, types, parts, inline=True)
            body = f"SELECT * FROM {rel}" + (f" WHERE NOT coalesce({pred}, false)" if pred else "")
            if carried_rows:
                if mart not in carried:
                    raise ServingError(f"publish {publish_id}: its carried-over rows of {mart} are missing from "
                                       f"lake snapshot {published_snapshot_id}")
                body += f" UNION ALL BY NAME SELECT * FROM {pub}.{CARRIED_SCHEMA}.{_ident(mart)}"
            views[mart] = body
    marts = sorted(views)
    for own in _OWN:
        if own in tables:
            views[own] = f"SELECT * FROM {pub}.{PUBLISHED_SCHEMA}.{own}"
    con.execute(f"CREATE SCHEMA memory.{_ident(name)}")
    for t, body in views.items():
        con.execute(f"CREATE VIEW memory.{_ident(name)}.{_ident(t)} AS {body}")
    return PastPublish(name, marts, [*marts, *(o for o in _OWN if o in tables)], full_copy, attached)


