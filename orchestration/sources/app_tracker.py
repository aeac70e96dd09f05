"""lyubimovats/app-tracker day files (format ``app-tracker-archive``): one file per UTC day, every storefront in it.

Layout: ``{"date": "YYYY-MM-DD", "countries": {"us": [{"rank", "id", "name", "developer"}, ...], ...}}``, already
normalised from the legacy iTunes feed ``/{cc}/rss/topfreeapplications/limit=200/genre=6008/json`` (Photo & Video,
top free, iPhone). Grain: one file in, one chart per storefront out; each is its own chart version in the raw
layer. A storefront whose fetch failed is simply absent from the day's file: that chart is missing for the day
(nothing is landed for it), never an empty chart.

This module only reads the layout; ``parsers`` checks and keys the rows like every Apple chart. No Dagster.
"""

from __future__ import annotations

APP_TRACKER_ARCHIVE = "app-tracker-archive"
# The one chart the tracker fetches (PROVENANCE.md of lyubimovats-app-tracker).
CHART = {"device": "iphone", "chart": "top-free", "genre_id": 6008}


def looks_like_app_tracker(doc) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("countries"), dict) and "date" in doc


def charts(doc: dict, ctx) -> list[tuple[dict, list[dict], str]]:
    """``(key without chart_date, rows, where)`` per storefront, in storefront order; the date is ``doc["date"]``."""
    countries = doc["countries"]
    if not countries:
        raise ctx.error("no storefronts: the day file's countries{} is empty")
    out = []
    for country, items in countries.items():
        where = f"countries.{country}"
        if not isinstance(items, list):
            raise ctx.error(f"{where} is a {type(items).__name__}, expected a list")
        rows = []
        for i, it in enumerate(items):
            if not isinstance(it, dict):
                raise ctx.error(f"{where}[{i}] is a {type(it).__name__}, expected an object")
            rows.append({
                "rank": it.get("rank"),
                "app_id": None if it.get("id") is None else str(it.get("id")),
                "app_name": it.get("name"),
                "developer_name": it.get("developer") or None,
                "developer_id": None,
                "genre_name": None,
                "release_date": None,
                "price": None,
                "currency": None,
                "url": None,
            })
        out.append(({"country": country, **CHART}, rows, where))
    return out
