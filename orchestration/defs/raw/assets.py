"""Raw layer: Apple and Google Play chart payloads -> raw store -> ``lake.raw.chart_entries``, one chart date per
partition."""


import datetime as dt

import dagster as dg

from orchestration.defs.raw.partitions import daily_partitions
from orchestration.defs.resources import AppleFeeds, ChartlakeHome, PlayFeeds
from orchestration.lib import audit, ingest, lake

RAW_CHART_ENTRIES = dg.AssetKey(["raw", "chart_entries"])

# The charts whose top 10 a materialization shows in the UI: the ones the January 2025 questions start from. A day
# without any of them (another storefront set) previews its first charts instead, so the preview is never empty.
PREVIEW_CHARTS = (("us", "iphone", "top-free"), ("gb", "iphone", "top-free"), ("fr", "iphone", "top-free"))
PREVIEW_DEPTH = 10

# The payload registry is written by whatever stages payloads (`chartlake import`, the daily fetch, the inbox
# sensor), not by one asset: declared so the dbt source that reads it has a home in the graph.
raw_payloads = dg.AssetSpec(
    ["raw", "payloads"],
    group_name="raw",
    kinds={"duckdb", "ducklake"},
    description="Registry of every staged payload (raw store hash, chart key, source URL, status staged|failed, "
    "error). Grain: payload x chart key. Written by chartlake import, the daily fetch and the inbox sensor.",
)
# A DuckLake view (lake.ensure_raw_schema): the one place the raw layer orders payload versions and marks the
# current one. Declared so the dbt source that reads it sits between raw and staging in the graph.
raw_payload_versions = dg.AssetSpec(
    ["raw", "payload_versions"],
    deps=[RAW_CHART_ENTRIES, dg.AssetKey(["raw", "quarantined_payloads"])],
    group_name="raw",
    kinds={"duckdb", "ducklake"},
    description="Every payload version of every chart (grain: chart key x payload_sha256) with its capture time, "
    "its rank among the chart's versions (newest capture first, ties by payload hash), is_quarantined and "
    "is_current (the newest version not quarantined). A view over raw.chart_entries and raw.quarantined_payloads, "
    "so always up to date; staging, the raw check, landing, lineage and the CLI read the current version here.",
)


class RawLoadConfig(dg.Config):
    fetch: bool = False
    """Fetch the configured storefronts from Apple first (the daily schedule does). Off: land what was imported."""
    fetch_play: bool = False
    """Fetch the configured Google Play storefronts first (the Play schedule does), after Apple's when both are on."""


@dg.asset(
    key=RAW_CHART_ENTRIES,
    partitions_def=daily_partitions,
    group_name="raw",
    kinds={"duckdb", "ducklake"},
    owners=["team:chartlake"],
    tags={"layer": "raw"},
    code_version="1",
)
def raw_chart_entries(
    context: dg.AssetExecutionContext, config: RawLoadConfig, chartlake: ChartlakeHome, apple_feeds: AppleFeeds,
    play_feeds: PlayFeeds,
) -> dg.MaterializeResult:
    """Every chart position of one chart date, one row per position per payload version (grain: store x country x
    device x chart x genre x chart_date x rank x payload). Lands the day's staged payloads (imported archives, the
    inbox, or today's fetch) in one DuckLake commit; a payload already landed is never landed again, so re-running
    a day with unchanged feeds is a no-op and keeps its data version."""
    chart_date = dt.date.fromisoformat(context.partition_key)
    home = chartlake.home()
    store = chartlake.store()
    with lake.session(home) as con:
        if config.fetch:
            _fetch_and_stage(context, con, store, apple_feeds, chart_date)
        if config.fetch_play:
            _fetch_and_stage(context, con, store, play_feeds, chart_date)
        result = ingest.land_day(con, store, chart_date, run_id=context.run.run_id,
                                 asset=RAW_CHART_ENTRIES.to_user_string())
        day_rows = audit.current_raw_rows(con, chart_date) if result.countries else None
    for f in result.failures:
        context.log.error(f"[{chart_date} {f['country']}] payload failed: {f['error']} (source {f['source']})")
    # A country whose newest versions are all quarantined has no current rows but did land: only a day with
    # nothing at all (or only failures) fails here, and the quarantine step still re-judges the rest.
    if not result.countries or all(c["rows"] == 0 and not c["quarantined"] for c in result.countries.values()):
        raise dg.Failure(
            description=f"no chart landed for partition {chart_date}: "
            + ("; ".join(f["error"] for f in result.failures) or "nothing staged for this date (import or fetch first)"),
            metadata={"failures": dg.MetadataValue.json(result.failures)},
        )
    return dg.MaterializeResult(
        metadata={
            "rows_inserted": result.rows_inserted,
            "rows_current": sum(c["rows"] for c in result.countries.values()),
            "countries": dg.MetadataValue.json({k: v["rows"] for k, v in result.countries.items()}),
            "failed_countries": dg.MetadataValue.json(sorted({f["country"] or "?" for f in result.failures})),
            "failures": dg.MetadataValue.json(result.failures),
            "payload_hashes": dg.MetadataValue.json(result.payload_hashes),
            "source_urls": dg.MetadataValue.json(sorted({u for c in result.countries.values() for u in c["urls"]})),
            "lake_snapshot_id": result.snapshot_id if result.snapshot_id is not None else -1,
            "top10_preview": dg.MetadataValue.md(top10_markdown(day_rows, chart_date)),
            # Written by raw/quarantined_payloads (check raw_chart_quality) right after this step: a page per country.
            "data_docs": dg.MetadataValue.path(str(data_docs_dir(home, chart_date))),
            "data_docs_pages": dg.MetadataValue.md(data_docs_markdown(home, chart_date, sorted(result.countries))),
        },
        data_version=dg.DataVersion(result.data_version),
    )


