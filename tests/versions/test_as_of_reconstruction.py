"""Issue 13, "publish as one copy": the lake stores no copy of the marts per publish, only what its lake snapshot
cannot reproduce (carried-over rows, log, quarantine), and every past publish still answers exactly what its serving
file held: as-of, diff and the rebuild's hashes are checked against a saved byte copy of each publish's file, also
after maintenance expired and compacted the lake. A home whose publishes were recorded by the previous release (a
full copy of every mart in ``published.*``, made here by running that release's code) keeps answering."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from orchestration.config import Home
from orchestration.lib import lake, versions
from tests.conftest import REPO
from orchestration.lib.serving import QuarantineEntry

from versions_fixtures import D14, load, MARTS, publish, rankings

US1 = ["741292507", "835599320", "6448311069"]
US2 = ["835599320", "741292507", "6448311069"]
FR = ["6446901002", "741292507", "1641486558"]
FR_BAD = ["6446901002", "6446901002", "1641486558"]
TABLES = [*MARTS, "quarantine"]
# The last commit that recorded a full copy of every mart per publish (``published.<mart>``).
OLD_RELEASE_COMMIT = "0b711e85e25661d01cf07267822c74fa55f4562e"


def _served(path: Path) -> dict[str, list]:
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{path}' AS s (READ_ONLY)")
        return {t: con.execute(f"SELECT * FROM s.analytics.{t} ORDER BY ALL").fetchall() for t in TABLES}
    finally:
        con.close()


def _as_of(home: Home, publish_id: int) -> dict[str, list]:
    return {t: [tuple(r) for r in versions.query(home, f"SELECT * FROM {t} ORDER BY ALL", as_of=publish_id).rows]
            for t in TABLES}


def _save(home: Home, saved: dict[int, Path], result) -> None:
    saved[result.publish_id] = home.root / f"saved-{result.publish_id}.duckdb"
    shutil.copyfile(home.serving_db, saved[result.publish_id])


def _lake_tables(home: Home, snapshot: int | None = None) -> dict[str, int]:
    with lake.session(home, read_only=True) as con:
        if snapshot is not None:
            con.execute(lake.attach_sql(home, alias="pub_then", read_only=True, snapshot=snapshot))
        db = "pub_then" if snapshot is not None else lake.LAKE_ALIAS
        names = con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? "
                            "AND schema_name IN ('published', 'carried_over')", [db]).fetchall()
        return {f"{s}.{t}": con.execute(f"SELECT count(*) FROM {db}.{s}.{t}").fetchone()[0] for s, t in names}


def _hash_of_file(path: Path) -> dict[str, tuple[int, str]]:
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{path}' AS s (READ_ONLY)")
        out = {}
        for m in MARTS:
            cols = sorted(r[0] for r in con.execute(f"DESCRIBE s.analytics.{m}").fetchall())
            out[m] = versions.content_hash(con, f"s.analytics.{m}", cols)
        return out
    finally:
        con.close()


def test_each_publish_answers_its_saved_file_from_the_lake_snapshot_and_carry_over(tmp_path):
    home = Home(tmp_path / "home").ensure()
    saved: dict[int, Path] = {}
    _save(home, saved, publish(home, load(home, rankings(US1, FR), "v1")))
    _save(home, saved, publish(home, load(home, rankings(US2, FR), "v2")))
    # FR broken in the lake and quarantined on 14 only: fr/14 is carried over from publish 2, fr/13 is the bad lake's.
    bad = publish(home, load(home, rankings(US2, FR_BAD), "v3"), [QuarantineEntry("fr", D14, "duplicate app")])
    _save(home, saved, bad)
    assert bad.carried_over == {"mart_daily_rankings": 3, "dim_countries": 0}
    # Nothing held back any more, lake unchanged: the released partition comes from the lake.
    _save(home, saved, publish(home, bad.lake_snapshot_id))

    # What the lake keeps per publish: its log, quarantine, marts list, and carried rows only where there were any.
    log = versions.publishes(home)
    assert _lake_tables(home, log[2].published_snapshot_id) == {
        "published.publish_log": 3, "published.quarantine": 1, "published.publish_marts": 2,
        "carried_over.mart_daily_rankings": 3}
    assert _lake_tables(home) == {"published.publish_log": 4, "published.quarantine": 1,
                                  "published.publish_marts": 2}

    expected = {pid: _served(path) for pid, path in saved.items()}
    assert expected[3]["mart_daily_rankings"] != expected[4]["mart_daily_rankings"]  # the carry-over shows
    for pid in saved:
        assert _as_of(home, pid) == expected[pid], pid
    assert [(d.partition, d.changed) for d in versions.diff(home, 3, 4).partitions] == \
        [({"country": "fr", "chart_date": "2025-01-14"}, 1)]
    assert versions.diff(home, 2, 3).partitions[0].partition == {"country": "fr", "chart_date": "2025-01-13"}

    # Maintenance expires every snapshot no publish names, compacts and deletes files: nothing a publish needs.
    for k in range(3):
        with lake.session(home) as con:
            con.execute(f"CREATE OR REPLACE TABLE marts.scratch AS SELECT range AS n, {k} AS k FROM range(5000)")
        load(home, rankings(US1, FR_BAD), f"later {k}")
    result = versions.maintain(home, older_than=dt.timedelta(0), keep_last=1, cleanup_older_than=None,
                               now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1))
    assert result.expired and result.files_deleted > 0
    assert {p.lake_snapshot_id for p in log} | {p.published_snapshot_id for p in log} <= set(result.kept_for_publishes)
    for pid, path in saved.items():
        assert _as_of(home, pid) == expected[pid], pid
        assert versions.published_hashes(home, pid) == _hash_of_file(path), pid


def test_a_file_a_client_wrote_into_is_rebuilt_from_the_lake_with_its_carry_over(tmp_path):
    home = Home(tmp_path / "home").ensure()
    publish(home, load(home, rankings(US2, FR), "v1"))
    publish(home, load(home, rankings(US2, FR_BAD), "v2"), [QuarantineEntry("fr", D14, "duplicate app")])
    before = _served(home.serving_db)
    con = duckdb.connect(str(home.serving_db))  # a client that opened the file read-write and changed it
    con.execute("DELETE FROM analytics.mart_daily_rankings WHERE country = 'fr'")
    con.close()
    # Same snapshot, same quarantine: the new file must equal publish 2's, carried rows included.
    publish(home, versions.publishes(home)[-1].lake_snapshot_id, [QuarantineEntry("fr", D14, "duplicate app")])
    assert _served(home.serving_db) == {**before, "quarantine": _served(home.serving_db)["quarantine"]}
    assert len(_served(home.serving_db)["quarantine"]) == 2


OLD_RELEASE = textwrap.dedent("""
    import sys
    from pathlib import Path
    from orchestration.config import Home
    from orchestration.lib.serving import QuarantineEntry
    from versions_fixtures import D14, load, publish, rankings
    home = Home(Path(sys.argv[1]))
    publish(home, load(home, rankings({us1!r}, {fr!r}), "old v1"))
    publish(home, load(home, rankings({us2!r}, {fr_bad!r}), "old v2"), [QuarantineEntry("fr", D14, "duplicate app")])
