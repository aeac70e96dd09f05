"""A publish replaces only what changed in a copy of the previous file, and gives exactly the rows a publish
written from scratch gives (``incremental=False``), in the serving file and as of that publish from the lake.

The lake here is changed the way dbt's incremental models change it (delete + insert of a day in the same
table), so the change detection from DuckLake's catalog is what is exercised: parquet files, deletes, rows
small enough to be inlined in the catalog, and files compacted by maintenance between two publishes.
"""

from __future__ import annotations

import datetime as dt
import shutil

import duckdb
import pytest

from orchestration.config import Home
from orchestration.lib import lake, versions
from orchestration.lib.serving import MartSpec, QuarantineEntry, ServingError, publish

DAYS = [dt.date(2025, 1, 13) + dt.timedelta(days=i) for i in range(6)]
COUNTRIES = ("us", "fr")
MARTS = {
    "fct_chart_entries": MartSpec("marts.fct_chart_entries", ("country", "chart_date"), window_column="chart_date"),
    "mart_breakouts": MartSpec("marts.mart_breakouts", ("country",)),
    "dim_countries": MartSpec("marts.dim_countries"),
}


def day_rows(country: str, day: dt.date, depth: int = 12, shift: int = 0) -> list[tuple]:
    return [(country, day, rank, f"{country}-app-{(rank + shift) % depth}") for rank in range(1, depth + 1)]


def setup_lake(home: Home, days: list[dt.date]) -> int:
    with lake.session(home) as con:
        con.execute("BEGIN")
        con.execute("CREATE SCHEMA marts")
        con.execute("CREATE TABLE marts.fct_chart_entries (country VARCHAR, chart_date DATE, rank INTEGER, "
                    "app_id VARCHAR)")
        rows = [r for d in days for c in COUNTRIES for r in day_rows(c, d)]
        con.executemany("INSERT INTO marts.fct_chart_entries VALUES (?, ?, ?, ?)", rows)
        _rebuild_whole_marts(con)
        lake.set_commit_message(con, "full build")
        con.execute("COMMIT")
        return lake.current_snapshot(con)


def _rebuild_whole_marts(con) -> None:
    # Like dbt's table models: a new table on every build.
    con.execute("CREATE OR REPLACE TABLE marts.mart_breakouts AS SELECT country, app_id, min(chart_date) AS "
                "breakout_date FROM marts.fct_chart_entries WHERE rank = 1 GROUP BY ALL")
    con.execute("CREATE OR REPLACE TABLE marts.dim_countries AS SELECT * FROM (VALUES ('us', 'United States'), "
                "('fr', 'France')) t(code, name)")


def replace_days(home: Home, rows_by_day: dict[dt.date, list[tuple]], message: str) -> int:
    """dbt's delete+insert incremental strategy: the days' rows deleted and inserted again, same table."""
    with lake.session(home) as con:
        con.execute("BEGIN")
        for day, rows in rows_by_day.items():
            con.execute("DELETE FROM marts.fct_chart_entries WHERE chart_date = ?", [day])
            if rows:
                con.executemany("INSERT INTO marts.fct_chart_entries VALUES (?, ?, ?, ?)", rows)
        _rebuild_whole_marts(con)
        lake.set_commit_message(con, message)
        con.execute("COMMIT")
        return lake.current_snapshot(con)


def do_publish(home: Home, snap: int, quarantined=(), incremental: bool = True):
    return publish(home, lake_snapshot_id=snap, marts=MARTS, run_id=f"run-{snap}", quarantined=list(quarantined),
                   check_summary={}, descriptions={"fct_chart_entries": "One chart position."},
                   incremental=incremental)


def content(path) -> dict[str, list]:
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{path}' AS srv (READ_ONLY)")
        out = {t: con.execute(f'SELECT * FROM srv.analytics."{t}" ORDER BY ALL').fetchall() for t in MARTS}
        out["quarantine"] = con.execute("SELECT * EXCLUDE (publish_id) FROM srv.analytics.quarantine "
                                        "ORDER BY ALL").fetchall()
        out["log"] = con.execute("SELECT publish_id, lake_snapshot_id, partitions_published, partitions_quarantined "
                                 "FROM srv.analytics.publish_log ORDER BY ALL").fetchall()
        out["tags"] = con.execute("SELECT tags FROM duckdb_databases() WHERE database_name = 'srv'").fetchone()[0]
        out["comment"] = con.execute("SELECT comment FROM duckdb_tables() WHERE database_name = 'srv' "
                                     "AND table_name = 'fct_chart_entries'").fetchone()[0]
        return out
    finally:
        con.close()


SERVED: dict[int, list] = {}  # publish id -> fct rows the serving file had right after that publish


def publish_and_compare(home: Home, snap: int, tmp_path, quarantined=()):
    """Publish incrementally, and from scratch in a copy of the home taken just before: same file content."""
    ref = Home(tmp_path / f"ref-{snap}-{len(list(tmp_path.iterdir()))}")
    shutil.copytree(home.root, ref.root)
    expected = do_publish(ref, snap, quarantined, incremental=False)
    got = do_publish(home, snap, quarantined)
    assert content(home.serving_db) == content(ref.serving_db)
    assert got.row_counts == expected.row_counts and got.carried_over == expected.carried_over
    assert got.partitions_published == expected.partitions_published
    assert set(expected.refresh.values()) == {"new file"}
    # What the lake recorded for this publish is what the file serves.
    SERVED[got.publish_id] = content(home.serving_db)["fct_chart_entries"]
    for mart in MARTS:
        served = content(home.serving_db)[mart]
        as_of = versions.query(home, f"SELECT * FROM {mart} ORDER BY ALL", as_of=got.publish_id).rows
        assert [tuple(r) for r in as_of] == served, mart
    return got


