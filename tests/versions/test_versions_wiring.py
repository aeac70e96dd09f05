"""The maintenance job and schedule as Dagster sees them, and the mart partitions versions.py assumes."""

import datetime as dt

import dagster as dg

from orchestration.lib import versions


def test_partitions_are_columns_of_the_published_marts():
    """versions.PARTITIONS decides what a quarantine holds back: a column a mart lacks would silently widen it."""
    import json

    from orchestration.defs.dbt.assets import dbt_project
    from orchestration.defs.publish.assets import MARTS

    manifest = json.loads(dbt_project.manifest_path.read_text())
    columns = {n["name"]: set(n["columns"]) for n in manifest["nodes"].values()
               if n["resource_type"] in ("model", "seed") and n["name"] in MARTS}
    assert set(columns) == set(MARTS) == set(versions.PARTITIONS) == set(versions.GRAINS)
    for name, parts in versions.PARTITIONS.items():
        assert set(parts) <= columns[name], (name, set(parts) - columns[name])


def test_schedule_requests_the_maintenance_job_weekly():
    from orchestration.defs.versions.jobs import lake_maintenance_job
    from orchestration.defs.versions.schedules import lake_maintenance_schedule

    assert lake_maintenance_schedule.job_name == lake_maintenance_job.name == "lake_maintenance_job"
    assert lake_maintenance_schedule.cron_schedule == "30 3 * * 0"
    ctx = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2025, 2, 2, 3, 30, tzinfo=dt.timezone.utc))
    requests = lake_maintenance_schedule.evaluate_tick(ctx).run_requests
    assert len(requests) == 1


def test_maintenance_job_fails_clearly_without_a_lake(tmp_path):
    from orchestration.defs.resources import ChartlakeHome
    from orchestration.defs.versions.jobs import lake_maintenance_job

    res = lake_maintenance_job.execute_in_process(resources={"chartlake": ChartlakeHome(path=str(tmp_path / "h"))},
                                                  raise_on_error=False)
    assert not res.success
    error = res.get_step_failure_events()[0].event_specific_data.error
    text = error.to_string()
    assert "VersionsError" in text and "no lake at" in text
