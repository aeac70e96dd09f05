"""When lake maintenance runs: weekly, Sunday 03:30 UTC, away from the daily fetch (06:15 UTC by default).

Running by default (unlike the daily fetch, it calls nothing outside the home, and it never expires a snapshot a
publish references). Maintenance commits to the lake like any writer; DuckLake's catalog serializes it with the
pipeline.
"""

from __future__ import annotations

import dagster as dg

from orchestration.defs.versions.jobs import lake_maintenance_job

lake_maintenance_schedule = dg.ScheduleDefinition(
    name="lake_maintenance_schedule",
    job=lake_maintenance_job,
    cron_schedule="30 3 * * 0",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Weekly lake compaction and snapshot expiry (keeps every snapshot a publish references).",
)
