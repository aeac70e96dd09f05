"""What a publish is given and returns: the serving file's layout (schema, storage version, its own tables),
the marts and quarantine entries, the result, and how a mart's lake relation is read at a snapshot."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import duckdb

from orchestration.lib import lake


SCHEMA = "analytics"
# Oldest storage format DuckDB 1.5.5 writes: readable by DuckDB >= 1.0 (Metabase's driver bundled 1.4 in 2026).
STORAGE_VERSION = "v1.0.0"
PUBLISH_LOG = "publish_log"
QUARANTINE = "quarantine"
# Lake schema holding each publish's log, quarantine and mart list (one DuckLake commit per publish, ``recorded``);
# publishes recorded before that layout also hold a full copy of every mart there.
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
    published_snapshot_id: int | None = None  # lake snapshot of this publish's own commit (``recorded``)
    # mart -> how the new file got it: "new file" (written from scratch), "whole" (replaced in a copy of the
    # previous file), "partitions" (only changed/released partitions replaced in that copy), "unchanged".
    refresh: dict[str, str] = field(default_factory=dict)
    refreshed_rows: dict[str, int] = field(default_factory=dict)  # mart -> rows written from the lake
    lake_recording: str | None = None  # what the lake commit stored, "log + N carried-over rows" (None: not recorded)


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


def _tables(con, db: str, schema: str = SCHEMA) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = ?", [db, schema]
        ).fetchall()
    }


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _q(value: object) -> str:
    return str(value).replace("'", "''")
