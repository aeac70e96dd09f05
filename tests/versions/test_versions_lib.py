"""Data versions on a small real lake: publishes recorded in the lake, as-of queries, diffs, read-only refusal,
bad arguments, maintenance that keeps every publish answerable. Fast: no dbt, no Dagster run."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil

import pytest

from orchestration.config import Home
from orchestration.lib import lake, versions
from orchestration.lib.serving import QuarantineEntry

from versions_fixtures import D13, D14, load, publish, rankings

US1 = ["741292507", "835599320", "6448311069"]  # RedNote, TikTok, ChatGPT
US2 = ["835599320", "741292507", "6448311069"]  # the corrected US chart: ranks 1 and 2 swapped
FR = ["6446901002", "741292507", "1641486558"]
FR_BAD = ["6446901002", "6446901002", "1641486558"]  # a defect the audit quarantines


def _us_top(home, as_of):
    return versions.query(home, "select chart_date, rank, app_id from mart_daily_rankings where country = 'us' "
                                "and rank <= 2 order by all", as_of=as_of).rows


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """1: original; 2: US corrected; 3: FR defect in the lake, quarantined (FR carried over). Built once; tests
    that must not change it prove they did not (``_state``), the one that does works on a copy."""
    home = Home(tmp_path_factory.mktemp("versions") / "home").ensure()
    p1 = publish(home, load(home, rankings(US1, FR), "v1"))
    p2 = publish(home, load(home, rankings(US2, FR), "v2"))
    p3 = publish(home, load(home, rankings(US2, FR_BAD), "v3"),
                 [QuarantineEntry("fr", d, "duplicate app") for d in (D13, D14)])
    return home, (p1, p2, p3)


@pytest.fixture
def three_publishes(published):
    return published


@pytest.fixture
def three_publishes_copy(published, tmp_path):
    home, results = published
    copy = Home(tmp_path / "home")
    shutil.copytree(home.root, copy.root)  # a copied home must still open (DESIGN.md)
    return copy, results


def test_each_publish_is_one_labelled_lake_commit(three_publishes):
    home, results = three_publishes
    log = versions.publishes(home)
    assert [p.publish_id for p in log] == [1, 2, 3]
    assert [p.published_snapshot_id for p in log] == [r.published_snapshot_id for r in results]
    with lake.session(home, read_only=True) as con:
        msgs = dict(con.execute("select snapshot_id, commit_message from snapshots()").fetchall())
    for p in log:
        assert msgs[p.published_snapshot_id] == f"publish {p.publish_id}"
        assert p.published_snapshot_id > p.lake_snapshot_id


def test_as_of_returns_exactly_what_each_publish_said(three_publishes):
    home, _ = three_publishes
    one = _us_top(home, 1)
    two = _us_top(home, 2)
    assert {(r, a) for _, r, a in one} == {(1, US1[0]), (2, US1[1])}
    assert {(r, a) for _, r, a in two} == {(1, US2[0]), (2, US2[1])}
    assert _us_top(home, None) == two  # current serving file = publish 3 for the US


def test_as_of_keeps_quarantine_carry_over(three_publishes):
    """Publish 3 held fr/14 back: as of 3, FR on the 14th is publish 2's, although the lake's marts had the defect."""
    home, (_, _, p3) = three_publishes
    sql = "select rank, app_id from mart_daily_rankings where country = 'fr' and chart_date = '2025-01-14' order by 1"
    assert versions.query(home, sql, as_of=3).rows == list(enumerate(FR, start=1))
    with lake.session(home, read_only=True) as con:
        in_lake = con.execute(f"select rank, app_id from marts.mart_daily_rankings at (version => "
                              f"{p3.lake_snapshot_id}) where country = 'fr' and chart_date = '2025-01-14' "
                              "order by 1").fetchall()
    assert in_lake == list(enumerate(FR_BAD, start=1))  # time travel on marts.* alone would be wrong
    assert versions.query(home, "select count(*) from quarantine where publish_id = 3", as_of=3).rows == [(2,)]


def test_as_of_a_timestamp_picks_the_latest_publish_at_or_before_it(three_publishes):
    home, _ = three_publishes
    log = versions.publishes(home)
    assert versions.resolve_publish(home, log[1].published_at.isoformat()).publish_id == 2
    assert versions.resolve_publish(home, (log[2].published_at + dt.timedelta(days=1)).isoformat()).publish_id == 3
    with pytest.raises(versions.VersionsError, match="before the first publish"):
        versions.resolve_publish(home, "2020-01-01T00:00:00")


def test_diff_names_exactly_the_changed_partitions(three_publishes):
    home, _ = three_publishes
    d = versions.diff(home, 1, 2)
    assert [(p.mart, p.partition, p.added, p.removed, p.changed) for p in d.partitions] == [
        ("mart_daily_rankings", {"country": "us", "chart_date": "2025-01-13"}, 0, 0, 2),
        ("mart_daily_rankings", {"country": "us", "chart_date": "2025-01-14"}, 0, 0, 2),
    ]
    assert "2 partitions differ in 1 of 2 marts; 0 rows added, 0 removed, 4 changed" in d.summary()
    assert versions.diff(home, 2, 3).partitions == []  # fr/14 was quarantined: nothing published changed
    assert versions.diff(home, 1, 2, mart="dim_countries").partitions == []


def test_diff_counts_added_and_removed_rows(home):
    publish(home, load(home, rankings(US1, FR), "v1"))
    publish(home, load(home, rankings(US1[:2], FR + ["1498607143"]), "v2"))
    d = versions.diff(home, 1, 2)
    got = {(p.partition["country"], p.partition["chart_date"]): (p.added, p.removed, p.changed) for p in d.partitions}
    assert got == {("us", "2025-01-13"): (0, 1, 0), ("us", "2025-01-14"): (0, 1, 0),
                   ("fr", "2025-01-13"): (1, 0, 0), ("fr", "2025-01-14"): (1, 0, 0)}


@pytest.mark.parametrize("sql", [
    "insert into mart_daily_rankings values ('x', 'us', '2025-01-14', 9, 'x')",
    "delete from mart_daily_rankings",
    "create table evil as select 1",
    "copy mart_daily_rankings to '/tmp/chartlake-evil.csv'",
    "attach '/tmp/chartlake-evil.duckdb' as evil",
    "set enable_external_access = true",
    "select 1; drop table mart_daily_rankings",
    "call ducklake_expire_snapshots('at_publish', older_than => now())",
])
def test_query_refuses_sql_that_writes_and_changes_nothing(three_publishes, sql):
    home, _ = three_publishes
    before = _state(home)
    with pytest.raises(versions.VersionsError, match="read-only"):
        versions.query(home, sql, as_of=1)
    with pytest.raises(versions.VersionsError, match="read-only"):
        versions.query(home, sql)
    assert _state(home) == before


def test_query_cannot_read_files_outside_the_lake(three_publishes):
    home, _ = three_publishes
    with pytest.raises(versions.VersionsError, match=r"table function read_csv\(\) is not allowed"):
        versions.query(home, "select * from read_csv('/etc/hostname')", as_of=1)


@pytest.mark.parametrize("call, message", [
    (lambda h: versions.query(h, "select 1", as_of=9), "unknown publish 9: publishes are 1..3"),
    (lambda h: versions.query(h, "select 1", as_of="yesterday"), "neither a publish id"),
    (lambda h: versions.query(h, "select * from no_such_mart", as_of=2), "no_such_mart"),
    (lambda h: versions.diff(h, 1, 2, mart="no_such_mart"), "unknown mart 'no_such_mart'"),
    (lambda h: versions.diff(h, 0, 2), "unknown publish 0"),
    (lambda h: versions.lineage(h, "no_such_mart", {"rank": "1"}), "unknown mart 'no_such_mart'"),
    (lambda h: versions.lineage(h, "mart_daily_rankings", {"nope": "1"}), "no column nope"),
    (lambda h: versions.lineage(h, "mart_daily_rankings", {"rank": "1"}), "more than one row"),
    (lambda h: versions.lineage(h, "mart_daily_rankings", {"rank": "99"}), "no row"),
    (lambda h: versions.maintain(h, keep_last=0), "keep_last"),
])
def test_bad_arguments_give_a_clear_error_and_change_nothing(three_publishes, call, message):
    home, _ = three_publishes
    before = _state(home)
    with pytest.raises(versions.VersionsError, match=message):
        call(home)
    assert _state(home) == before


def test_nothing_published_yet(home):
    with pytest.raises(versions.VersionsError, match="nothing published yet"):
        versions.query(home, "select 1", as_of=1)
    assert versions.publishes(home) == []


@pytest.mark.slow
def test_maintenance_keeps_every_publish_answerable(three_publishes_copy):
    home, _ = three_publishes_copy
    for k in range(4):  # commits after the publishes: snapshots and files nobody references
        load(home, rankings(US2, FR), f"reload {k}")
        with lake.session(home) as con:  # big enough to be written as Parquet, not inlined in the catalog
            con.execute(f"CREATE OR REPLACE TABLE marts.scratch AS SELECT range AS n, {k} AS k FROM range(5000)")
    hashes = {p.publish_id: versions.published_hashes(home, p.publish_id) for p in versions.publishes(home)}
    answers = {p.publish_id: _us_top(home, p.publish_id) for p in versions.publishes(home)}
    with lake.session(home, read_only=True) as con:
        all_snaps = {r[0] for r in con.execute("select snapshot_id from snapshots()").fetchall()}
    refs = versions.referenced_snapshots(home)

    result = versions.maintain(home, older_than=dt.timedelta(0), keep_last=1, cleanup_older_than=None,
                               now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1))

    assert result.expired and not set(result.expired) & refs
    with lake.session(home, read_only=True) as con:
        left = {r[0] for r in con.execute("select snapshot_id from snapshots()").fetchall()}
    assert refs <= left and left < all_snaps
    assert result.files_deleted > 0 and result.files_after < result.files_before
    for pid, h in hashes.items():
        assert versions.published_hashes(home, pid) == h
        assert _us_top(home, pid) == answers[pid]
    # Marts as they were read for each publish are still there too (reproducibility needs them).
    with lake.session(home, read_only=True) as con:
        for p in versions.publishes(home):
            con.execute(f"select count(*) from marts.mart_daily_rankings at (version => {p.lake_snapshot_id})")


def _state(home) -> tuple:
    """Everything a refused command must leave alone: lake snapshots and the serving file's bytes."""
    with lake.session(home, read_only=True) as con:
        snaps = con.execute("select max(snapshot_id), count(*) from snapshots()").fetchone()
    return snaps, hashlib.sha256(home.serving_db.read_bytes()).hexdigest()
