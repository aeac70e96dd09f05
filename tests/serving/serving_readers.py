"""Reader processes for the serving tests: what a BI tool does, in a separate process.

Run as a script (``python serving_readers.py MODE ...``) so file locks are taken by another process, as with
a real BI client:

- ``hold PATH``: open the serving file read-only, print its state as a JSON line, then print it again for each
  line read on stdin, on the same connection (a dashboard that keeps the file open); exit on EOF.
- ``hold-rw PATH``: open the serving file read-write (what a BI tool must not do), print "ready", wait for EOF.
- ``write-rw PATH``: open it read-write, write a table ``analytics.evil`` (into its WAL), print "wrote", wait to be
  killed (kill -9 leaves the WAL beside the file).
- ``checkpoint-rw PATH [hold]``: open it read-write, write ``analytics.evil``, delete publish 1 from the log and
  checkpoint that into the file; with ``hold``, print "ready" and keep it open until EOF.
- ``chartlake-loop HOME SECONDS STOPFILE``: like ``loop`` for the serving file, but opened the way chartlake's own
  readers do (``serving_file.attach_read_only``); prints "ready" once looping, then the JSON object at the end.
- ``rw-client PATH STOPFILE``: a desktop client gone wrong: holds the current serving file read-write, writes a
  table into its WAL, and re-opens the path whenever a publish swapped a new file in; prints "ready" after its
  first open and, at the end, how many files it held; never checkpoints (auto-checkpoint off).
- ``loop HOME SECONDS STOPFILE [ready]``: (with ``ready``, print "ready" after the first round) until STOPFILE
  exists (or SECONDS pass), open the serving file read-only and
  the lake read-only (``lake.connect``), read both, close; print one JSON object with every observation and
  every error.
"""

from __future__ import annotations

import json
import os
import sys
import time

import duckdb


def serving_state(con: duckdb.DuckDBPyConnection) -> dict:
    """Everything read in one transaction, so it describes exactly one file."""
    con.execute("BEGIN")
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'analytics' ORDER BY 1"
            ).fetchall()
        ]
        counts = {t: con.execute(f'SELECT count(*) FROM analytics."{t}"').fetchone()[0] for t in tables}
        publish_id, log_ids = con.execute(
            "SELECT max(publish_id), list(publish_id ORDER BY publish_id) FROM analytics.publish_log"
        ).fetchone()
        top = con.execute(
            "SELECT country || '/' || chart_date || '/' || device || '=' || app_id FROM analytics.fct_chart_entries "
            "WHERE rank = 1 ORDER BY ALL"
        ).fetchall()
    finally:
        con.execute("COMMIT")
    return {"publish_id": publish_id, "log_ids": log_ids, "counts": counts, "top": [r[0] for r in top]}


def hold(path: str) -> None:
    con = duckdb.connect(path, read_only=True)
    print(json.dumps(serving_state(con)), flush=True)
    for _ in sys.stdin:
        print(json.dumps(serving_state(con)), flush=True)


def hold_rw(path: str) -> None:
    con = duckdb.connect(path)
    con.execute("SELECT 1").fetchall()
    print("ready", flush=True)
    sys.stdin.read()
    con.close()


def write_rw(path: str) -> None:
    con = duckdb.connect(path)
    con.execute("CREATE OR REPLACE TABLE analytics.evil AS SELECT 'not published' AS x")
    print("wrote", flush=True)
    sys.stdin.read()


def checkpoint_rw(path: str, hold: str = "") -> None:
    con = duckdb.connect(path)
    con.execute("CREATE OR REPLACE TABLE analytics.evil AS SELECT 'not published' AS x")
    con.execute("DELETE FROM analytics.publish_log WHERE publish_id = 1")
    con.execute("CHECKPOINT")
    if hold:
        print("ready", flush=True)
        sys.stdin.read()
    con.close()


def chartlake_loop(home_dir: str, seconds: str, stopfile: str) -> None:
    from orchestration.config import Home
    from orchestration.lib import serving_file

    home = Home.resolve(home_dir)
    deadline = time.monotonic() + float(seconds)
    serving, errors, ready = [], [], False
    while time.monotonic() < deadline and not os.path.exists(stopfile):
        try:
            con = duckdb.connect(":memory:")
            try:
                serving_file.attach_read_only(con, home.serving_db, "s")
                con.execute("USE s")
                state = serving_state(con)
                state["tables"] = [r[0] for r in con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE database_name = 's' ORDER BY 1").fetchall()]
                serving.append(state)
            finally:
                con.close()
        except Exception as exc:  # every failure is reported to the test, which fails on any
            errors.append(f"serving: {type(exc).__name__}: {exc}")
        if not ready:
            print("ready", flush=True)
            ready = True
        time.sleep(0.05)
    print(json.dumps({"serving": serving, "errors": errors}), flush=True)


def rw_client(path: str, stopfile: str) -> None:
    con, ino, held, ready = None, None, 0, False
    while not os.path.exists(stopfile):
        now = os.stat(path).st_ino
        if now != ino:
            try:
                new = duckdb.connect(path, config={"wal_autocheckpoint": "1TB", "checkpoint_threshold": "1TB"})
            except duckdb.IOException:
                time.sleep(0.02)  # a reader holds its shared lock this instant
                continue
            new.execute("CREATE OR REPLACE TABLE analytics.evil AS SELECT 'not published' AS x")
            con, ino, held = new, now, held + 1  # the old connection stays open: killed, it never checkpoints
            if not ready:
                print("ready", flush=True)
                ready = True
        time.sleep(0.05)
    print(json.dumps({"held": held}), flush=True)
    sys.stdin.read()  # killed -9 here by the test


def loop(home_dir: str, seconds: str, stopfile: str, signal_ready: str = "") -> None:
    from orchestration.config import Home
    from orchestration.lib import lake

    home = Home.resolve(home_dir)
    deadline = time.monotonic() + float(seconds)
    serving, lake_reads, errors = [], [], []
    while time.monotonic() < deadline and not os.path.exists(stopfile):
        time.sleep(0.05)  # a dashboard polls; leave the shared CPUs to the pipeline
        if home.serving_db.exists():
            try:
                con = duckdb.connect(str(home.serving_db), read_only=True)
                try:
                    serving.append(serving_state(con))
                finally:
                    con.close()
            except Exception as exc:  # every failure is reported to the test, which fails on any
                errors.append(f"serving: {type(exc).__name__}: {exc}")
        try:
            con = lake.connect(home, read_only=True)
            try:
                snap = lake.current_snapshot(con)
                n = con.execute(
                    f"SELECT count(*) FROM marts.fct_chart_entries AT (VERSION => {int(snap)})"
                ).fetchone()[0]
                lake_reads.append([snap, n])
            finally:
                con.close()
        except Exception as exc:
            errors.append(f"lake: {type(exc).__name__}: {exc}")
        if signal_ready:
            print("ready", flush=True)  # once looping: the test starts publishing now, not after a guessed sleep
            signal_ready = ""
    print(json.dumps({"serving": serving, "lake": lake_reads, "errors": errors}), flush=True)


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    {"hold": hold, "hold-rw": hold_rw, "write-rw": write_rw, "checkpoint-rw": checkpoint_rw, "loop": loop,
     "chartlake-loop": chartlake_loop, "rw-client": rw_client}[mode](*args)
