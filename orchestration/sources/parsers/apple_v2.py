"""``apple-rss-v2``: Apple RSS v2 JSON, ``feed.results[]``, rank = list order."""

from __future__ import annotations

import datetime as dt

from orchestration.sources.canonical import ParsedChart

from .common import (
    _agree, _agree_genre, _build_chart, _Ctx, _entry_date, _feed_request_from, _id_from_url, _id_str, _payload_date,
    _payload_time, _req, _resolve_date)


_V2_TITLES = {"top free apps": "top-free", "top paid apps": "top-paid"}


def _parse_v2(doc: dict, ctx: _Ctx, chart_date: dt.date | None, request) -> list[ParsedChart]:
    feed = doc["feed"]
    results = feed.get("results", [])
    if not isinstance(results, list):
        raise ctx.error(f"feed.results is a {type(results).__name__}, expected a list")
    named = _feed_request_from(feed.get("id")) or _feed_request_from(_v2_self_link(feed))
    country = feed.get("country") or (named.country if named else None)
    chart = named.chart if named else _V2_TITLES.get(str(feed.get("title") or "").strip().lower())
    key = dict(
        country=_agree(ctx, "country", country, _req(request, "country")),
        chart=_agree(ctx, "chart", chart, _req(request, "chart")),
        device=_agree(ctx, "device", "iphone", _req(request, "device")),
        genre_id=_agree_genre(ctx, None, request),  # v2 has no genre filter: always the overall chart
        chart_date=_resolve_date(ctx, chart_date, _payload_date(ctx, feed.get("updated"), "feed.updated")),
    )
    rows = []
    for i, r in enumerate(results):
        if not isinstance(r, dict):
            raise ctx.error(f"feed.results[{i}] is a {type(r).__name__}, expected an object")
        rows.append({
            "rank": i + 1,
            "app_id": _id_str(r.get("id")),
            "app_name": r.get("name"),
            "developer_name": r.get("artistName"),
            "developer_id": _id_str(r.get("artistId")) or _id_from_url(r.get("artistUrl")),
            "genre_name": _first_genre_name(r.get("genres")),
            "release_date": _entry_date(ctx, r.get("releaseDate"), i + 1),
            "price": None,  # v2 carries no price; top-free does not prove 0 in every currency's terms
            "currency": None,
            "url": r.get("url") or None,
        })
    chart = _build_chart(ctx, key, rows, "feed.results")
    chart.captured_at = _payload_time(feed.get("updated"))
    return [chart]


def _v2_self_link(feed: dict) -> str | None:
    for link in feed.get("links") or []:
        if isinstance(link, dict) and isinstance(link.get("self"), str):
            return link["self"]
    return None


def _first_genre_name(genres) -> str | None:
    if isinstance(genres, list):
        for g in genres:
            if isinstance(g, dict) and g.get("name"):
                return g["name"]
    return None
