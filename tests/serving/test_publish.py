"""Publish, quarantine carry-over, publish log, comments and storage version of the serving file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from orchestration.lib import lake
from orchestration.lib.serving import (
    MartSpec,
    QuarantineEntry,
    ServingError,
    last_publish,
    publish,
    read_publish_log,
)
from orchestration.sources.canonical import ChartKey

from serving_fixtures import D13, D14, D15, DESCRIPTIONS, MARTS, base_rows, chart, load_lake

READERS = Path(__file__).with_name("serving_readers.py")
SHA_FR = "ab" * 32


def rows(path, sql, params=()):
    """Query a serving file read-only from a fresh in-memory database (no instance reuse)."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{path}' AS srv (READ_ONLY)")
        con.execute("USE srv")
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def do_publish(home, snap, quarantined=(), run_id="run", marts=MARTS):
    return publish(
        home,
        lake_snapshot_id=snap,
        marts=marts,
        run_id=run_id,
        quarantined=list(quarantined),
        check_summary={"fct_chart_entries": {"passed": True, "checks": 3}},
        descriptions=DESCRIPTIONS,
    )


def second_lake_state():
    """Day 2 reloaded: the fr/14 iPhone chart is garbage, us/14 corrected, us/15 and a bad de/15 arrive."""
    rows_ = [r for r in base_rows() if not (r[0] in ("us", "fr") and r[1] == D14 and r[2] == "iphone")]
    return (
        rows_
        + chart("us", D14, "iphone", ["741292507", "1498607143", "835599320", "6446901002"])
        + chart("fr", D14, "iphone", ["1641486558"])  # truncated payload: one entry
        + chart("us", D15, "iphone", ["741292507", "835599320"])
        + chart("de", D15, "iphone", ["1641486558"])
    )


QUARANTINE_2 = [
    QuarantineEntry.for_chart(
        ChartKey("apple", "fr", "iphone", "top-free", None, D14), "entry_count 1 < 100", payload_sha256=SHA_FR
    ),
    QuarantineEntry("de", "2025-01-15", "payload does not parse"),
]


def test_first_publish_copies_marts_with_comments_log_and_old_storage(home):
    snap = load_lake(home, base_rows(), "marts v1")
    res = do_publish(home, snap, run_id="run-1")

    assert res.publish_id == 1 and res.path == home.serving_db and home.serving_db.exists()
    assert res.row_counts == {
        "fct_chart_entries": 14, "mart_daily_country_summary": 5, "dim_countries": 3,
        "publish_log": 1, "quarantine": 0,
    }
    assert res.partitions_quarantined == 0
    # 5 fct charts + 4 country-days (same names may repeat across column sets; counted per set).
    assert res.partitions_published == 5 + 4
    assert rows(home.serving_db, "SELECT count(*) FROM analytics.fct_chart_entries") == [(14,)]
    assert [r for r in Path(home.serving).iterdir() if r.name.endswith(".tmp") or r.name.endswith(".wal")] == []

    log = read_publish_log(home.serving_db)
    assert len(log) == 1
    assert log[0]["lake_snapshot_id"] == snap and log[0]["run_id"] == "run-1"
    assert json.loads(log[0]["check_summary"]) == {"fct_chart_entries": {"checks": 3, "passed": True}}
    assert last_publish(home)["publish_id"] == 1

    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{home.serving_db}' AS srv (READ_ONLY)")
        tags = con.execute("SELECT tags FROM duckdb_databases() WHERE database_name = 'srv'").fetchone()[0]
        assert tags["storage_version"].startswith("v1.0.0"), tags
        comments = dict(
            con.execute(
                "SELECT table_name, comment FROM duckdb_tables() WHERE database_name = 'srv'"
            ).fetchall()
        )
        col_comments = {
            (t, c): cm
            for t, c, cm in con.execute(
                "SELECT table_name, column_name, comment FROM duckdb_columns() WHERE database_name = 'srv'"
            ).fetchall()
        }
    finally:
        con.close()
    assert comments["fct_chart_entries"].startswith("One chart position")
    assert comments["dim_countries"] == "One row per country."
    assert comments["mart_daily_country_summary"] is None
    assert "Grain: publish" in comments["publish_log"]
    assert col_comments[("fct_chart_entries", "rank")] == "Position in the chart, 1 = top."
    assert col_comments[("fct_chart_entries", "app_id")] == "Apple app id."
    assert col_comments[("fct_chart_entries", "app_name")] is None
    assert col_comments[("quarantine", "payload_sha256")].startswith("Raw payload")


