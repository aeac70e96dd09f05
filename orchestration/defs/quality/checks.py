"""Great Expectations suites as Dagster asset checks, attached to the assets they guard.

- ``raw_chart_quality`` is not here: the raw suite decides the quarantine, which is data, so it runs inside the
  ``raw/quarantined_payloads`` asset (``defs/raw/quarantine.py``) and reports as that asset's check; no check
  writes anything.
- ``marts_quality`` (marts, blocking): grain, keys, referential integrity and reconciliation over the window
  built. A failure here means the marts themselves are wrong, so nothing downstream may publish them.
"""

import datetime as dt

import dagster as dg

from orchestration.defs.resources import ChartlakeHome
from orchestration.lib import lake


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
        # Every rule in DuckDB through GX's SQL datasource on this read-only session (closed below).
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
            "blocking_failures": dg.MetadataValue.json(failures),
            "errors": dg.MetadataValue.json(errors),
            "warnings": dg.MetadataValue.json([o.name for o in staging.warnings + marts.warnings]),
            "data_docs": dg.MetadataValue.path(str(out_dir)),
        },
    )