def test_publish_replaces_only_changed_days_and_serves_what_a_full_publish_serves(tmp_path):
    home = Home(tmp_path / "home").ensure()
    SERVED.clear()
    first = do_publish(home, setup_lake(home, DAYS[:4]))
    assert set(first.refresh.values()) == {"new file"}
    SERVED[1] = content(home.serving_db)["fct_chart_entries"]

    # A new day: only its 24 fct rows are read from the lake; the table models are replaced whole.
    r2 = publish_and_compare(home, replace_days(home, {DAYS[4]: day_rows("us", DAYS[4]) + day_rows("fr", DAYS[4])},
                                                "day 5"), tmp_path)
    assert r2.refresh == {"fct_chart_entries": "partitions", "mart_breakouts": "whole", "dim_countries": "whole"}
    # The lake records no mart rows, only the log: nothing was carried over.
    assert r2.refreshed_rows["fct_chart_entries"] == 24 and r2.lake_recording == "log + 0 carried-over rows"

    # The day again, US corrected and FR truncated and quarantined: FR keeps its last good rows. (A day inside
    # the first build's one big file would mark that whole file changed: that publish is written anew.)
    bad = QuarantineEntry("fr", DAYS[4], "duplicate ranks")
    r3 = publish_and_compare(home, replace_days(home, {DAYS[4]: day_rows("us", DAYS[4], shift=3)
                                                      + day_rows("fr", DAYS[4], depth=2)},
                                                "us/17 corrected, fr/17 truncated"), tmp_path, [bad])
    assert r3.refresh["fct_chart_entries"] == "partitions" and r3.carried_over["fct_chart_entries"] == 12
    assert r3.refreshed_rows["fct_chart_entries"] == 12
    # fr/17's last good rows and fr's breakout: the only mart rows the lake stores for this publish.
    assert r3.carried_over["mart_breakouts"] == 1 and r3.lake_recording == "log + 13 carried-over rows"

    # The lake does not change, the quarantine is lifted: the held-back day is published from the lake.
    snap = versions.publishes(home)[-1].lake_snapshot_id
    r4 = publish_and_compare(home, snap, tmp_path)
    assert r4.refreshed_rows["fct_chart_entries"] == 2 and r4.carried_over["fct_chart_entries"] == 0

    # Nothing changed and nothing held back: the mart is left as it was.
    r5 = publish_and_compare(home, snap, tmp_path)
    assert r5.refresh["fct_chart_entries"] == "unchanged" and r5.refreshed_rows["fct_chart_entries"] == 0

    # A two-row fix (inlined in the catalog by DuckLake), then compaction merges the lake's files before publish.
    small = replace_days(home, {DAYS[0]: day_rows("us", DAYS[0]) + day_rows("fr", DAYS[0])[:2]}, "fr/13 trimmed")
    publish_and_compare(home, small, tmp_path)
    snap = replace_days(home, {DAYS[5]: day_rows("us", DAYS[5]) + day_rows("fr", DAYS[5])}, "day 6")
    versions.maintain(home, older_than=dt.timedelta(0), keep_last=2, cleanup_older_than=None)
    r7 = publish_and_compare(home, snap, tmp_path)
    assert r7.refresh["fct_chart_entries"] in ("partitions", "new file")

    # Publishing an older snapshot again (time travel backwards) restores it exactly.
    publish_and_compare(home, first.lake_snapshot_id, tmp_path)

    # After maintenance (compaction, expiry, file clean-up) every publish still answers as it was served.
    assert [p.publish_id for p in versions.publishes(home)] == list(range(1, 9))
    versions.maintain(home, older_than=dt.timedelta(0), keep_last=1, cleanup_older_than=None)
    for publish_id, served in SERVED.items():
        as_of = versions.query(home, "SELECT * FROM fct_chart_entries ORDER BY ALL", as_of=publish_id).rows
        assert [tuple(r) for r in as_of] == served, publish_id


def test_full_rebuild_writes_a_new_file_and_a_foreign_file_is_not_copied(tmp_path):
    home = Home(tmp_path / "home").ensure()
    do_publish(home, setup_lake(home, DAYS[:3]))
    everything = {d: day_rows("us", d, shift=1) + day_rows("fr", d) for d in DAYS[:3]}
    res = publish_and_compare(home, replace_days(home, everything, "full refresh"), tmp_path)
    assert set(res.refresh.values()) == {"new file"}  # most rows changed: cheaper from scratch

    # A serving file in DuckDB's default storage format would stay unreadable for old BI drivers if copied.
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{home.serving_db}' AS old (READ_ONLY)")
        con.execute(f"ATTACH '{tmp_path / 'new.duckdb'}' AS new (STORAGE_VERSION 'v1.5.0')")
        con.execute("COPY FROM DATABASE old TO new")
    finally:
        con.close()
    shutil.move(tmp_path / "new.duckdb", home.serving_db)
    assert not content(home.serving_db)["tags"]["storage_version"].startswith("v1.0.0")
    snap = replace_days(home, {DAYS[3]: day_rows("us", DAYS[3])}, "day 4")
    res = do_publish(home, snap)
    assert set(res.refresh.values()) == {"new file"}
    assert content(home.serving_db)["tags"]["storage_version"].startswith("v1.0.0")


def test_window_column_must_be_a_partition_column():
    with pytest.raises(ServingError, match="window_column 'chart_date' is not one of its partition columns"):
        MartSpec("marts.mart_breakouts", ("country",), window_column="chart_date")
