"""Raw layer, second step of a day: the GX raw suite decides which of the day's payloads are held back.

``raw/quarantined_payloads`` is the one quarantine store (``lake.raw.quarantined_payloads``, grain: chart_date x
country x payload). It is materialized right after ``raw/chart_entries`` in the same per-day run (``raw_job``),
and carries the suite's verdict as its check ``raw_chart_quality``: the asset writes, the check only reports.
"""

import datetime as dt

import dagster as dg

from orchestration.defs.instance import POOL_QUARANTINE

from orchestration.defs.raw.assets import RAW_CHART_ENTRIES
from orchestration.defs.raw.partitions import daily_partitions
from orchestration.defs.resources import ChartlakeHome
from orchestration.lib import audit, lake

RAW_QUARANTINED_PAYLOADS = dg.AssetKey(["raw", "quarantined_payloads"])
RAW_CHART_QUALITY = "raw_chart_quality"


@dg.asset(
    key=RAW_QUARANTINED_PAYLOADS,
    deps=[RAW_CHART_ENTRIES],
    partitions_def=daily_partitions,
    group_name="raw",
    kinds={"duckdb", "ducklake", "great_expectations"},
    owners=["team:chartlake"],
    tags={"layer": "raw"},
    pool=POOL_QUARANTINE,  # replaces the day's rows of raw.quarantined_payloads: one writer at a time
    check_specs=[dg.AssetCheckSpec(
        RAW_CHART_QUALITY, asset=RAW_QUARANTINED_PAYLOADS, blocking=False,
        description="GX raw suite per country (one run for the day's countries): ranks 1..N contiguous, no "
        "duplicate rank/app, depth, app ids, country, chart date; stale feed and new-app share as warnings. "
        "Failing countries are quarantined, not the day (a warning: the other countries go on).",
    )],
)
def raw_quarantined_payloads(context: dg.AssetExecutionContext, chartlake: ChartlakeHome) -> dg.MaterializeResult:
    """Payloads held back from the marts for one chart date (grain: chart_date x country x payload_sha256).

    Runs the GX raw suite over the newest version of every chart of the day, all countries at once, each country
    judged on its own rows. A country whose feed breaks a blocking expectation has its payloads recorded here: they
    are never the current version (``raw.payload_versions``), so staging keeps the previous good version if any,
    and publish keeps that country-day's last good rows. A payload that did not parse holds its country-day back
    too. The day's entries are replaced in one lake commit; GX results and Data Docs go to ``quality/raw/<date>/``.
    """
    from orchestration.lib import repeats
    from orchestration.lib.quality.raw import HISTORY_DAYS, read_history, run_raw_day

    day = dt.date.fromisoformat(context.partition_key)
    home = chartlake.home()
    with lake.session(home, read_only=True) as con:
        today = audit.current_raw_rows(con, day, newest=True)
        history = read_history(con, day, HISTORY_DAYS)
        failed = audit.failed_payloads(con, day)
        recorded_repeats = repeats.read_day(con, day)
    # Every country in one run of the suite: the cost follows the day's rows, not its number of countries.
    checked = run_raw_day(today, chart_date=day, history=history, repeats=recorded_repeats)
    del history
    out_dir = home.quality / "raw" / day.isoformat()
    checked.save(out_dir)
    payloads = today.groupby(today["country"].astype(object).fillna("?"))["payload_sha256"].unique()
    entries: list[tuple[str | None, str | None, str]] = []  # (country, payload, reason), the store's rows
    described: list[dict] = []
    for country, result in checked.failed.items():
        reason = "; ".join(f"{o.name} ({o.unexpected_count} unexpected)" for o in result.blocking_failures) \
            or (result.error or "raw suite failed")
        # A failure of the whole frame (or of the suite itself) names no payload: hold back all of them.
        bad = result.failed_payloads or sorted(set(payloads.get(country, [])) - {None})
        entries += [(country, sha, reason) for sha in bad] or [(country, None, reason)]
        described.append({"country": country, "reason": reason, "payload_sha256": bad, "charts": result.failed_charts})
    if checked.error and not checked.results:  # nothing to split the error over: still not a pass
        entries.append((None, None, f"raw suite failed: {checked.error}"))
        described.append({"country": None, "reason": entries[-1][2], "payload_sha256": [], "charts": []})
    for f in failed:
        reason = f"payload failed: {f['error']}"
        entries.append((f["country"], f["payload_sha256"], reason))
        described.append({"country": f["country"], "reason": reason, "payload_sha256": [f["payload_sha256"]],
                          "charts": [], "source": f["source_url"]})
    with lake.session(home) as con:
        lake.ensure_raw_schema(con)
        snapshot = audit.record_quarantine(con, day, entries, context.run.run_id)
    quarantined = sorted({e["country"] or "?" for e in described})
    per_country = {country: result.describe() for country, result in checked.results.items()}
    check = dg.AssetCheckResult(
        check_name=RAW_CHART_QUALITY,
        passed=not described,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "countries_checked": len(per_country),
            "quarantined_countries": dg.MetadataValue.json(quarantined),
            "quarantine": dg.MetadataValue.json(described),
            "results": dg.MetadataValue.json(per_country),
            "data_docs": dg.MetadataValue.path(str(out_dir)),
        },
    )
    return dg.MaterializeResult(
        metadata={
            "payloads_quarantined": sum(1 for _, sha, _ in entries if sha),
            "quarantined_countries": dg.MetadataValue.json(quarantined),
            "quarantine": dg.MetadataValue.json(described),
            "lake_snapshot_id": snapshot if snapshot is not None else -1,
            "data_docs": dg.MetadataValue.path(str(out_dir)),
        },
        check_results=[check],
        # The day's quarantine as data: an unchanged verdict keeps downstream fresh.
        data_version=dg.DataVersion(_verdict_version(entries)),
    )


def _verdict_version(entries) -> str:
    import hashlib

    text = "\n".join(sorted(f"{c}|{s}|{r}" for c, s, r in entries))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
