"""``diff``: rows added, removed and changed per mart x partition between two publishes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from orchestration.config import Home

from .catalog import (
    _base_connection, _columns, GRAINS, _ident, _open_publish, PARTITIONS, Publish, resolve_publish, VersionsError)


@dataclass(frozen=True)
class PartitionDiff:
    mart: str
    partition: dict[str, Any]  # {} for an unpartitioned mart
    added: int
    removed: int
    changed: int

    def label(self) -> str:
        # A null key is left out: a chart's null genre is its overall chart (us/2025-01-14/apple/iphone/top-free).
        return "/".join(str(v) for v in self.partition.values() if v is not None) or "(all)"


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
    con = _base_connection(home)
    try:
        past_a, past_b = _open_publish(con, home, pa, "pa"), _open_publish(con, home, pb, "pb")
        marts_a, marts_b = set(past_a.marts), set(past_b.marts)
        names = sorted(marts_a | marts_b)
        if mart is not None:
            if mart not in names:
                raise VersionsError(f"unknown mart {mart!r}: publishes {pa.publish_id} and {pb.publish_id} have "
                                    f"{', '.join(names)}")
            names = [mart]
        result = DiffResult(pa, pb, names)
        for name in names:
            result.partitions += _diff_mart(con, name, past_a.relation(name), past_b.relation(name),
                                            name in marts_a, name in marts_b)
        return result
    finally:
        con.close()


def _diff_mart(con, name: str, rel_a: str, rel_b: str, in_a: bool, in_b: bool) -> list[PartitionDiff]:
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
