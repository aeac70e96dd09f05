"""The serving file opens in an older DuckDB, as bundled by BI drivers (DESIGN.md: Metabase shipped 1.4).

DuckDB 1.1.3 is installed once into a separate venv under the user's cache directory (a registry download);
the test skips, saying so, when pip cannot reach the registry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestration.lib.serving import QuarantineEntry, publish

from serving_fixtures import D14, DESCRIPTIONS, MARTS, base_rows, load_lake

OLD_DUCKDB = "1.1.3"

READ_IN_OLD = r"""
import json, sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
out = {
    "version": duckdb.__version__,
    "log": con.execute("SELECT publish_id, lake_snapshot_id, run_id, check_summary FROM analytics.publish_log "
                       "ORDER BY 1").fetchall(),
    "counts": {t: con.execute(f'SELECT count(*) FROM analytics."{t}"').fetchone()[0]
               for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'analytics'")
               .fetchall()},
    "fr14": [[str(v) for v in r] for r in con.execute(
        "SELECT chart_date, rank, app_id FROM analytics.fct_chart_entries WHERE country = 'fr' "
        "AND chart_date = DATE '2025-01-14' AND device = 'iphone' ORDER BY rank").fetchall()],
    "comment": con.execute("SELECT comment FROM duckdb_columns() WHERE table_name = 'fct_chart_entries' "
                           "AND column_name = 'rank'").fetchone()[0],
    "quarantine": con.execute("SELECT publish_id, country, chart_date::VARCHAR, reason FROM analytics.quarantine")
                  .fetchall(),
}
print(json.dumps(out))
"""


def old_duckdb_python() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "chartlake" / f"duckdb-{OLD_DUCKDB}"
    python = cache / "bin" / "python"
    ready = cache / ".installed"
    if ready.exists() and python.exists():
        return python
    made = subprocess.run([sys.executable, "-m", "venv", "--clear", str(cache)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot create a venv for DuckDB {OLD_DUCKDB} in {cache}: {made.stderr.strip()[-300:]}")
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"duckdb=={OLD_DUCKDB}"],
        capture_output=True, text=True, timeout=300,
    )
    if pip.returncode != 0:
        pytest.skip(f"pip could not install duckdb=={OLD_DUCKDB} (registry unreachable?): "
                    f"{(pip.stderr or pip.stdout).strip()[-300:]}")
    ready.touch()
    return python


@pytest.mark.slow
def test_serving_file_opens_read_only_in_duckdb_1_1(home):
    python = old_duckdb_python()
    snap1 = load_lake(home, base_rows(), "marts v1")
    publish(home, lake_snapshot_id=snap1, marts=MARTS, run_id="run-1", quarantined=[],
            check_summary={"ok": True}, descriptions=DESCRIPTIONS)
    res = publish(home, lake_snapshot_id=snap1, marts=MARTS, run_id="run-2",
                  quarantined=[QuarantineEntry("fr", D14, "audit failed")], check_summary={"ok": False},
                  descriptions=DESCRIPTIONS)

    got = subprocess.run([str(python), "-c", READ_IN_OLD, str(home.serving_db)], capture_output=True, text=True,
                         timeout=120)
    assert got.returncode == 0, got.stderr
    out = json.loads(got.stdout)
    assert out["version"] == OLD_DUCKDB
    assert [r[:3] for r in out["log"]] == [[1, snap1, "run-1"], [2, snap1, "run-2"]]
    assert json.loads(out["log"][1][3]) == {"ok": False}
    assert out["counts"] == res.row_counts
    assert out["fr14"] == [["2025-01-14", "1", "6448311069"], ["2025-01-14", "2", "835599320"],
                           ["2025-01-14", "3", "741292507"]]
    assert out["comment"] == "Position in the chart, 1 = top."
    assert out["quarantine"] == [[2, "fr", "2025-01-14", "audit failed"]]