def data_docs_dir(home, chart_date: dt.date):
    """Where the raw quality check writes the day's GX results and Data Docs (``quality/raw/<date>/``)."""
    return home.quality / "raw" / chart_date.isoformat()


def data_docs_markdown(home, chart_date: dt.date, countries: list[str]) -> str:
    """Per-country links to the GX Data Docs of the day. ``file://`` links: the pages are local files, which the UI
    cannot serve; a browser opens them when the UI runs on the same machine (the usual `make ui`)."""
    folder = data_docs_dir(home, chart_date)
    lines = [f"GX Data Docs for {chart_date.isoformat()} (written by the `raw_chart_quality` check) in `{folder}`:", ""]
    lines += [f"- [{c}]({(folder / f'{c}.html').as_uri()})" for c in countries]
    return "\n".join(lines)


def top10_markdown(rows, chart_date: dt.date, charts=PREVIEW_CHARTS, depth: int = PREVIEW_DEPTH) -> str:
    """The day's top ``depth`` of a few key charts as markdown tables, from the current payload version of each
    chart (``audit.current_raw_rows``, i.e. ``raw.payload_versions``: a re-fetched chart shows its newest version,
    not both; a quarantined one is not shown)."""
    if rows is None or not len(rows):
        return f"No chart positions for {chart_date.isoformat()}."
    overall = rows[rows["genre_id"].isna()]
    present = set(overall[["country", "device", "chart"]].drop_duplicates().itertuples(index=False, name=None))
    chosen = [k for k in charts if k in present] or sorted(present)[: len(charts)]
    parts = [f"Top {depth} on {chart_date.isoformat()} (current payload of each chart; full charts in the table)."]
    for country, device, chart in chosen:
        top = overall[(overall["country"] == country) & (overall["device"] == device) & (overall["chart"] == chart)]
        top = top.sort_values("rank").head(depth)
        sha = str(top["payload_sha256"].iloc[0])
        parts += ["", f"**{country} · {device} · {chart}** (payload `{sha[:12]}`)", "",
                  "| rank | app | developer | app id |", "|---:|---|---|---|"]
        parts += [f"| {r.rank} | {_md_cell(r.app_name)} | {_md_cell(r.developer_name)} | {r.app_id} |"
                  for r in top.itertuples(index=False)]
    return "\n".join(parts)


def _md_cell(value) -> str:
    # Names come from the feed as the store shows them: a pipe or a line break would break the table row.
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).replace("|", "\\|").replace("\n", " ").strip()


def _fetch_and_stage(context, con, store, feeds: AppleFeeds | PlayFeeds, chart_date: dt.date) -> None:
    # Either store's client answers with feeds.FetchResult and never raises for a failed chart, so one fetch (or one
    # chart) failing is recorded as a failed payload and never stops the other store's fetch or the landing.
    store_name = "Google Play" if isinstance(feeds, PlayFeeds) else "Apple"
    requests = feeds.requests()
    results = feeds.client().fetch_many(requests)
    sources = [
        ingest.PayloadSource(
            content=r.content, source=r.url, source_url=r.url, http_status=r.status, etag=r.etag,
            last_modified=r.last_modified, fetched_at=r.fetched_at, chart_date=chart_date, request=r.request,
            fetch_error=None if r.ok else (r.error or f"HTTP {r.status}"),
        )
        for r in results
    ]
    staged = ingest.stage(con, store, sources, run_id=context.run.run_id,
                          message=f"fetch {store_name} {chart_date.isoformat()}")
    for r in results:
        if not r.ok:
            context.log.warning(r.error or f"{r.url}: HTTP {r.status}")
    context.log.info(
        f"fetched {len(results)} {store_name} feeds for {chart_date}: "
        f"{sum(s.status == 'staged' for s in staged)} new, {sum(s.status == 'unchanged' for s in staged)} unchanged, "
        f"{sum(s.status == 'failed' for s in staged)} failed"
    )
