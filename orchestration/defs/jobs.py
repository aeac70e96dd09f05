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
warehouse_job = dg.define_asset_job(
    "warehouse_job",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(RAW_CHART_ENTRIES),
    description="Build, check and publish the marts for a chart-date window.",
)


def instance_for(home: Home) -> dg.DagsterInstance:
    """The home's persistent Dagster instance (``<home>/dagster``), shared with ``make ui``."""
    dagster_home = home.root / "dagster"
    from orchestration.defs.instance import ensure_dagster_yaml

    ensure_dagster_yaml(dagster_home)  # PostgreSQL storage and one-slot pools when CHARTLAKE_DAGSTER_PG_URL is set
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
    from orchestration.defs.raw import parallel

    if (workers := parallel.max_concurrent()) > 1:  # append every day first, N at a time; the loop then records them
        if not parallel.land_window(start, end, instance=instance, workers=workers, quiet=QUIET):
            log(f"raw {start}..{end}: parallel landing failed for some days (see the raw_parallel_job run)")
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