""")


def _old_release(tmp_path: Path) -> Path:
    """The previous release's code (orchestration/ and the fixtures), from git, in ``tmp_path/old``."""
    tree = tmp_path / "old"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", OLD_RELEASE_COMMIT, "orchestration",
                              "tests/versions/versions_fixtures.py"], capture_output=True)
    if archive.returncode != 0:
        pytest.skip(f"commit {OLD_RELEASE_COMMIT} is not in this clone's history")
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree


def test_a_home_recorded_by_the_previous_release_keeps_answering(tmp_path):
    home = Home(tmp_path / "home").ensure()
    tree = _old_release(tmp_path)
    code = OLD_RELEASE.format(us1=US1, fr=FR, us2=US2, fr_bad=FR_BAD)
    old = subprocess.run([sys.executable, "-c", code, str(home.root)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": f"{tree}:{tree / 'tests' / 'versions'}",
                              "CHARTLAKE_HOME": str(home.root)}, cwd=tree)
    assert old.returncode == 0, old.stderr[-2000:]
    assert "published.mart_daily_rankings" in _lake_tables(home)  # the old layout: a full copy per publish
    old_answers = {pid: _as_of(home, pid) for pid in (1, 2)}
    assert old_answers[2] == _served(home.serving_db)
    assert old_answers[1]["mart_daily_rankings"] != old_answers[2]["mart_daily_rankings"]

    publish(home, load(home, rankings(US1, FR), "new v3"))
    tables = _lake_tables(home)
    assert "published.mart_daily_rankings" not in tables and "published.publish_marts" in tables
    for pid in (1, 2):
        assert _as_of(home, pid) == old_answers[pid]  # read from the old full copy at its own snapshot
    assert _as_of(home, 3) == _served(home.serving_db)
    assert {d.partition["country"] for d in versions.diff(home, 2, 3).partitions if d.partition} == {"us", "fr"}
    versions.maintain(home, older_than=dt.timedelta(0), keep_last=1, cleanup_older_than=None,
                      now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1))
    for pid in (1, 2):
        assert _as_of(home, pid) == old_answers[pid]
