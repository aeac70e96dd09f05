"""Write-audit-publish: the audited marts go to the serving DuckDB file that BI tools read."""

import json

import dagster as dg

from orchestration.defs.instance import POOL_PUBLISH
from orchestration.defs.dbt.assets import chartlake_dbt_assets, dbt_project
from orchestration.defs.raw.partitions import daily_partitions
from orchestration.defs.resources import ChartlakeHome
from orchestration.lib import audit, lake, serving

SERVING_KEY = dg.AssetKey(["serving", "chartlake"])
MARTS_QUALITY = dg.AssetCheckKey(dg.AssetKey(["marts", "mart_daily_rankings"]), "marts_quality")

# Partition columns decide what a quarantine holds back: a country-day for the daily marts; a country's
# breakouts as a whole (a breakout spans days); dimensions always publish. The daily marts are dbt incremental
# models (delete+insert by chart_date), so a publish replaces only the chart dates the lake changed; the table
# models (breakouts, dimensions) are rebuilt by every dbt run and replaced whole.
MARTS = {
    "fct_chart_entries": serving.MartSpec("marts.fct_chart_entries", ("country", "chart_date"), "chart_date"),
    "mart_daily_rankings": serving.MartSpec("marts.mart_daily_rankings", ("country", "chart_date"), "chart_date"),
    "mart_daily_country_summary": serving.MartSpec("marts.mart_daily_country_summary", ("country", "chart_date"),
                                                   "chart_date"),
    "mart_breakouts": serving.MartSpec("marts.mart_breakouts", ("country",)),
    "dim_apps": serving.MartSpec("marts.dim_apps"),
    "dim_countries": serving.MartSpec("marts.dim_countries"),
    # Cross-store marts (models/marts/cross_store): rebuilt whole. The daily product ranks are held back per
    # country-day like the daily marts (a quarantined day must not hold back a country's other days); the product
    # breakouts per country like the breakouts.
    "dim_products": serving.MartSpec("marts.dim_products"),
    "mart_product_daily_ranks": serving.MartSpec("marts.mart_product_daily_ranks", ("country", "chart_date")),
    "mart_product_breakouts": serving.MartSpec("marts.mart_product_breakouts", ("country",)),
}


def blocking_check_failures(instance: dg.DagsterInstance, check_keys) -> list[str]:
    """Latest evaluation of each check guarding a published mart that failed at ERROR severity.

    Blocking checks stop downstream steps within a run, but a later run could still reach publish past a failed
    dbt test (dagster-io/dagster#25112), so publish looks at the latest results itself.
    """
    failures = []
    for key in check_keys:
        record = instance.get_latest_asset_check_evaluation_record(key)
        if record is None or record.event is None or record.status.value != "FAILED":
            continue
        evaluation = record.event.dagster_event.event_specific_data
        if getattr(evaluation, "severity", dg.AssetCheckSeverity.ERROR) == dg.AssetCheckSeverity.ERROR:
            failures.append(f"{key.asset_key.to_user_string()}:{key.name} (run {record.run_id})")
    return failures


def descriptions() -> dict:
    manifest = json.loads(dbt_project.manifest_path.read_text())
    out = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] in ("model", "seed") and node["name"] in MARTS:
            out[node["name"]] = {"description": node.get("description", ""),
                                 "columns": {c: v.get("description", "") for c, v in node.get("columns", {}).items()}}
    return out


def quarantine_entries(con) -> list[serving.QuarantineEntry]:
    """Every country-day held back, from the one quarantine store (``raw.quarantined_payloads``)."""
    return [serving.QuarantineEntry(country=e["country"], chart_date=e["chart_date"], reason=e["reason"],
                                    payload_sha256=e["payload_sha256"])
            for e in audit.quarantine_entries(con) if e["country"]]


@dg.asset(
    key=SERVING_KEY,
    deps=[dg.AssetKey(["marts", name]) for name in MARTS],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="serving",
    kinds={"duckdb"},
    owners=["team:chartlake"],
    tags={"layer": "serving"},
    pool=POOL_PUBLISH,  # the lake's published.* tables and the serving file: one publisher at a time
)
def serving_chartlake(context: dg.AssetExecutionContext, chartlake: ChartlakeHome) -> dg.MaterializeResult:
    """The BI database ``serving/chartlake.duckdb``: schema ``analytics`` with the audited marts, ``publish_log``
    and ``quarantine``. Written to a new file and renamed into place; quarantined country-days keep their last
    good published rows. Each publish is also committed to the lake schema ``published`` (data versions)."""
    home = chartlake.home()
    mart_keys = {dg.AssetKey(["marts", m]) for m in MARTS}
    guarded = [k for k in chartlake_dbt_assets.check_keys if k.asset_key in mart_keys] + [MARTS_QUALITY]
    failures = blocking_check_failures(context.instance, guarded)
    if failures:
        raise dg.Failure(description="not publishing: blocking checks failed: " + "; ".join(failures),
                         metadata={"failed_checks": dg.MetadataValue.json(failures)})
    with lake.session(home, read_only=True) as con:  # one read: the quarantine as of the snapshot published
        snapshot = lake.current_snapshot(con)
        quarantined = quarantine_entries(con)
    window = context.partition_time_window
    result = serving.publish(
        home, lake_snapshot_id=snapshot, marts=MARTS, run_id=context.run.run_id, quarantined=quarantined,
        check_summary={"checks_guarding_marts": len(guarded), "failed": failures,
                       "window": [window.start.date().isoformat(), window.end.date().isoformat()],
                       "quarantined": [f"{q.country}/{q.chart_date}" for q in quarantined]},
        descriptions=descriptions(),
    )
    return dg.MaterializeResult(metadata={
        "publish_id": result.publish_id,
        "path": dg.MetadataValue.path(str(result.path)),
        "lake_snapshot_id": result.lake_snapshot_id,
        # The lake snapshot of published.* for this publish: `chartlake query --as-of <publish_id>` reads it.
        "published_snapshot_id": result.published_snapshot_id if result.published_snapshot_id is not None else -1,
        "row_counts": dg.MetadataValue.json(result.row_counts),
        "carried_over": dg.MetadataValue.json(result.carried_over),
        # How each mart reached the new file ("partitions": only what the lake changed) and rows read from the lake.
        "refresh": dg.MetadataValue.json(result.refresh),
        "refreshed_rows": dg.MetadataValue.json(result.refreshed_rows),
        "lake_recording": result.lake_recording or "not recorded",
        "partitions_quarantined": result.partitions_quarantined,
        "quarantine": dg.MetadataValue.json([f"{q.country}/{q.chart_date}: {q.reason}" for q in quarantined]),
    })
