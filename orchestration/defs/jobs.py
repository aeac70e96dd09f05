"""The jobs the CLI runs (per chart date, then per window); how it runs them is ``orchestration/runner.py``."""

from __future__ import annotations

import dagster as dg

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
