"""Write-audit-publish: the audited marts go to the serving DuckDB file that BI tools read."""

import json

import dagster as dg

from orchestration.defs.instance import POOL_PUBLISH
from orchestration.defs.dbt.assets import chartlake_dbt_assets, dbt_project
from orchestration.defs.raw.partitions import daily_partitions
from orchestration.defs.resources import ChartlakeHome
from orchestration.lib import audit, lake, serving, versions

SERVING_KEY = dg.AssetKey(["serving", "chartlake"])
MARTS_QUALITY = dg.AssetCheckKey(dg.AssetKey(["marts", "mart_daily_rankings"]), "marts_quality")

# Partition columns decide what a quarantine holds back (versions.PARTITIONS owns them: a chart for the daily marts,
# a chart series for the breakouts, dimensions always publish). The daily marts are dbt incremental models
# (delete+insert by chart_date), so a publish replaces only the chart dates the lake changed; the table models
# (breakouts, dimensions, the cross-store marts) are rebuilt by every dbt run and replaced whole.
_INCREMENTAL = {"fct_chart_entries", "mart_daily_rankings", "mart_daily_country_summary"}
MARTS = {
    name: serving.MartSpec(f"marts.{name}", columns, "chart_date" if name in _INCREMENTAL else None)
    for name, columns in versions.PARTITIONS.items()
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
    """What publish holds back, from the one quarantine store (``raw.quarantined_payloads``): each entry's chart,
    or the store's or the whole country-day when that is all it names (``audit.HeldBack``)."""
    return [serving.QuarantineEntry(country=e["country"], chart_date=e["chart_date"], reason=e["reason"],
                                    payload_sha256=e["payload_sha256"],
                                    keys={k: e[k] for k in audit.SCOPE_KEYS[e["scope"]]})
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
    pool=POOL_PUBLISH,  # the lake's publish commits and the serving file: one publisher at a time
)
def serving_chartlake(context: dg.AssetExecutionContext, chartlake: ChartlakeHome) -> dg.MaterializeResult:
    """The BI database ``serving/chartlake.duckdb``: schema ``analytics`` with the audited marts, ``publish_log``
    and ``quarantine``. Written to a new file and renamed into place; quarantined country-days keep their last
    good published rows. Each publish is also recorded in the lake: its log and carried-over rows beside the snapshot
    it read (data versions)."""
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
                       "quarantined": [_label(q) for q in quarantined]},
        descriptions=descriptions(),
    )
    return dg.MaterializeResult(metadata={
        "publish_id": result.publish_id,
        "path": dg.MetadataValue.path(str(result.path)),
        "lake_snapshot_id": result.lake_snapshot_id,
        # The lake snapshot of this publish's own commit: `chartlake query --as-of <publish_id>` reads it.
        "published_snapshot_id": result.published_snapshot_id if result.published_snapshot_id is not None else -1,
        "row_counts": dg.MetadataValue.json(result.row_counts),
        "carried_over": dg.MetadataValue.json(result.carried_over),
        # How each mart reached the new file ("partitions": only what the lake changed) and rows read from the lake.
        "refresh": dg.MetadataValue.json(result.refresh),
        "refreshed_rows": dg.MetadataValue.json(result.refreshed_rows),
        "lake_recording": result.lake_recording or "not recorded",
        "partitions_quarantined": result.partitions_quarantined,
        "quarantine": dg.MetadataValue.json([f"{_label(q)}: {q.reason}" for q in quarantined]),
    })


def _label(q: serving.QuarantineEntry) -> str:
    return "/".join(str(v) for v in (q.country, q.chart_date, *q.keys.values()) if v is not None)
