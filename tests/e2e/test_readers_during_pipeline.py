"""Issue 4: BI readers in other processes while full pipeline runs (`chartlake run`: land, dbt, checks, publish)
write the lake and publish.

Three reader processes (tests/serving/serving_readers.py, what a dashboard does) poll the serving file read-only and
the lake read-only for the whole time. None may hit a lock error; every read of the serving file must describe
exactly one publish (its row counts and #1 apps are the ones that publish wrote, its log holds publishes 1..n);
every lake read at a snapshot must match what that snapshot holds.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_chartlake
from orchestration.config import Home
from orchestration.lib import lake
from orchestration import demo

pytestmark = pytest.mark.slow

READERS = Path(__file__).resolve().parents[1] / "serving" / "serving_readers.py"
sys.path.insert(0, str(READERS.parent))
from serving_readers import serving_state  # noqa: E402

COUNTRIES = ("us", "fr")


def _served(home: Home) -> dict:
    con = duckdb.connect(str(home.serving_db), read_only=True)
    try:
        return serving_state(con)
    finally:
        con.close()


def _land_and_run(home: Home, tmp: Path, start: dt.date, end: dt.date) -> dict:
    files = demo.generate(tmp / f"payloads-{start}", start=start, end=end, countries=COUNTRIES)
    assert files
    assert run_chartlake(home, "import", "--no-land", str(tmp / f"payloads-{start}")) == 0
    assert run_chartlake(home, "run", "--from", start.isoformat(), "--to", end.isoformat()) == 0
    return _served(home)


def test_readers_never_block_or_see_a_partial_publish_during_pipeline_runs(tmp_path):
    home = Home(tmp_path / "home")
    assert run_chartlake(home, "demo", "--countries", ",".join(COUNTRIES),
                         "--start", "2025-01-12", "--end", "2025-01-13") == 0
    expected = {1: _served(home)}

    stop = tmp_path / "stop"
    readers = [subprocess.Popen([sys.executable, str(READERS), "loop", str(home.root), "1800", str(stop)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(3)]
    outputs = []
    try:
        # Two full runs while the readers poll: each lands new days, rebuilds the marts and publishes.
        for start, end in ((dt.date(2025, 1, 14), dt.date(2025, 1, 14)), (dt.date(2025, 1, 15), dt.date(2025, 1, 16))):
            state = _land_and_run(home, tmp_path, start, end)
            expected[state["publish_id"]] = state
    finally:
        stop.touch()
        for r in readers:
            out, err = r.communicate(timeout=120)
            assert r.returncode == 0, err[-3000:]
            outputs.append(json.loads(out))

    assert sorted(expected) == [1, 2, 3]
    assert len({json.dumps(s["counts"], sort_keys=True) for s in expected.values()}) == 3, "each publish adds days"
    seen: set[int] = set()
    for out in outputs:
        assert out["errors"] == [], out["errors"][:5]
        for obs in out["serving"]:
            pid = obs["publish_id"]
            seen.add(pid)
            assert obs["log_ids"] == list(range(1, pid + 1))
            assert obs["counts"] == expected[pid]["counts"], f"publish {pid} read with other row counts"
            assert obs["top"] == expected[pid]["top"], f"publish {pid} read with other #1 apps"
    assert seen >= {1, 3}, f"readers saw only publishes {sorted(seen)}: they did not overlap the runs"

    # Every lake read saw exactly what its snapshot holds (no half-committed state).
    snapshots = {tuple(r) for out in outputs for r in out["lake"]}
    assert len({s for s, _ in snapshots}) > 3, "the readers should have seen the lake move"
    with lake.session(home, read_only=True) as con:
        for snap, n in sorted(snapshots):
            at = con.execute(f"SELECT count(*) FROM marts.fct_chart_entries AT (VERSION => {int(snap)})").fetchone()[0]
            assert at == n, f"snapshot {snap}: a reader counted {n} rows, the snapshot holds {at}"
