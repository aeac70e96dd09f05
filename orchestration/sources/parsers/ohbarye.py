"""``ohbarye-html-scrape``: ohbarye/finance-app-ranking snapshots, a JSON array of ``{rank,title,developer,url}``
scraped from the JP Finance (genre 6015) top-free iPhone chart page."""

from __future__ import annotations

import datetime as dt
import re

from orchestration.sources.canonical import ParsedChart

from .common import _agree, _agree_genre, _build_chart, _Ctx, _date_from_name, _file_name, _id_from_url, _rank, _req


_SCRAPE_TIME_IN_NAME = re.compile(r"__(\d{4}-\d{2}-\d{2})T(\d{2})(\d{2})(\d{2})Z__")


# The one chart the ohbarye scraper reads (apps.apple.com/jp/charts/iphone/ファイナンス-apps/6015?chart=top-free).
OHBARYE_CHART = {"country": "jp", "device": "iphone", "chart": "top-free", "genre_id": 6015}
# Japan has had no daylight saving time since 1951, so a fixed offset is exact and needs no tz database.
JST = dt.timezone(dt.timedelta(hours=9), "JST")


def _parse_ohbarye(doc: list, ctx: _Ctx, chart_date: dt.date | None, request) -> list[ParsedChart]:
    key = {name: _agree(ctx, name, OHBARYE_CHART[name], _req(request, name)) for name in ("country", "device", "chart")}
    key["genre_id"] = _agree_genre(ctx, OHBARYE_CHART["genre_id"], request)
    key["chart_date"] = chart_date or _ohbarye_date(ctx)
    rows = []
    for i, it in enumerate(doc):
        if not isinstance(it, dict):
            raise ctx.error(f"[{i}] is a {type(it).__name__}, expected an object")
        rows.append({
            "rank": _rank(ctx, it.get("rank"), f"[{i}]"),
            "app_id": _id_from_url(it.get("url")),  # the scrape has no id field: only the app page URL holds it
            "app_name": it.get("title"),
            "developer_name": it.get("developer"),
            "developer_id": None,
            "genre_name": None,
            "release_date": None,
            "price": None,
            "currency": None,
            "url": it.get("url") or None,
        })
    return [_build_chart(ctx, key, rows, "the array")]


def _ohbarye_date(ctx: _Ctx) -> dt.date:
    """The chart date of a snapshot named ``...__2024-12-28T120432Z__sha.json`` (the commit time, UTC).

    The chart is the JP storefront's, so the date is the Japanese calendar day (UTC+9) at scrape time: the cron
    at 22:10 UTC scrapes at 07:10 JST the next morning, and the chart it sees is that next day's chart in Japan.
    Two snapshots can land on one JST day (e.g. 09:10 and 12:13 UTC on 2024-12-29); both parse to that date and
    the raw layer keeps both as versions of the chart. A name with only a date is taken as that date.
    """
    name = _file_name(ctx.source)
    m = _SCRAPE_TIME_IN_NAME.search(name)
    if m:
        try:
            when = dt.datetime.fromisoformat(f"{m[1]}T{m[2]}:{m[3]}:{m[4]}+00:00")
        except ValueError:
            raise ctx.error(f"scrape time in the file name {name!r} is not a valid time") from None
        return when.astimezone(JST).date()
    found = _date_from_name(ctx)
    if found is None:
        raise ctx.error(
            "no chart date: an ohbarye snapshot has no date inside, so pass chart_date or keep its file name "
            "(...__YYYY-MM-DDTHHMMSSZ__sha.json)"
        )
    return found
