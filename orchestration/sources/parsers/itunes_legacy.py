"""``itunes-rss-legacy``: the legacy iTunes RSS JSON, ``feed.entry[]`` (an object when the chart has one entry)."""

from __future__ import annotations

import datetime as dt

from orchestration.sources.canonical import ParsedChart

from .common import (
    _agree, _agree_genre, _build_chart, _Ctx, _decimal, _dig, _entry_date, _feed_request_from, _id_from_url, _id_str,
    _label, _payload_date, _payload_time, _req, _resolve_date)


def _parse_legacy(doc: dict, ctx: _Ctx, chart_date: dt.date | None, request) -> list[ParsedChart]:
    feed = doc["feed"]
    entries = feed.get("entry", [])
    if isinstance(entries, dict):  # a one-entry chart comes as an object, not a list
        entries = [entries]
    if not isinstance(entries, list):
        raise ctx.error(f"feed.entry is a {type(entries).__name__}, expected a list or an object")
    named = _feed_request_from(_label(feed.get("id"))) or _feed_request_from(_legacy_link(feed.get("link"), "self"))
    key = dict(
        country=_agree(ctx, "country", named.country if named else None, _req(request, "country")),
        chart=_agree(ctx, "chart", named.chart if named else None, _req(request, "chart")),
        device=_agree(ctx, "device", named.device if named else None, _req(request, "device")),
        # Without the feed URL the payload does not say its genre: the request's stands.
        genre_id=_agree_genre(ctx, named.genre_id, request) if named else _req(request, "genre_id"),
        chart_date=_resolve_date(ctx, chart_date, _payload_date(ctx, _label(feed.get("updated")), "feed.updated.label")),
    )
    rows = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise ctx.error(f"feed.entry[{i}] is a {type(e).__name__}, expected an object")
        artist = e.get("im:artist") if isinstance(e.get("im:artist"), dict) else {}
        price = _dig(e, "im:price", "attributes") or {}
        rows.append({
            "rank": i + 1,
            "app_id": _id_str(_dig(e, "id", "attributes", "im:id")),
            "app_name": _label(e.get("im:name")),
            "developer_name": artist.get("label"),
            "developer_id": _id_from_url(_dig(artist, "attributes", "href")),
            "genre_name": _dig(e, "category", "attributes", "label"),
            "release_date": _entry_date(ctx, _label(e.get("im:releaseDate")), i + 1),
            "price": _decimal(ctx, price.get("amount"), i + 1),
            "currency": price.get("currency") or None,
            "url": _legacy_link(e.get("link"), "alternate") or _label(e.get("id")),
        })
    chart = _build_chart(ctx, key, rows, "feed.entry")
    chart.captured_at = _payload_time(_label(feed.get("updated")))
    return [chart]


def _legacy_link(link, rel: str) -> str | None:
    """``link`` is one object or a list of them (the app page plus media enclosures): pick the one with ``rel``."""
    links = [link] if isinstance(link, dict) else link if isinstance(link, list) else []
    for item in links:
        attrs = item.get("attributes") if isinstance(item, dict) else None
        if isinstance(attrs, dict) and attrs.get("rel", "alternate") == rel and attrs.get("href"):
            return attrs["href"]
    return None
