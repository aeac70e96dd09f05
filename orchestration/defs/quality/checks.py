"""Great Expectations suites as Dagster asset checks, attached to the assets they guard.

- ``raw_chart_quality`` (raw, per chart date, not blocking): runs the raw suite over all the day's countries at
  once and judges each country on its own rows. A country whose feed breaks a blocking expectation (or did not
  parse) is quarantined: its bad payloads go to ``raw.quarantined_payloads`` (staging skips them) and
  ``quality/raw/<date>/``, and publish keeps that country-day's last good rows; the other countries of the day go
  on, so the check must not stop the run.
- ``marts_quality`` (marts, blocking): grain, keys, referential integrity and reconciliation over the window
  built. A failure here means the marts themselves are wrong, so nothing downstream may publish them.
"""

import datetime as dt

import dagster as dg

from orchestration.defs.instance import POOL_QUARANTINE
from orchestration.defs.raw.assets import RAW_CHART_ENTRIES
from orchestration.defs.raw.partitions import daily_partitions
from orchestration.defs.resources import ChartlakeHome
from orchestration.lib import audit, lake


@dg.asset_check(
    asset=RAW_CHART_ENTRIES,
    name="raw_chart_quality",
    partitions_def=daily_partitions,
    pool=POOL_QUARANTINE,  # replaces the day's rows of raw.quarantined_payloads: one writer at a time
    blocking=False,
    description="GX raw suite per country (one run for the day's countries): ranks 1..N contiguous, no duplicate "
    "rank/app, depth, app ids, country, chart date; stale feed and new-app share as warnings. Failing countries "
    "are quarantined, not the day.",
)
def raw_chart_quality(context: dg.AssetCheckExecutionContext, chartlake: ChartlakeHome) -> dg.AssetCheckResult:
    from orchestration.lib.quality.raw import HISTORY_DAYS, read_history, run_raw_day

    day = dt.date.fromisoformat(context.partition_key)
    home = chartlake.home()
    with lake.session(home, read_only=True) as con:
        today = audit.current_raw_rows(con, day)
        history = read_history(con, day, HISTORY_DAYS)
        failed = audit.failed_payloads(con, day)
    # Every country in one run of the suite: the cost follows the day's rows, not its number of countries.
    checked = run_raw_day(today, chart_date=day, history=history)
    del history
    out_dir = home.quality / "raw" / day.isoformat()
    checked.save(out_dir)
    payloads = today.groupby(today["country"].astype(object).fillna("?"))["payload_sha256"].unique()
    entries: list[dict] = []
    excluded: list[tuple[str, str, str]] = []  # (country, payload, reason) that staging must skip
    per_country = {country: result.describe() for country, result in checked.results.items()}
    for country, result in checked.failed.items():
        reasons = "; ".join(f"{o.name} ({o.unexpected_count} unexpected)" for o in result.blocking_failures)
        entries.append({"country": country, "reason": reasons or (result.error or "raw suite failed"),
                        "payload_sha256": ",".join(result.failed_payloads) or None,
                        "charts": result.failed_charts})
        # A failure of the whole frame (or of the suite itself) names no payload: hold back all of them.
        bad = result.failed_payloads or sorted(set(payloads.get(country, [])) - {None})
        excluded += [(country, sha, entries[-1]["reason"]) for sha in bad]
    if checked.error and not checked.results:  # nothing to split the error over: still not a pass
        entries.append({"country": None, "reason": f"raw suite failed: {checked.error}", "payload_sha256": None,
                        "charts": []})
    for f in failed:
        entries.append({"country": f["country"], "reason": f"payload failed: {f['error']}",
                        "payload_sha256": f["payload_sha256"], "charts": [], "source": f["source_url"]})
    audit.write_quarantine(home, day, entries, context.run.run_id)
    with lake.session(home) as con:
        lake.ensure_raw_schema(con)
        audit.record_quarantine(con, day, excluded, context.run.run_id)
    quarantined = sorted({e["country"] or "?" for e in entries})
    return dg.AssetCheckResult(
        passed=not entries,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "countries_checked": len(per_country),
            "quarantined_countries": dg.MetadataValue.json(quarantined),
            "quarantine": dg.MetadataValue.json(entries),
            "results": dg.MetadataValue.json(per_country),
            "data_docs": dg.MetadataValue.path(str(out_dir)),
        },
    )


MARTS_KEY_PREFIX = "marts"


def _run_window(context) -> tuple[dt.date, dt.date] | None:
    """The chart-date window ``[start, end)`` this run built, from its partition tags (None: not partitioned)."""
    tags = context.run.tags
    start = tags.get("dagster/asset_partition_range_start") or tags.get("dagster/partition")
    end = tags.get("dagster/asset_partition_range_end") or tags.get("dagster/partition")
    if not start:
        return None
    return dt.date.fromisoformat(start), dt.date.fromisoformat(end) + dt.timedelta(days=1)


@dg.asset_check(
    asset=dg.AssetKey([MARTS_KEY_PREFIX, "mart_daily_rankings"]),
    name="marts_quality",
    blocking=True,
    additional_deps=[dg.AssetKey([MARTS_KEY_PREFIX, m]) for m in
                     ("fct_chart_entries", "mart_daily_country_summary", "dim_apps", "dim_countries")]
    + [dg.AssetKey(["staging", "stg_apple__chart_entries"])],
    description="GX staging and marts suites over the window just built: grain uniqueness, not-null keys, "
    "referential integrity with dim_apps/dim_countries, row counts reconciled raw -> staging -> fct -> rankings, rank "
    "deltas within the chart depth, the summary's #1 app equal to the ranking's. Blocking: wrong marts must not "
    "be published.",
)
def marts_quality(context: dg.AssetCheckExecutionContext, chartlake: ChartlakeHome) -> dg.AssetCheckResult:
    from orchestration.lib.quality import check_lake_window

    home = chartlake.home()
    window = _run_window(context)
    with lake.session(home, read_only=True) as con:
        if window is None:  # an unpartitioned run: the latest week
            last = con.execute("select max(chart_date) from marts.mart_daily_rankings").fetchone()[0]
            if last is None:
                raise dg.Failure("marts_quality: marts.mart_daily_rankings is empty, there is no window to check")
            window = (last - dt.timedelta(days=6), last + dt.timedelta(days=1))
        # Per-chart counts in DuckDB, row-by-row rules part by part: memory follows a part, not the window.
        checked = check_lake_window(con, window)
    staging, marts = checked.staging, checked.marts
    out_dir = home.quality / "marts" / f"{window[0]}_{window[1]}"
    staging.save(out_dir, "staging")
    marts.save(out_dir, "marts")
    failures = [o.name for o in staging.blocking_failures + marts.blocking_failures]
    errors = [r.error for r in (staging, marts) if r.error]
    return dg.AssetCheckResult(
        passed=checked.passed,
        metadata={
            "window": f"[{window[0]}, {window[1]})",
            "rows_checked": checked.rows_checked,
            "parts": len(checked.chunks),
            "blocking_failures": dg.MetadataValue.json(failures),
            "errors": dg.MetadataValue.json(errors),
            "warnings": dg.MetadataValue.json([o.name for o in staging.warnings + marts.warnings]),
            "data_docs": dg.MetadataValue.path(str(out_dir)),
        },
    )
