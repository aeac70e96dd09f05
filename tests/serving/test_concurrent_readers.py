"""Readers in other processes while the pipeline writes the lake and publishes several times.

Three reader processes loop (bounded) opening the serving file read-only and the lake read-only. None may
hit a lock error, and every read of the serving file must describe exactly one publish: its table row counts
are the ones that publish wrote and its log holds exactly publishes 1..n.
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

import pytest

from orchestration.lib.serving import QuarantineEntry, publish

from serving_fixtures import D14, DESCRIPTIONS, MARTS, base_rows, chart, load_lake

READERS = Path(__file__).with_name("serving_readers.py")
PUBLISHES = 4
RW_PUBLISHES = 20


def test_readers_never_block_or_see_a_mixed_state(home, tmp_path):
    def run(snap, k):
        # Odd publishes hold fr/14 back, so carried-over rows vary too.
        quarantined = [QuarantineEntry("fr", D14, f"publish {k}: audit failed")] if k % 2 else []
        return publish(home, lake_snapshot_id=snap, marts=MARTS, run_id=f"run-{k}", quarantined=quarantined,
                       check_summary={"k": k}, descriptions=DESCRIPTIONS)

    lake_counts: dict[int, int] = {}
    snap = load_lake(home, base_rows(), "marts v0")
    lake_counts[snap] = len(base_rows())
    expected = {1: run(snap, 0).row_counts}

    stop = tmp_path / "stop"
    readers = [
        subprocess.Popen([sys.executable, str(READERS), "loop", str(home.root), "300", str(stop), "ready"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    try:
        for r in readers:
            assert r.stdout.readline().strip() == "ready", r.stderr.read()
        for k in range(1, PUBLISHES + 1):
            # Each lake state has a different size: one more US day per step, k + 1 entries long.
            extra = []
            for d in range(k):
                day = dt.date(2025, 1, 15) + dt.timedelta(days=d)
                extra += chart("us", day, "iphone", ["741292507", "835599320", "6448311069"][: 1 + (k + d) % 3])
            fct = base_rows() + extra
            snap = load_lake(home, fct, f"marts v{k}")
            lake_counts[snap] = len(fct)
            res = run(snap, k)
            assert res.publish_id == k + 1
            expected[res.publish_id] = res.row_counts
            time.sleep(0.1)
    finally:
        stop.touch()
        outputs = []
        for r in readers:
            out, err = r.communicate(timeout=60)
            assert r.returncode == 0, err
            outputs.append(json.loads(out))

    assert len({tuple(sorted(c.items())) for c in expected.values()}) > 2, "lake states should differ"
    seen = set()
    for out in outputs:
        assert out["errors"] == []
        assert len(out["serving"]) >= 3 and len(out["lake"]) >= 3
        for obs in out["serving"]:
            pid = obs["publish_id"]
            seen.add(pid)
            assert obs["log_ids"] == list(range(1, pid + 1))
            assert obs["counts"] == expected[pid], f"publish {pid} read with mixed row counts"
        for snap_id, n in out["lake"]:
            # A publish commits its own snapshot (lake schema `published`) without touching marts: a reader at
            # that snapshot sees the marts of the latest load before it.
            loaded = max(s for s in lake_counts if s <= snap_id)
            assert lake_counts[loaded] == n
    assert len(seen) >= 3, f"readers saw only publishes {sorted(seen)}: they did not overlap the publishes"


@pytest.mark.slow
def test_chartlake_readers_and_a_read_write_client_during_repeated_publishes(home, tmp_path):
    """Issue 17: 4 chartlake readers while a client holds each new serving file read-write and writes into its WAL:
    no publish is stopped, no read fails, none mixes two publishes or shows the client's table."""
    def run(snap, k):
        quarantined = [QuarantineEntry("fr", D14, f"publish {k}: audit failed")] if k % 3 == 1 else []
        return publish(home, lake_snapshot_id=snap, marts=MARTS, run_id=f"run-{k}", quarantined=quarantined,
                       check_summary={"k": k}, descriptions=DESCRIPTIONS)

    snap = load_lake(home, base_rows(), "marts v0")
    expected = {1: run(snap, 0).row_counts}
    stop = tmp_path / "stop"
    client = subprocess.Popen([sys.executable, str(READERS), "rw-client", str(home.serving_db), str(stop)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    readers = [subprocess.Popen([sys.executable, str(READERS), "chartlake-loop", str(home.root), "300", str(stop)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    try:
        assert client.stdout.readline().strip() == "ready", client.stderr.read()
        for r in readers:
            assert r.stdout.readline().strip() == "ready", r.stderr.read()
        for k in range(1, RW_PUBLISHES + 1):
            extra = []
            for d in range(k % 5):
                day = dt.date(2025, 1, 15) + dt.timedelta(days=d)
                extra += chart("us", day, "iphone", ["741292507", "835599320", "6448311069"][: 1 + (k + d) % 3])
            snap = load_lake(home, base_rows() + extra, f"marts v{k}")
            res = run(snap, k)
            assert res.publish_id == k + 1
            expected[res.publish_id] = res.row_counts
    finally:
        stop.touch()
        outputs = []
        for r in readers:
            out, err = r.communicate(timeout=120)
            assert r.returncode == 0, err
            outputs.append(json.loads(out))
        held = json.loads(client.stdout.readline())["held"]
        os.kill(client.pid, signal.SIGKILL)
        client.wait(timeout=30)

    assert held >= 3, f"the read-write client held only {held} of the files"
    seen = set()
    for out in outputs:
        assert out["errors"] == []
        assert len(out["serving"]) >= 3
        for obs in out["serving"]:
            pid = obs["publish_id"]
            seen.add(pid)
            assert "evil" not in obs["tables"]
            assert obs["log_ids"] == list(range(1, pid + 1))
            assert obs["counts"] == expected[pid], f"publish {pid} read with mixed row counts"
    assert len(seen) >= 5, f"readers saw only publishes {sorted(seen)}"
