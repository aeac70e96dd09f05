"""The publishes the serving file records (``Publish``), how one is named (id or time), and the lake sessions
that read a past publish back from the lake: what every other versions module starts from."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import duckdb

from orchestration.config import Home
from orchestration.lib import lake, serving, serving_file
from orchestration.lib.serving import recorded


PUBLISHED = serving.PUBLISHED_SCHEMA
# Tables of a publish that are not marts.
_NOT_MARTS = {serving.QUARANTINE, serving.PUBLISH_LOG}
# The partitions of each mart: what a publish holds back for a quarantine entry and what a diff names. The one
# owner: publish's MartSpecs (``orchestration.defs.publish.assets.MARTS``) are built from it. The daily marts are
# partitioned by chart (the chart key: store, country, device, chart, genre_id, and day), so a quarantined chart
# holds back only itself; a breakout spans days (the chart series); the cross-store marts have no store, device or
# genre, so a quarantined chart holds back its country x chart (x day) on both stores. Unknown marts: the whole
# table is one partition.
_CHART = ("country", "chart_date", "store", "device", "chart", "genre_id")
PARTITIONS: dict[str, tuple[str, ...]] = {
    "fct_chart_entries": _CHART,
    "mart_daily_rankings": _CHART,
    "mart_daily_country_summary": _CHART,
    "mart_breakouts": ("country", "store", "device", "chart", "genre_id"),
    "dim_apps": (),
    "dim_countries": (),
    "dim_products": (),
    "mart_product_daily_ranks": ("country", "chart_date", "chart"),
    "mart_product_breakouts": ("country", "chart"),
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
    published_snapshot_id: int | None  # the lake snapshot of this publish's own commit (log, carried-over rows)
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
        raise VersionsError(f"publish {p.publish_id} predates data versions: it was not recorded in the lake "
                            f"(schema {PUBLISHED}); only later publishes can be queried as of")
    return int(p.published_snapshot_id)


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


def _marts_in(con) -> list[str]:
    # A past publish is views (recorded.attach_publish), the current serving file tables.
    db, schema = con.execute("SELECT current_database(), current_schema()").fetchone()
    return [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = ? UNION "
        "SELECT view_name FROM duckdb_views() WHERE NOT internal AND database_name = ? AND schema_name = ? ORDER BY 1",
        [db, schema, db, schema]).fetchall() if r[0] not in _NOT_MARTS]


def _open_publish(con, home: Home, p: Publish, name: str) -> "recorded.PastPublish":
    """Publish ``p`` as views in ``memory.<name>`` (``serving.recorded.attach_publish``)."""
    published = _recorded(p)
    if not lake.exists(home):
        raise VersionsError(f"no lake at {home.lake_catalog}")
    try:
        return recorded.attach_publish(con, home, publish_id=p.publish_id, lake_snapshot_id=p.lake_snapshot_id,
                                       published_snapshot_id=published, name=name)
    except duckdb.Error as exc:
        raise VersionsError(f"publish {p.publish_id}: lake snapshot {published} or {p.lake_snapshot_id} cannot be "
                            f"opened in {home.lake_catalog} (expired?): {exc}") from exc
    except serving.ServingError as exc:
        raise VersionsError(str(exc)) from exc


def _columns(con, relation: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]


def _previous(home: Home, p: Publish) -> Publish | None:
    earlier = [q for q in publishes(home) if q.publish_id < p.publish_id and q.published_snapshot_id is not None]
    return earlier[-1] if earlier else None


def _all_tables(con, db: str) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = ?", [db, PUBLISHED]
    ).fetchall()}


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
