"""Issue 17, "readers cannot poison or block the pipeline": 4 reader processes during 50 publishes, while a fifth
process, a desktop SQL client gone wrong, holds each new serving file read-write and writes a table into its WAL.

The readers open the file the way chartlake's own readers do (``serving_file.attach_read_only``: what ``status``,
``query``, ``versions`` and the freshness check use). Each publish's file is unique (its publish log has one more
row, its fact table one more row, every third one holds a partition back), and every reader reads a file in one
transaction, so a read that mixed two publishes could not match the one publish whose log it shows. Pinned: no
publish is stopped (50 of 50, ids 2..51), 0 reader errors, every read equals what its publish wrote (counts, #1
apps, log), no read shows the client's table, and the reads overlapped the publishes (many distinct publishes seen).
Every helper process says "ready" on stdout before the publishes start: no guessed sleeps.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from orchestration.config import Home
from orchestration.lib import serving_file
from orchestration.lib.serving import QuarantineEntry, publish

SERVING_TESTS = Path(__file__).resolve().parents[1] / "serving"
sys.path.insert(0, str(SERVING_TESTS))
from serving_fixtures import APPS, D14, DESCRIPTIONS, MARTS, base_rows, chart, load_lake  # noqa: E402
from serving_readers import serving_state  # noqa: E402

pytestmark = pytest.mark.slow

READERS = SERVING_TESTS / "serving_readers.py"
PUBLISHES = 50
N_READERS = 4


def _published_state(home: Home) -> dict:
    con = duckdb.connect(":memory:")
    try:
        serving_file.attach_read_only(con, home.serving_db, "s")
        con.execute("USE s")
        return serving_state(con)
    finally:
        con.close()


def _lake_rows(k: int) -> list[tuple]:
    """Publish k's fact rows: the base charts plus k one-app US charts, a day each, the #1 app rotating."""
    apps = sorted(APPS)
    return base_rows() + [row for d in range(k) for row in chart(
        "us", dt.date(2025, 1, 15) + dt.timedelta(days=d), "iphone", [apps[(k + d) % len(apps)]])]


def test_four_readers_and_a_read_write_client_during_50_publishes(tmp_path):
    t0 = time.monotonic()
    home = Home.resolve(tmp_path / "home").ensure()

    def do_publish(k: int):
        quarantined = [QuarantineEntry("fr", D14, f"publish {k}: audit failed")] if k % 3 == 1 else []
        snap = load_lake(home, _lake_rows(k), f"marts v{k}")
        return publish(home, lake_snapshot_id=snap, marts=MARTS, run_id=f"run-{k}", quarantined=quarantined,
                       check_summary={"k": k}, descriptions=DESCRIPTIONS)

    assert do_publish(0).publish_id == 1
    expected = {1: _published_state(home)}
    stop = tmp_path / "stop"
    client = subprocess.Popen([sys.executable, str(READERS), "rw-client", str(home.serving_db), str(stop)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    readers = [subprocess.Popen([sys.executable, str(READERS), "chartlake-loop", str(home.root), "900", str(stop)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(N_READERS)]
    outputs = []
    try:
        assert client.stdout.readline().strip() == "ready", client.stderr.read()
        for r in readers:
            assert r.stdout.readline().strip() == "ready", r.stderr.read()
        for k in range(1, PUBLISHES + 1):
            res = do_publish(k)
            assert res.publish_id == k + 1
            expected[res.publish_id] = _published_state(home)
    finally:
        stop.touch()
        for r in readers:
            out, err = r.communicate(timeout=120)
            assert r.returncode == 0, err[-3000:]
            outputs.append(json.loads(out))
        held = json.loads(client.stdout.readline())["held"]
        os.kill(client.pid, signal.SIGKILL)
        client.wait(timeout=30)

    assert sorted(expected) == list(range(1, PUBLISHES + 2))
    signatures = {json.dumps([s["counts"], s["top"]], sort_keys=True) for s in expected.values()}
    assert len(signatures) == len(expected), "every publish must be told apart by what a reader reads"
    assert all("evil" not in s["counts"] for s in expected.values())
    assert held >= PUBLISHES // 2, f"the read-write client held only {held} of the {PUBLISHES + 1} files"

    seen: set[int] = set()
    reads = 0
    for out in outputs:
        assert out["errors"] == [], out["errors"][:5]
        for obs in out["serving"]:
            pid = obs["publish_id"]
            seen.add(pid)
            reads += 1
            assert "evil" not in obs["tables"], f"publish {pid} read with the client's table"
            assert obs["log_ids"] == list(range(1, pid + 1)), f"publish {pid} read with another log"
            assert obs["counts"] == expected[pid]["counts"], f"publish {pid} read with other row counts"
            assert obs["top"] == expected[pid]["top"], f"publish {pid} read with other #1 apps"
    assert len(seen) >= PUBLISHES // 2, f"readers saw only publishes {sorted(seen)}: they did not overlap"
    print(f"\n{N_READERS} readers, {reads} reads of {len(seen)} distinct publishes, the client held {held} files; "
          f"{PUBLISHES} publishes in {time.monotonic() - t0:.0f} s")
