"""The one ``Definitions`` of chartlake: every stage's assets, checks, jobs and resources."""

import dagster as dg
from orchestration.defs.dbt.assets import ChartlakeDbtCliResource, chartlake_dbt_assets, dbt_executable, dbt_project
from orchestration.defs.executor import writer_executor
from orchestration.defs.jobs import raw_job, warehouse_job
from orchestration.defs.publish.assets import serving_chartlake
from orchestration.defs.publish.checks import freshness_job, freshness_schedule, serving_freshness
from orchestration.defs.quality.checks import marts_quality
from orchestration.defs.raw.assets import raw_chart_entries, raw_payload_versions, raw_payloads
from orchestration.defs.raw.checks import raw_no_duplicate_positions
from orchestration.defs.raw.parallel import raw_parallel_job
from orchestration.defs.raw.quarantine import raw_quarantined_payloads
from orchestration.defs.raw.schedules import build_daily_schedule, build_play_schedule, daily_job
from orchestration.defs.raw.sensors import inbox_sensor
from orchestration.defs.reports.assets import reports_after_publish, reports_job, reports_site
from orchestration.defs.resources import AppleFeeds, ChartlakeHome, PlayFeeds, ServingFreshness
from orchestration.defs.versions.jobs import lake_maintenance_job
from orchestration.defs.versions.schedules import lake_maintenance_schedule

defs = dg.Definitions(
    assets=[raw_payloads, raw_chart_entries, raw_quarantined_payloads, raw_payload_versions, chartlake_dbt_assets,
            serving_chartlake, reports_site],
    asset_checks=[raw_no_duplicate_positions, marts_quality, serving_freshness],
    jobs=[raw_job, raw_parallel_job, warehouse_job, daily_job, freshness_job, lake_maintenance_job, reports_job],
    # The settings read while the definitions load: a cron string is part of a schedule's definition.
    schedules=[build_daily_schedule(), build_play_schedule(), freshness_schedule, lake_maintenance_schedule],
    sensors=[inbox_sensor, reports_after_publish],
    executor=writer_executor,  # every run holds the home's writer lock (one writer per home)
    resources={
        # Fields left unset read their environment variable when a run uses them (defs/resources.py).
        "chartlake": ChartlakeHome(),  # CHARTLAKE_HOME, CHARTLAKE_DUCKDB_MEMORY_LIMIT
        "apple_feeds": AppleFeeds(),
        "freshness": ServingFreshness(),  # CHARTLAKE_FRESHNESS_HOURS
        "play_feeds": PlayFeeds(),  # Google Play via fetchers/google-play (make play-setup)
        "dbt": ChartlakeDbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()),
    },
)
