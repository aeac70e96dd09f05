"""``maintain``: compaction and snapshot expiry that never expire a snapshot a publish references."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from orchestration.config import Home
from orchestration.lib import lake

from .catalog import publishes, VersionsError


@dataclass
class MaintenanceResult:
    files_before: int
    files_after: int
    merged_tables: int
    expired: list[int]
    kept_for_publishes: list[int]
    files_deleted: int


def referenced_snapshots(home: Home, con=None) -> set[int]:
    """Snapshots a publish needs: the marts/raw it was read from (its as-of answer is read from there) and its own
    ``publish`` commit (log, quarantine, carried-over rows).

    From the serving file's publish log and, should that file be lost, from the lake's own ``publish N`` commits.
    """
    refs: set[int] = set()
    for p in publishes(home):
        refs.add(p.lake_snapshot_id)
        if p.published_snapshot_id is not None:
            refs.add(int(p.published_snapshot_id))
    if con is not None:
        for sid, extra in con.execute(
            f"SELECT snapshot_id, commit_extra_info FROM {lake.LAKE_ALIAS}.snapshots() "
            "WHERE commit_message LIKE 'publish %'"
        ).fetchall():
            refs.add(int(sid))
            try:
                src = json.loads(extra or "{}").get("source_snapshot")
            except ValueError:
                src = None
            if src is not None:
                refs.add(int(src))
    return refs


def maintain(home: Home, *, older_than: dt.timedelta = dt.timedelta(days=7), keep_last: int = 10,
             cleanup_older_than: dt.timedelta | None = dt.timedelta(hours=1), dry_run: bool = False,
             now: dt.datetime | None = None) -> MaintenanceResult:
    """Compact small files, expire old snapshots no publish references, delete files nothing needs any more.

    A snapshot is expired only if it is older than ``older_than``, not among the newest ``keep_last``, and not
    referenced by any publish (``referenced_snapshots``); expiry is by explicit version list, never by age alone.
    Files dropped by expiry or merging are deleted once they were scheduled more than ``cleanup_older_than`` ago
    (None: all of them now), so a reader still scanning one keeps it for a while.
    """
    if keep_last < 1:
        raise VersionsError(f"keep_last must be at least 1, got {keep_last}")
    if not lake.exists(home):
        raise VersionsError(f"no lake at {home.lake_catalog}")
    now = now or dt.datetime.now(dt.timezone.utc)
    before = _count_files(home)
    with lake.session(home) as con:
        refs = referenced_snapshots(home, con)
        merged = 0
        if not dry_run:
            merged = len(con.execute(f"CALL ducklake_merge_adjacent_files('{lake.LAKE_ALIAS}')").fetchall())
        snaps = con.execute(
            f"SELECT snapshot_id, snapshot_time FROM {lake.LAKE_ALIAS}.snapshots() ORDER BY snapshot_id DESC"
        ).fetchall()
        newest = {s for s, _ in snaps[:keep_last]}
        cutoff = now - older_than
        expire = sorted(s for s, t in snaps if s not in newest and s not in refs and _aware(t) < cutoff)
        if expire and not dry_run:
            con.execute(f"CALL ducklake_expire_snapshots('{lake.LAKE_ALIAS}', versions => "
                        f"[{', '.join(map(str, expire))}])")
        deleted = 0
        if not dry_run:
            if cleanup_older_than is None:
                deleted = len(con.execute(
                    f"CALL ducklake_cleanup_old_files('{lake.LAKE_ALIAS}', cleanup_all => true)").fetchall())
            else:
                ts = (now - cleanup_older_than).isoformat()
                deleted = len(con.execute(
                    f"CALL ducklake_cleanup_old_files('{lake.LAKE_ALIAS}', older_than => '{ts}'::TIMESTAMPTZ)"
                ).fetchall())
    kept = sorted(r for r in refs if any(s == r for s, _ in snaps))
    return MaintenanceResult(before, _count_files(home), merged, expire, kept, deleted)


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.timezone.utc)


def _count_files(home: Home) -> int:
    return sum(1 for _ in home.lake_files.rglob("*.parquet"))