def test_quarantined_partitions_keep_last_good_rows_and_later_publish_releases_them(home):
    snap1 = load_lake(home, base_rows(), "marts v1")
    first = do_publish(home, snap1, run_id="run-1")
    fr14_v1 = rows(home.serving_db, "SELECT * FROM analytics.fct_chart_entries WHERE country = 'fr' "
                                    "AND chart_date = ? ORDER BY device, rank", [D14])
    summary_fr14_v1 = rows(home.serving_db, "SELECT * FROM analytics.mart_daily_country_summary "
                                            "WHERE country = 'fr' AND chart_date = ? ORDER BY ALL", [D14])

    snap2 = load_lake(home, second_lake_state(), "marts v2")
    res = do_publish(home, snap2, QUARANTINE_2, run_id="run-2")
    assert res.publish_id == 2 and res.lake_snapshot_id == snap2
    # fct is partitioned down to the chart: only fr/14/iphone is held back (3 good rows kept);
    # the summary is partitioned by country x day, so the whole fr/14 (iphone and ipad) is held back.
    assert res.carried_over == {"fct_chart_entries": 3, "mart_daily_country_summary": 2, "dim_countries": 0}
    assert res.partitions_quarantined == 2

    fr14 = rows(home.serving_db, "SELECT * FROM analytics.fct_chart_entries WHERE country = 'fr' "
                                 "AND chart_date = ? ORDER BY device, rank", [D14])
    assert fr14 == fr14_v1  # the truncated payload never reached BI; iPad chart unchanged in the lake too
    assert rows(home.serving_db, "SELECT * FROM analytics.mart_daily_country_summary WHERE country = 'fr' "
                                 "AND chart_date = ? ORDER BY ALL", [D14]) == summary_fr14_v1
    # Other partitions publish from the lake: the corrected US day and the new US day.
    assert rows(home.serving_db, "SELECT app_id FROM analytics.fct_chart_entries WHERE country = 'us' "
                                 "AND chart_date = ? ORDER BY rank", [D14]) == [
        ("741292507",), ("1498607143",), ("835599320",), ("6446901002",)]
    assert rows(home.serving_db, "SELECT count(*) FROM analytics.fct_chart_entries WHERE chart_date = ?",
                [D15]) == [(2,)]  # us/15 only: de/15 is quarantined and had no previous rows
    assert rows(home.serving_db, "SELECT count(*) FROM analytics.mart_daily_country_summary "
                                 "WHERE country = 'de'") == [(0,)]
    assert res.row_counts["fct_chart_entries"] == 3 + 3 + 4 + 3 + 2 + 2  # us13 us14 fr13 fr14(3+2) us15

    log = read_publish_log(home.serving_db)
    assert [(r["publish_id"], r["lake_snapshot_id"], r["run_id"], r["partitions_quarantined"]) for r in log] == [
        (1, snap1, "run-1", 0), (2, snap2, "run-2", 2)]
    assert log[0]["published_at"] <= log[1]["published_at"]
    q = rows(home.serving_db, "SELECT publish_id, country, chart_date, store, device, chart, genre_id, "
                              "partition, reason, payload_sha256 FROM analytics.quarantine ORDER BY country")
    assert q == [
        (2, "de", D15, None, None, None, None, json.dumps({"chart_date": "2025-01-15", "country": "de"}),
         "payload does not parse", None),
        (2, "fr", D14, "apple", "iphone", "top-free", None,
         json.dumps({"chart": "top-free", "chart_date": "2025-01-14", "country": "fr", "device": "iphone",
                     "genre_id": None, "store": "apple"}), "entry_count 1 < 100", SHA_FR),
    ]

    # Publish 3, nothing quarantined: the lake's fr/14 (now accepted) is published, history is kept.
    res3 = do_publish(home, snap2, run_id="run-3")
    assert res3.publish_id == 3 and res3.carried_over["fct_chart_entries"] == 0
    assert rows(home.serving_db, "SELECT app_id FROM analytics.fct_chart_entries WHERE country = 'fr' "
                                 "AND chart_date = ? AND device = 'iphone'", [D14]) == [("1641486558",)]
    assert rows(home.serving_db, "SELECT publish_id, count(*) FROM analytics.quarantine GROUP BY 1") == [(2, 2)]
    assert [r["publish_id"] for r in read_publish_log(home.serving_db)] == [1, 2, 3]

    # Time travel: publishing an older snapshot shows exactly that snapshot's marts.
    res4 = do_publish(home, snap1, run_id="run-4")
    assert res4.row_counts["fct_chart_entries"] == first.row_counts["fct_chart_entries"]
    assert rows(home.serving_db, "SELECT count(*) FROM analytics.fct_chart_entries WHERE chart_date = ?",
                [D15]) == [(0,)]
    assert last_publish(home)["lake_snapshot_id"] == snap1


