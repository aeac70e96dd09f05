"""``wbgame-archive``: WBGame/ios_rank_history files, one chart or the aggregate ``{date,datasets[],warnings[]}``
(one chart per dataset; ``warnings`` are failed fetches the archive recorded, not charts)."""

from __future__ import annotations

import datetime as dt

from orchestration.sources.canonical import ParsedChart

from .common import (
    _agree, _agree_genre, _build_chart, _Ctx, _entry_date, _feed_request_from, _FEED_TYPES, _id_str, _payload_date,
    _rank, _req, _resolve_date)


# WBGame's `games-*` files are the Games genre; a v2-style dataset with mediaType games and no genre means the same.
GAMES_GENRE_ID = 6014


def _parse_wbgame(doc: dict, ctx: _Ctx, chart_date: dt.date | None, request) -> list[ParsedChart]:
    if "datasets" in doc:
        datasets = doc["datasets"]
        if not datasets:
            raise ctx.error("empty chart: the archive's datasets[] is empty")
        # The request names one chart; an aggregate holds several, so each dataset keys itself.
        return [_wbgame_chart(ds, ctx, chart_date, None, f"datasets[{i}]") for i, ds in enumerate(datasets)]
    return [_wbgame_chart(doc, ctx, chart_date, request, "items")]


def _wbgame_chart(ds, ctx: _Ctx, chart_date, request, where: str) -> ParsedChart:
    if not isinstance(ds, dict) or not isinstance(ds.get("items"), list):
        raise ctx.error(f"{where} has no items[] list")
    named = _feed_request_from(ds.get("source"))
    feed_type = ds.get("feedType")
    chart = _FEED_TYPES.get(str(feed_type)) if feed_type is not None else None
    if feed_type is not None and chart is None:
        raise ctx.error(f"{where}: unknown feedType {feed_type!r} (expected one of {sorted(set(_FEED_TYPES))})")
    if named and chart and named.chart != chart:
        raise ctx.error(f"{where}: feedType {feed_type!r} contradicts its source URL {ds.get('source')!r}")
    genre = ds.get("genre")
    try:
        genre_id = int(genre) if genre not in (None, "") else (named.genre_id if named else None)
    except (TypeError, ValueError):
        raise ctx.error(f"{where}: genre {genre!r} is not a genre id") from None
    if genre_id is None and ds.get("mediaType") == "games":
        genre_id = GAMES_GENRE_ID
    device = named.device if named else ("ipad" if "ipad" in str(feed_type) else "iphone")
    key = dict(
        country=_agree(ctx, "country", ds.get("country") or (named.country if named else None), _req(request, "country")),
        chart=_agree(ctx, "chart", chart or (named.chart if named else None), _req(request, "chart")),
        device=_agree(ctx, "device", device, _req(request, "device")),
        genre_id=_agree_genre(ctx, genre_id, request),
        chart_date=_resolve_date(ctx, chart_date, _payload_date(ctx, ds.get("date"), f"{where} date")),
    )
    items = ds["items"]
    total = ds.get("total")
    if isinstance(total, int) and total != len(items):
        raise ctx.error(f"{where}: total says {total} entries but items[] holds {len(items)} (cut short?)")
    # Only the converter's legacy-feed output put the category label in `kind`; from v2 it holds "apps".
    kind_is_genre = named is not None and named.resolved_feed == "legacy"
    rows = []
    for i, it in enumerate(items):
        if not isinstance(it, dict):
            raise ctx.error(f"{where}[{i}] is a {type(it).__name__}, expected an object")
        rank = _rank(ctx, it.get("rank"), f"{where}[{i}]")
        rows.append({
            "rank": rank,
            # `url` is "" for two entries in three (legacy entries whose link was a list): the id is `id`.
            "app_id": _id_str(it.get("id")),
            "app_name": it.get("name"),
            "developer_name": it.get("artistName"),
            "developer_id": None,
            "genre_name": (it.get("kind") or None) if kind_is_genre else None,
            "release_date": _entry_date(ctx, it.get("releaseDate"), rank),
            "price": None,
            "currency": None,
            "url": it.get("url") or None,
        })
    return _build_chart(ctx, key, rows, where)
