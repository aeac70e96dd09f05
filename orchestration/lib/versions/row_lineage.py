"""``lineage``: one mart row back to the raw payload versions and the lake snapshots that landed them."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from orchestration.config import Home
from orchestration.lib import lake

from .as_of import open_as_of
from .catalog import (
    _attach_lake_at, _base_connection, _CHART_KEY, _columns, GRAINS, _ident, _marts_in, Publish, publishes, _RAW_LINK,
    resolve_publish, VersionsError)


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
