"""Dagster for many workers: the instance on PostgreSQL, raw days landed by parallel runs, one-slot writer pools,
and the check that proves no chart position landed twice."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from orchestration.defs import instance as instance_config
from orchestration import runner as jobs
from orchestration.lib import lake

from tests.services.test_lake_on_services import START, _duplicates, _stage

pytestmark = pytest.mark.slow


def test_parallel_raw_runs_on_a_postgres_instance(service_lake, postgres_server, monkeypatch):
    home = service_lake.home
    dagster_db = postgres_server.create_database("dagster")
    # SQLAlchemy's plain postgresql:// now means psycopg 3; dagster-postgres ships psycopg2.
    monkeypatch.setenv("CHARTLAKE_DAGSTER_PG_URL", postgres_server.uri(dagster_db).replace("postgresql://", "postgresql+psycopg2://"))
    monkeypatch.setenv("CHARTLAKE_RAW_MAX_CONCURRENT", "4")
    days = [START + dt.timedelta(days=i) for i in range(8)]
    expected = _stage(home, len(days), depth=20)

    instance = jobs.instance_for(home)
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    assert jobs.run_range(home, days[0], days[-1], raw_only=True, instance=instance)

    (fan_out,) = instance.get_run_records(dg.RunsFilter(job_name="raw_parallel_job"))
    assert fan_out.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    # One step per day, and at some moment more than one of them was landing (separate processes, one run).
    starts = {e.step_key: e.timestamp for e in instance.all_logs(fan_out.dagster_run.run_id,
                                                                  of_type=dg.DagsterEventType.STEP_START)}
    ends = {e.step_key: e.timestamp for e in instance.all_logs(fan_out.dagster_run.run_id,
                                                                of_type=dg.DagsterEventType.STEP_SUCCESS)}
    landers = sorted(k for k in starts if k.startswith("land_one_day"))
    assert len(landers) == len(days) and set(landers) <= set(ends)
    spans = sorted((starts[k], ends[k]) for k in landers)
    assert max(sum(1 for a, b in spans if a <= t < b) for t, _ in spans) >= 2, spans
    with lake.session(home, read_only=True) as con:
        landed_by = {r for (r,) in con.execute("select distinct run_id from raw.chart_entries").fetchall()}
    assert landed_by == {fan_out.dagster_run.run_id}  # the per-day runs found nothing left to land
    runs = instance.get_run_records(dg.RunsFilter(job_name="raw_job"))
    assert sorted(r.dagster_run.tags["dagster/partition"] for r in runs) == [d.isoformat() for d in days]
    assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    # ... and they are in Postgres, where a webserver or another worker sees them.
    assert postgres_server.query(dagster_db, "select count(*) from runs where status = 'SUCCESS'")[0][0] == len(days) + 1
    with lake.session(home, read_only=True) as con:
        assert con.execute("select count(*) from raw.chart_entries").fetchone()[0] == expected
        assert _duplicates(con) == []
    evaluations = [e for r in runs for e in instance.all_logs(r.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
    dup_checks = [e.dagster_event.event_specific_data for e in evaluations
                  if e.dagster_event.event_specific_data.check_name == "raw_no_duplicate_positions"]
    assert len(dup_checks) == len(days) and all(c.passed for c in dup_checks)


def test_the_duplicate_check_fails_on_a_chart_landed_twice(service_lake):
    from orchestration.definitions import defs

    home = service_lake.home
    _stage(home, 1, depth=10)
    raw = defs.resolve_job_def("raw_job")
    first = raw.execute_in_process(partition_key=START.isoformat(), instance=dg.DagsterInstance.ephemeral(),
                                   raise_on_error=False)
    assert first.success
    with lake.session(home) as con:  # what duckdb/ducklake#1393 does to two racing writers
        con.execute("insert into raw.chart_entries select * from raw.chart_entries where country = 'us' "
                    "and device = 'iphone' and chart = 'top-free'")
    again = raw.execute_in_process(partition_key=START.isoformat(), instance=dg.DagsterInstance.ephemeral(),
                                   raise_on_error=False)
    (dup,) = [e for e in again.get_asset_check_evaluations() if e.check_name == "raw_no_duplicate_positions"]
    assert not dup.passed and dup.metadata["duplicated_positions"].value == 10
    assert not again.success  # blocking: nothing downstream of the day runs
