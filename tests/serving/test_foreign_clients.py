"""Issue 17: a client that opens the serving file read-write (what BI tools must not do) never blocks a publish and
never leaks into what chartlake reads: not while it holds the file, not through the WAL it leaves when killed, not
through writes it checkpointed into the file. Every client here is a real DuckDB in another process."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from orchestration.lib import lake, serving_file
from orchestration.lib.serving import publish, read_publish_log
from orchestration.lib.serving_file import ServingFileError

from serving_fixtures import D15, DESCRIPTIONS, MARTS, base_rows, chart, load_lake

READERS = Path(__file__).with_name("serving_readers.py")


def _publish(home, snap, run_id):
    return publish(home, lake_snapshot_id=snap, marts=MARTS, run_id=run_id, quarantined=[],
                   check_summary={"failed": []}, descriptions=DESCRIPTIONS)


def _tables(path) -> list[str]:
    con = duckdb.connect(":memory:")
    try:
        serving_file.attach_read_only(con, path, "s")
        return [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 's' ORDER BY 1").fetchall()]
    finally:
        con.close()


def _client(mode, path):
    return subprocess.Popen([sys.executable, str(READERS), mode, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def published(home):
    snap = load_lake(home, base_rows(), "marts v1")
    _publish(home, snap, "run-1")
    return home, snap


def test_a_read_write_holder_blocks_no_publish_and_readers_read_what_was_published(published):
    home, snap = published
    holder = _client("hold-rw", home.serving_db)
    try:
        assert holder.stdout.readline().strip() == "ready", holder.stderr.read()
        # Its lock forbids a read-only open; the reader reads a private copy whose digest is the publish's.
        assert [r["publish_id"] for r in read_publish_log(home.serving_db)] == [1]

        snap2 = load_lake(home, base_rows() + chart("us", D15, "iphone", ["741292507"]), "marts v2")
        res = _publish(home, snap2, "run-2")  # the holder keeps the old inode; the path gets the new file
        assert res.publish_id == 2
        assert [r["publish_id"] for r in read_publish_log(home.serving_db)] == [1, 2]
        assert holder.poll() is None  # still holding the old file, unharmed
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert not [p for p in home.serving.iterdir() if p.name.endswith(".tmp") or ".read-" in p.name]


def test_a_holder_that_wrote_into_the_file_is_refused_in_one_line_until_the_next_publish(published):
    home, snap = published
    holder = subprocess.Popen([sys.executable, str(READERS), "checkpoint-rw", str(home.serving_db), "hold"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready", holder.stderr.read()
        with pytest.raises(ServingFileError, match=r"is held read-write by another process .*PID \d+.*no verified "
                                                   r"copy.*read-only") as e:
            read_publish_log(home.serving_db)
        assert str(home.serving_db) in str(e.value) and "\n" not in str(e.value)
        res = _publish(home, snap, "run-2")  # rebuilt from the lake, the holder notwithstanding
        assert res.publish_id == 2
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert [r["publish_id"] for r in read_publish_log(home.serving_db)] == [1, 2]
    assert "evil" not in _tables(home.serving_db)


def test_a_stale_wal_is_never_read_nor_replayed_onto_the_next_file(published):
    home, snap = published
    before = hashlib.sha256(home.serving_db.read_bytes()).hexdigest()
    writer = _client("write-rw", home.serving_db)
    assert writer.stdout.readline().strip() == "wrote", writer.stderr.read()
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    wal = serving_file.wal_of(home.serving_db)
    assert wal.exists() and hashlib.sha256(home.serving_db.read_bytes()).hexdigest() == before

    # What a plain DuckDB open does with it: the client's table appears as if published.
    con = duckdb.connect(":memory:")
    con.execute(f"ATTACH '{home.serving_db}' AS s (READ_ONLY)")
    assert "evil" in {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    con.close()

    assert "evil" not in _tables(home.serving_db)
    assert [r["publish_id"] for r in read_publish_log(home.serving_db)] == [1]

    res = _publish(home, snap, "run-2")
    assert res.publish_id == 2
    assert not wal.exists()
    moved = [p for p in home.serving.iterdir() if p.name.startswith(wal.name + ".stale-")]
    assert len(moved) == 1  # kept aside, never replayed
    # Even a plain DuckDB open of the new file (a BI tool) no longer sees the client's table.
    con = duckdb.connect(":memory:")
    con.execute(f"ATTACH '{home.serving_db}' AS s (READ_ONLY)")
    assert "evil" not in {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    con.close()


def test_writes_checkpointed_into_the_file_are_dropped_and_the_file_rebuilt_from_the_lake(published):
    home, snap = published
    snap2 = load_lake(home, base_rows() + chart("us", D15, "iphone", ["741292507"]), "marts v2")
    first = _publish(home, snap2, "run-2")
    log_before = read_publish_log(home.serving_db)
    writer = subprocess.run([sys.executable, str(READERS), "checkpoint-rw", str(home.serving_db)],
                            capture_output=True, text=True, timeout=60)
    assert writer.returncode == 0, writer.stderr
    assert serving_file.private_copy(home.serving_db, home.root / "copy.duckdb") is False
    con = duckdb.connect(str(home.root / "copy.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM analytics.evil").fetchone() == (1,)  # the client really wrote into it
    con.close()
    with pytest.raises(ServingFileError, match="was changed by another client since its publish"):
        read_publish_log(home.serving_db)

    snap3 = load_lake(home, base_rows() + chart("us", D15, "iphone", ["835599320"]), "marts v3")
    res = _publish(home, snap3, "run-3")

    assert res.publish_id == 3 and set(res.refresh.values()) == {"new file"}
    assert "evil" not in _tables(home.serving_db)
    log = read_publish_log(home.serving_db)
    # The history the client deleted is back, exactly as published (from the lake's publish commits).
    assert [{k: r[k] for k in ("publish_id", "lake_snapshot_id", "published_snapshot_id", "run_id")} for r in log[:2]] \
        == [{k: r[k] for k in ("publish_id", "lake_snapshot_id", "published_snapshot_id", "run_id")} for r in log_before]
    assert log[1]["published_snapshot_id"] == first.published_snapshot_id
    assert [r["publish_id"] for r in log] == [1, 2, 3]
    assert serving_file.private_copy(home.serving_db, home.root / "copy2.duckdb") is True


def test_status_and_query_never_crash_on_a_held_file_and_never_show_a_clients_writes(published, capsys):
    from tests.conftest import run_chartlake

    home, _ = published
    with lake.session(home) as con:
        lake.ensure_raw_schema(con)  # status reads the raw layer first
    holder = _client("hold-rw", home.serving_db)
    try:
        assert holder.stdout.readline().strip() == "ready", holder.stderr.read()
        assert run_chartlake(home, "query", "--format", "csv", "select count(*) n from dim_countries") == 0
        assert capsys.readouterr().out.split() == ["n", "3"]
        assert run_chartlake(home, "status") == 0
        assert "last publish #1" in capsys.readouterr().out
        # Past publishes come from the lake: the holder does not get in their way.
        assert run_chartlake(home, "query", "--as-of", "1", "--format", "csv", "select count(*) n from dim_countries") == 0
        assert capsys.readouterr().out.split() == ["n", "3"]
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)

    writer = _client("write-rw", home.serving_db)
    assert writer.stdout.readline().strip() == "wrote", writer.stderr.read()
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    assert serving_file.wal_of(home.serving_db).exists()
    assert run_chartlake(home, "query", "--format", "csv", "show tables") == 0
    assert "evil" not in capsys.readouterr().out.split()
    assert run_chartlake(home, "status") == 0
    assert "last publish #1" in capsys.readouterr().out

    # A client that wrote into the file itself: refused in one line, never a traceback, never its rows.
    subprocess.run([sys.executable, str(READERS), "checkpoint-rw", str(home.serving_db)], check=True, timeout=60)
    assert run_chartlake(home, "query", "select count(*) from evil") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "changed by another client" in err and str(home.serving_db) in err
    assert run_chartlake(home, "status") == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "changed by another client" in captured.err
    assert "Traceback" not in captured.err and "snapshot" in captured.out  # the lake part still printed