def test_carry_over_survives_a_mart_that_gained_a_column(home):
    snap1 = load_lake(home, base_rows(), "marts v1")
    do_publish(home, snap1)

    with lake.session(home) as con:
        con.execute("ALTER TABLE marts.fct_chart_entries ADD COLUMN price DECIMAL(10,2)")
        con.execute("UPDATE marts.fct_chart_entries SET price = 0")
        snap2 = lake.current_snapshot(con)
    res = do_publish(home, snap2, [QuarantineEntry("us", D13, "late payload")])
    assert res.carried_over["fct_chart_entries"] == 3
    got = rows(home.serving_db, "SELECT country, chart_date, price IS NULL, count(*) "
                                "FROM analytics.fct_chart_entries GROUP BY ALL ORDER BY ALL")
    assert got == [("fr", D13, False, 3), ("fr", D14, False, 5), ("us", D13, True, 3), ("us", D14, False, 3)]


def test_bad_input_fails_and_leaves_the_serving_file_alone(home):
    snap = load_lake(home, base_rows(), "marts v1")
    do_publish(home, snap)
    before = home.serving_db.read_bytes()

    with pytest.raises(ServingError, match=f"lake snapshot {snap + 100} does not exist"):
        do_publish(home, snap + 100)
    with pytest.raises(ServingError, match=r"mart 'fct_chart_entries'.*partition columns \['store'\]"):
        do_publish(home, snap, marts={"fct_chart_entries": MartSpec("marts.fct_chart_entries", ("store",))})
    with pytest.raises(ServingError, match="marts.mart_nope"):
        do_publish(home, snap, marts={"mart_nope": MartSpec("marts.mart_nope")})
    with pytest.raises(ServingError, match="not a lake relation name"):
        MartSpec("marts.x; DROP TABLE y")
    with pytest.raises(ServingError, match="clash"):
        do_publish(home, snap, marts={"publish_log": MartSpec("marts.dim_countries")})

    assert home.serving_db.read_bytes() == before
    assert sorted(p.name for p in home.serving.iterdir()) == [".chartlake.duckdb.publish.lock", ".chartlake.duckdb.sha256",
                                                             "chartlake.duckdb"]
    assert [r["publish_id"] for r in read_publish_log(home.serving_db)] == [1]


def test_reader_process_holding_the_old_file_keeps_reading_it(home):
    snap1 = load_lake(home, base_rows(), "marts v1")
    do_publish(home, snap1)
    reader = subprocess.Popen(
        [sys.executable, str(READERS), "hold", str(home.serving_db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        held = json.loads(reader.stdout.readline())
        assert held["publish_id"] == 1 and held["counts"]["fct_chart_entries"] == 14

        # The publish reads the old file (read-only) while the reader holds it, and swaps in a new one.
        snap2 = load_lake(home, second_lake_state(), "marts v2")
        res = do_publish(home, snap2, QUARANTINE_2)
        assert res.publish_id == 2

        reader.stdin.write("again\n")
        reader.stdin.flush()
        assert json.loads(reader.stdout.readline()) == held  # same complete old state, no error
        reader.stdin.close()
        assert reader.wait(timeout=30) == 0, reader.stderr.read()
    finally:
        if reader.poll() is None:
            reader.kill()

    new = subprocess.run([sys.executable, str(READERS), "hold", str(home.serving_db)], input="",
                         capture_output=True, text=True, timeout=60, check=True)
    state = json.loads(new.stdout)
    assert state["publish_id"] == 2 and state["log_ids"] == [1, 2]
    assert state["counts"]["fct_chart_entries"] == res.row_counts["fct_chart_entries"]
    assert "us/2025-01-15/iphone=741292507" in state["top"]
