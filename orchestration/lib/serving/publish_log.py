"""What each publish records in the file: its rows in ``publish_log`` and ``quarantine`` and the tables' comments
(what it records in the lake: ``recorded``)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any, Mapping

import duckdb

from orchestration.config import Home
from orchestration.lib import serving_file

from .model import (
    _ident, PUBLISH_LOG, PublishResult, _q, QUARANTINE, QUARANTINE_KEY_COLUMNS, SCHEMA, ServingError,
    _tables)


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
            "published_snapshot_id": "DuckLake snapshot of this publish's own lake commit: its log, quarantine and "
            "the rows it carried over, which with the marts at lake_snapshot_id are exactly what it served "
            "(chartlake query --as-of <publish_id>); null if the publish was not recorded.",
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
            "device": "Device (iphone|ipad|android), when the quarantine is narrower than country x day.",
            "chart": "Chart (top-free|top-paid|top-grossing), when narrower than country x day.",
            "genre_id": "Genre (null: all apps, or the key was not given; see partition).",
            "partition": "JSON of exactly the keys the quarantine names (absent key = every value).",
            "reason": "Why the partition failed its audit.",
            "payload_sha256": "Raw payload behind the failure, if one is known (file in the raw store).",
        },
    },
}


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


def quarantined_partitions(home: Home, publish_id: int) -> list[tuple[str, dt.date, str, str]]:
    """(country, chart date, what else it names, reason) of each partition publish ``publish_id`` held back, by
    date, country and key: "what else" is ``apple/iphone/top-free`` for one chart (a genre id after it when there
    is one), ``google_play`` for a store's country-day, "" for the whole country-day. Read as ``read_publish_log``
    reads (an in-memory database attaching the file read-only)."""
    con = duckdb.connect(":memory:")
    try:
        serving_file.attach_read_only(con, home.serving_db, "s")
        rows = con.execute(f"""select country, chart_date, partition, reason from s.{SCHEMA}.{QUARANTINE}
                               where publish_id = ? order by chart_date, country, partition""",
                           [publish_id]).fetchall()
    finally:
        con.close()
    out = []
    for country, chart_date, partition, reason in rows:
        keys = json.loads(partition) if partition else {}
        named = [keys[k] for k in ("store", "device", "chart", "genre_id") if keys.get(k) is not None]
        out.append((country, chart_date, "/".join(map(str, named)), reason))
    return out


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
