"""Raw layer, second step of a day: the GX raw suite decides which of the day's payloads are held back.

``raw/quarantined_payloads`` is the one quarantine store (``lake.raw.quarantined_payloads``, grain: chart_date x
country x payload x the chart it holds back, ``audit.HeldBack``). It is materialized right after
``raw/chart_entries`` in the same per-day run (``raw_job``), and carries the suite's verdict as its check
``raw_chart_quality``: the asset writes, the check only reports.
"""

import datetime as dt
from dataclasses import astuple

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
        "The failing charts are quarantined, not their country or day (a warning: the other charts go on).",
    )],
)
def raw_quarantined_payloads(context: dg.AssetExecutionContext, chartlake: ChartlakeHome) -> dg.MaterializeResult:
    """Payloads held back from the marts for one chart date (grain: chart_date x country x payload_sha256 x chart).

    Runs the GX raw suite over the newest version of every chart of the day, all countries at once, each country
    judged on its own rows. A payload that breaks a blocking expectation is recorded here with its chart key: it is
    never the current version (``raw.payload_versions``), so staging keeps the previous good version if any, and
    publish keeps that chart's last good rows while the country's other charts, and the other store, publish. A
    payload refused at staging holds back its chart too, or, when staging could not tell which chart it is, its
    store's country-day. The day's entries are replaced in one lake commit; GX results and Data Docs go to
    ``quality/raw/<date>/``.
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
    charts = _charts_of_payloads(today)
    entries: list[audit.HeldBack] = []
    described: list[dict] = []
    for country, result in checked.failed.items():
        reason = "; ".join(f"{o.name} ({o.unexpected_count} unexpected)" for o in result.blocking_failures) \
            or (result.error or "raw suite failed")
        # A failure of the whole frame (or of the suite itself) names no payload: hold back all of them.
        bad = result.failed_payloads or sorted(sha for c, sha in charts if c == country)
        held = [audit.HeldBack.of_known(country, sha, reason, **key)
                for sha in bad for key in charts.get((country, sha), [{}])]
        entries += held or [audit.HeldBack(country, None, reason)]
        described.append({"country": country, "reason": reason, "payload_sha256": bad, "charts": result.failed_charts})
    if checked.error and not checked.results:  # nothing to split the error over: still not a pass
        entries.append(audit.HeldBack(None, None, f"raw suite failed: {checked.error}"))
        described.append({"country": None, "reason": entries[-1].reason, "payload_sha256": [], "charts": []})
    for f in failed:
        reason = f"payload failed: {f['error']}"
        entries.append(audit.HeldBack.of_known(f["country"], f["payload_sha256"], reason, store=f["store"],
                                               device=f["device"], chart=f["chart"], genre_id=f["genre_id"]))
        described.append({"country": f["country"], "reason": reason, "payload_sha256": [f["payload_sha256"]],
                          "charts": [], "source": f["source_url"]})
    with lake.session(home) as con:
        lake.ensure_raw_schema(con)
        snapshot = audit.record_quarantine(con, day, entries, context.run.run_id)
    quarantined = sorted({e["country"] or "?" for e in described})
    held_charts = sorted({_label(e) for e in entries})
    per_country = {country: result.describe() for country, result in checked.results.items()}
    check = dg.AssetCheckResult(
        check_name=RAW_CHART_QUALITY,
        passed=not described,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "countries_checked": len(per_country),
            "quarantined_countries": dg.MetadataValue.json(quarantined),
            "quarantined_charts": dg.MetadataValue.json(held_charts),
            "quarantine": dg.MetadataValue.json(described),
            "results": dg.MetadataValue.json(per_country),
            "data_docs": dg.MetadataValue.path(str(out_dir)),
        },
    )
    return dg.MaterializeResult(
        metadata={
            "payloads_quarantined": len({e.payload_sha256 for e in entries if e.payload_sha256}),
            "quarantined_countries": dg.MetadataValue.json(quarantined),
            "quarantined_charts": dg.MetadataValue.json(held_charts),
            "quarantine": dg.MetadataValue.json(described),
            "lake_snapshot_id": snapshot if snapshot is not None else -1,
            "data_docs": dg.MetadataValue.path(str(out_dir)),
        },
        check_results=[check],
        # The day's quarantine as data: an unchanged verdict keeps downstream fresh.
        data_version=dg.DataVersion(_verdict_version(entries)),
    )


def _charts_of_payloads(today) -> dict[tuple[str, str], list[dict]]:
    """(country, payload) -> the chart keys its rows belong to (one, but for an archive file holding many)."""
    keys = today[["country", "payload_sha256", "store", "device", "chart", "genre_id"]].drop_duplicates()
    out: dict[tuple[str, str], list[dict]] = {}
    for country, sha, store, device, chart, genre_id in keys.itertuples(index=False):
        if sha is not None and country is not None:
            out.setdefault((country, sha), []).append(
                {"store": store, "device": device, "chart": chart, "genre_id": genre_id})
    return out


def _label(e: audit.HeldBack) -> str:
    """How the check's metadata names what an entry holds back: ``fr/google_play/android/top-free`` and so on."""
    what = audit.what_held(e)
    return f"{e.country or '?'}/{what}" if e.scope == "chart" else f"{e.country or '?'}/{what} (whole {e.scope}-day)"


def _verdict_version(entries) -> str:
    import hashlib

    text = "\n".join(sorted("|".join("" if v is None else str(v) for v in astuple(e)) for e in entries))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
