"""The jobs the CLI runs (per chart date, then per window); how it runs them is ``orchestration/runner.py``."""

from __future__ import annotations

import dagster as dg

from orchestration.defs.raw.assets import RAW_CHART_ENTRIES
from orchestration.defs.raw.quarantine import RAW_QUARANTINED_PAYLOADS

# One chart date's raw layer: land its payloads, then judge them (the quarantine, with its raw_chart_quality check).
RAW_ASSETS = dg.AssetSelection.assets(RAW_CHART_ENTRIES, RAW_QUARANTINED_PAYLOADS)
raw_job = dg.define_asset_job(
    "raw_job", selection=RAW_ASSETS,
    description="Land one chart date's payloads in the lake, then quarantine the ones the raw suite rejects.",
)
# Everything after raw: dbt models and their tests, quality checks, publish. Run as one ranged run per backfill.
# Not the dashboards (reports_job): they need Node, which a pipeline-only machine may lack, and must never fail a run.
warehouse_job = dg.define_asset_job(
    "warehouse_job",
    selection=dg.AssetSelection.all() - RAW_ASSETS - dg.AssetSelection.groups("reports"),
    description="Build, check and publish the marts for a chart-date window.",
)
