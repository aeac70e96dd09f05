"""The benchmark harness at a tiny size: it runs end to end through the real pipeline, writes every figure, and its
marts-vs-floor equality check passes on real marts and fails when one floor row is changed.

No timing is asserted (the machine is shared): only that each figure exists and is consistent with the others.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load_harness():
    spec = importlib.util.spec_from_file_location("chartlake_benchmarks_run", REPO / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _load_harness()

DAYS, COUNTRIES, DEPTH = 3, 2, 10


def test_history_points_follow_the_size():
    assert bench.history_points(3) == [3]
    assert bench.history_points(90) == [30, 90]
    assert bench.history_points(365) == [30, 180, 365]


def test_floor_sql_has_every_placeholder_filled():
    sql = bench.floor_sql()
    assert "$" not in sql
    for mart in bench.MARTS:
        assert f"create or replace table floor.{mart} as" in sql


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    if not (bench.DBT_PROJECT_DIR / "target" / "manifest.json").exists():
        pytest.skip("no dbt manifest: run `make setup` first")
    base = tmp_path_factory.mktemp("bench")
    home, results = base / "home", base / "results"
    code = bench.main(["--days", str(DAYS), "--countries", str(COUNTRIES), "--depth", str(DEPTH),
                       "--home", str(home), "--results", str(results), "--keep"])
    return code, home, results


@pytest.mark.slow
def test_tiny_run_writes_every_figure_and_the_marts_equal_the_floor(tiny_run):
    code, _, results = tiny_run
    assert code == 0
    data = json.loads((results / "latest.json").read_text())
    f = data["figures"]
    # 3 days x 2 countries x 6 charts x 10 ranks, every chart full at depth 10.
    assert f["raw_rows"] == DAYS * COUNTRIES * 6 * DEPTH
    assert sum(b["rows"] for b in data["ingest_batches"]) == f["raw_rows"]
    assert sum(b["files"] for b in data["ingest_batches"]) == DAYS * COUNTRIES * 6
    for key in ("ingest_rows_per_s", "ingest_rows_per_cpu_s", "ingest_cpu_s", "ingest_floor_cpu_s",
                "ingest_vs_floor_cpu", "full_build_s", "full_build_cpu_s", "full_build_dbt_s", "floor_s",
                "serve_floor_s", "floor_cpu_s", "full_build_vs_floor", "full_build_vs_floor_cpu",
                "dagster_before_first_step_s", "update_scaling", "checks_share", "peak_rss_mb",
                "raw_store_vs_lake"):
        assert isinstance(f[key], (int, float)) and f[key] > 0, key
    assert f["full_build_vs_floor"] == pytest.approx(f["full_build_s"] / (f["floor_s"] + f["serve_floor_s"]))
    assert f["ingest_vs_floor_cpu"] == pytest.approx(f["ingest_cpu_s"] / f["ingest_floor_cpu_s"])
    assert f["dagster_before_first_step_s"] < f["full_build_s"]
    # 3 days x 2 countries x 6 charts: one planned materialization per asset and day, so the count grows with N.
    assert f["planned_events_full_build"] >= DAYS
    assert f["equality_passed"] is True
    # The ingest floor read the same files into the same canonical rows.
    assert f["ingest_floor_equal"] is True
    (batch,) = data["ingest_batches"]
    assert batch["floor_rows"] == f["raw_rows"] and batch["floor_mismatched_rows"] == 0
    for name, mart in data["floor"]["equality"]["marts"].items():
        assert mart["equal"] and mart["lake_rows"] == mart["floor_rows"] and mart["lake_rows"] > 0, name
    assert data["floor"]["equality"]["marts"]["fct_chart_entries"]["lake_rows"] == f["raw_rows"]
    # One update measured at the only history size, through both Dagster jobs, with a dbt invocation profiled.
    (update,) = data["updates"]
    assert update["history_days"] == DAYS and update["day"] == "2025-01-04"
    assert {r["job"] for r in update["runs"]} == {"raw_job", "warehouse_job"}
    assert update["dbt_tests_s"] > 0 and update["gx_checks_s"] > 0
    assert update["checks_s"] == pytest.approx(update["dbt_tests_s"] + update["gx_checks_s"])
    assert 0 < update["checks_share"] < 1
    for step in [*data["ingest_batches"], data["full_build"], data["floor"], *data["updates"]]:
        assert step["peak_rss_tree_mb"] >= 50 and step["peak_rss_single_process_mb"] >= 50, step["step"]
    assert set(data["targets"]) == set(bench.TARGETS)
    for target in data["targets"].values():
        assert isinstance(target["met"], bool) and target["value"] is not None
    assert data["machine"]["cores"] and data["versions"]["duckdb"] and data["versions"]["dagster"]
    md = (results / "latest.md").read_text()
    for text in ("## Targets", "Full build / (floor + serve floor)", "Marts equal to the floor's: **yes**",
                 "Same rows as ours: **yes**", "One-day update", "Peak RSS"):
        assert text in md
    assert md.count("**met**") + md.count("**not met**") == len(bench.TARGETS)


@pytest.mark.slow
def test_the_equality_check_fails_when_one_floor_row_differs(tiny_run):
    code, home, _ = tiny_run
    assert code == 0
    intact = bench.step_floor(bench.Home(home))
    assert intact["equality"]["passed"] is True
    broken = bench.step_floor(bench.Home(home), perturb=True)
    assert broken["equality"]["passed"] is False
    rankings = broken["equality"]["marts"]["mart_daily_rankings"]
    assert rankings["equal"] is False
    assert rankings["only_in_lake"] == 1 and rankings["only_in_floor"] == 1
    assert all(m["equal"] for k, m in broken["equality"]["marts"].items() if k != "mart_daily_rankings")


@pytest.mark.slow
def test_the_ingest_floor_comparison_fails_when_one_row_differs(tiny_run):
    """The ingest floor's equality must be able to fail: change one of the floor's rows in its own lake."""
    code, home, _ = tiny_run
    assert code == 0
    from orchestration.lib import lake

    with lake.session(bench.Home(home)) as con:
        bench.attach_ingest_floor(con, bench.Home(home))
        day = bench.START
        assert bench.compare_ingest_floor(con, day) == (COUNTRIES * 6 * DEPTH, 0)
        con.execute("update floorlake.raw.chart_entries set app_name = app_name || ' (changed)' "
                    "where chart_date = ? and rank = 1 and country = 'us' and device = 'iphone' "
                    "and chart = 'top-free'", [day])
        assert bench.compare_ingest_floor(con, day) == (COUNTRIES * 6 * DEPTH, 2)
