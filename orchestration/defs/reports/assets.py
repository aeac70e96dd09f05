"""The analysts' dashboards (Evidence, ``reports/``), rebuilt from the serving file after a publish.

Not part of ``warehouse_job`` / ``daily_job``: the site needs Node and ``reports/node_modules`` (installed by ``make
report``), which a machine that only runs the pipeline (``make demo``, ``chartlake run``) may not have, and a
dashboard that cannot be built must never fail or hold back a publish. So it has its own job, ``reports_job``, and
the sensor ``reports_after_publish`` runs that job after each materialization of ``serving/chartlake``.
"""

import dagster as dg

from orchestration.defs.publish.assets import SERVING_KEY
from orchestration.defs.resources import ChartlakeHome
from orchestration.lib import reports

REPORTS_KEY = dg.AssetKey(["reports"])


@dg.asset(
    key=REPORTS_KEY,
    deps=[SERVING_KEY],
    group_name="reports",
    kinds={"evidence", "duckdb"},
    owners=["team:chartlake"],
    tags={"layer": "reports"},
)
def reports_site(context: dg.AssetExecutionContext, chartlake: ChartlakeHome) -> dg.MaterializeResult:
    """The Evidence site over ``serving/chartlake.duckdb`` (static HTML under ``<home>/reports/site``): the January
    2025 story, breakouts, any chart, any app, data health. Built from a read-only copy of the serving file, so a
    publish is never blocked by it; a query that fails fails this asset, not the publish before it."""
    home = chartlake.home()
    try:
        result = reports.build_site(home, log=context.log.info)
    except reports.ReportsError as exc:
        raise dg.Failure(description=f"the dashboards were not built: {exc}") from None
    return dg.MaterializeResult(metadata={
        "site": dg.MetadataValue.path(str(result.link)),
        "index": dg.MetadataValue.url(f"file://{result.index}"),
        "serve": dg.MetadataValue.md(f"`python3 -m http.server -b 127.0.0.1 -d {result.link} 8000`, then open "
                                     "http://127.0.0.1:8000 (or `make report-dev` for a live server)"),
        "publish_id": result.publish_id,
        "published_at": result.published_at.isoformat(sep=" ", timespec="seconds"),
        "built_at": dg.MetadataValue.timestamp(result.built_at.timestamp()),
        "build_seconds": dg.MetadataValue.float(result.seconds),
        "page_count": len(result.pages),
        "pages": dg.MetadataValue.json(result.pages),
    })


reports_job = dg.define_asset_job(
    "reports_job", selection=dg.AssetSelection.assets(REPORTS_KEY),
    description="Rebuild the Evidence dashboards from the current serving file.",
)


@dg.asset_sensor(
    asset_key=SERVING_KEY,
    job=reports_job,
    name="reports_after_publish",
    # Stopped by default, like the daily schedule: turned on where reports/node_modules is installed, it rebuilds
    # the site after every publish; on a machine without Node each publish would otherwise start a failing run.
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="After each publish (a materialization of serving/chartlake), rebuild the dashboards.",
)
def reports_after_publish(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    return dg.RunRequest(run_key=f"publish:{asset_event.run_id}:{asset_event.timestamp}",
                         tags={"chartlake/trigger": "reports_after_publish", "chartlake/publish_run": asset_event.run_id})
