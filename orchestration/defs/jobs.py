"""Jobs, and how the CLI runs them through Dagster (the same assets the UI materializes)."""

from __future__ import annotations

import datetime as dt
import os
from typing import Callable

import dagster as dg

from orchestration.config import Home
from orchestration.defs.raw.assets import RAW_CHART_ENTRIES

raw_job = dg.define_asset_job(
    "raw_job", selection=dg.AssetSelection.assets(RAW_CHART_ENTRIES),
    description="Land one chart date's payloads in the lake.",
)
# Everything after raw: dbt models and their tests, quality checks, publish. Run as one ranged run per backfill.
# Not the dashboards (reports_job): they need Node, which a pipeline-only machine may lack, and must never fail a run.
warehouse_job = dg.define_asset_job(
    "warehouse_job",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(RAW_CHART_ENTRIES) - dg.AssetSelection.groups("reports"),
    description="Build, check and publish the marts for a chart-date window.",
)


def instance_for(home: Home) -> dg.DagsterInstance:
    """The home's persistent Dagster instance (``<home>/dagster``), shared with ``make ui``."""
    dagster_home = home.root / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    if not (dagster_home / "dagster.yaml").exists():
        (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return dg.DagsterInstance.from_config(str(dagster_home))


def run_range(home: Home, start: dt.date, end: dt.date, *, raw_only: bool = False,
              instance: dg.DagsterInstance | None = None, log: Callable[[str], None] = lambda s: None) -> bool:
    """Land each day in ``[start, end]`` (one raw run per day), then build/check/publish the window in one run."""
    from orchestration.definitions import defs

    instance = instance or instance_for(home)
    resources_home = str(home.root)
    ok = True
    raw = defs.resolve_job_def("raw_job")
    landed_any = False
    day = start
    while day <= end:
        res = raw.execute_in_process(
            partition_key=day.isoformat(), instance=instance, raise_on_error=False, run_config=QUIET,
            resources={"chartlake": _home_resource(resources_home)},
        )
        if res.success:
            landed_any = True
        else:
            ok = False
            log(f"raw {day}: failed (see the run in the Dagster UI or `chartlake status`)")
        day += dt.timedelta(days=1)
    log(f"raw: landed {start}..{end}")
    if raw_only or not landed_any:
        return ok
    warehouse = defs.resolve_job_def("warehouse_job")
    res = warehouse.execute_in_process(
        instance=instance, raise_on_error=False, run_config=QUIET,
        tags={"dagster/asset_partition_range_start": start.isoformat(),
              "dagster/asset_partition_range_end": end.isoformat()},
        resources={"chartlake": _home_resource(resources_home)},
    )
    log(f"warehouse {start}..{end}: {'ok' if res.success else 'FAILED'}")
    return ok and res.success


# The CLI prints its own summary; Dagster's console logger only needs to speak up for warnings and errors.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _home_resource(path: str):
    from orchestration.defs.resources import ChartlakeHome

    return ChartlakeHome(path=path)
