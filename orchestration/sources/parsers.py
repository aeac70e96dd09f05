"""From payload bytes to ``ParsedChart`` objects: Apple's two feeds and the archive layouts we import.

Grain: one payload in, one ``ParsedChart`` per chart it holds out (one for Apple's feeds, several for an archive's
aggregate file), each with its positions in rank order. Entries hold exactly ``canonical.ENTRY_FIELDS``; names
are kept as given (no trimming, no normalisation) because the raw layer must stay faithful to the payload, and
cleaning is dbt's job. The ingest layer adds lineage.

Formats (the ``source_format`` value):

- ``apple-rss-v2``: Apple RSS v2 JSON, ``feed.results[]``, rank = list order.
- ``itunes-rss-legacy``: the legacy iTunes RSS JSON, ``feed.entry[]`` (an object when the chart has one entry).
- ``wbgame-archive``: WBGame/ios_rank_history files, ``{date,country,feedType,genre,source,total,items[]}`` or
  the aggregate ``{date,datasets[],warnings[]}`` (one chart per dataset; ``warnings`` are failed fetches the
  archive recorded, not charts).
- ``ohbarye-html-scrape``: ohbarye/finance-app-ranking snapshots, a JSON array of ``{rank,title,developer,url}``
  scraped from the JP Finance (genre 6015) top-free iPhone chart page.
- ``app-tracker-archive``: lyubimovats/app-tracker day files, one chart per storefront (``sources/app_tracker.py``).
- ``google-play-list``: Google Play's ``list()`` JSON array, store ``google_play`` (``sources/play.py``, which
  keys and checks its own charts: package-name ids, repeated apps).

A payload whose top level carries ``"chartlake": {"simulated": true}`` (the demo generator's marker) gets
``-simulated`` appended to its format, so simulated rows can never pass for real ones downstream.

Chart date, in order: the ``chart_date`` argument (a fetch knows the partition it was made for); the payload's
own date (v2 ``feed.updated``, legacy ``feed.updated.label``, archive ``date``), read as the calendar date
written in the timestamp's own offset (UTC for v2, Cupertino time for legacy), because that is the day Apple
stamped; then a ``YYYY-MM-DD`` in the file name. ohbarye snapshots carry no date inside: see ``_ohbarye_date``.

Every problem raises ``PayloadError`` naming the source and payload hash, and the chart when it is known. No
Dagster imports.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import json
import re
from decimal import Decimal, InvalidOperation
from pathlib import PurePath
from typing import Any, Callable
from urllib.parse import urlsplit

from orchestration.sources import app_tracker, play
from orchestration.sources.canonical import ENTRY_FIELDS, ChartKey, ParsedChart, PayloadError
from orchestration.sources.feeds import FeedRequest

APPLE_RSS_V2 = "apple-rss-v2"
ITUNES_RSS_LEGACY = "itunes-rss-legacy"
WBGAME_ARCHIVE = "wbgame-archive"
OHBARYE_HTML_SCRAPE = "ohbarye-html-scrape"
APP_TRACKER_ARCHIVE = app_tracker.APP_TRACKER_ARCHIVE
GOOGLE_PLAY_LIST = play.GOOGLE_PLAY_LIST
FORMATS = (APPLE_RSS_V2, ITUNES_RSS_LEGACY, WBGAME_ARCHIVE, OHBARYE_HTML_SCRAPE, APP_TRACKER_ARCHIVE, GOOGLE_PLAY_LIST)
SIMULATED_SUFFIX = "-simulated"

STORE = "apple"
# Apple ids are positive integers (about 9-10 digits today) written without leading zeros. The rule also turns
# away placeholder ids such as WBGame's fallback sample "0000000001".
_APP_ID = re.compile(r"^[1-9][0-9]{0,14}$")
_ID_IN_URL = re.compile(r"/id(\d+)(?=[/?#]|$)")
_DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)")
_SCRAPE_TIME_IN_NAME = re.compile(r"__(\d{4}-\d{2}-\d{2})T(\d{2})(\d{2})(\d{2})Z__")
_HTML_START = re.compile(r"<(?:!doctype\s+html|html|head|body)\b", re.IGNORECASE)

# The one chart the ohbarye scraper reads (apps.apple.com/jp/charts/iphone/ファイナンス-apps/6015?chart=top-free).
OHBARYE_CHART = {"country": "jp", "device": "iphone", "chart": "top-free", "genre_id": 6015}
# Japan has had no daylight saving time since 1951, so a fixed offset is exact and needs no tz database.
JST = dt.timezone(dt.timedelta(hours=9), "JST")
# WBGame's `games-*` files are the Games genre; a v2-style dataset with mediaType games and no genre means the same.
GAMES_GENRE_ID = 6014

_FEED_TYPES = {
    "top-free": "top-free", "top-paid": "top-paid", "top-grossing": "top-grossing",
    "topfreeapplications": "top-free", "toppaidapplications": "top-paid", "topgrossingapplications": "top-grossing",
    "topfreeipadapplications": "top-free", "toppaidipadapplications": "top-paid",
    "topgrossingipadapplications": "top-grossing",
}
_V2_TITLES = {"top free apps": "top-free", "top paid apps": "top-paid"}


class _Ctx:
    """Where a payload came from, so every error can name it."""

    def __init__(self, source: str, sha256: str | None):
        self.source = source
        self.sha256 = sha256

    def error(self, message: str) -> PayloadError:
        return PayloadError(message, source=self.source, sha256=self.sha256)


# --- entry points ---------------------------------------------------------------------------------------------


def detect_format(content: bytes, source: str, *, sha256: str | None = None) -> str:
    """The ``source_format`` of a payload (e.g. ``apple-rss-v2`` or ``apple-rss-v2-simulated``).

    Raises ``PayloadError`` for HTML, invalid or truncated JSON and layouts we do not know.
    """
    ctx = _Ctx(source, sha256)
    doc = _load_json(content, ctx)
    return _base_format(doc, ctx) + (SIMULATED_SUFFIX if _is_simulated(doc) else "")


def parse_payload(
    content: bytes,
    *,
    source: str,
    sha256: str | None = None,
    chart_date: dt.date | None = None,
    request: FeedRequest | None = None,
) -> list[ParsedChart]:
    """Parse one payload into its charts.

    ``source`` (file path or URL) names the payload in errors and gives file-name hints (dates). ``request`` is
    the ``FeedRequest`` a fetched payload answered: it fills what the payload does not say, and a payload that
    contradicts it (another country, chart, device or genre) is an error, since rows keyed by the request would
    then be wrong.
    """
    ctx = _Ctx(source, sha256)
    if isinstance(chart_date, dt.datetime):
        chart_date = chart_date.date()
    doc = _load_json(content, ctx)
    fmt = _base_format(doc, ctx)
    charts = _PARSERS[fmt](doc, ctx, chart_date, request)
    suffix = SIMULATED_SUFFIX if _is_simulated(doc) else ""
    for chart in charts:
        chart.source_format = fmt + suffix
    return charts


# --- layout ---------------------------------------------------------------------------------------------------


def _load_json(content: bytes, ctx: _Ctx) -> Any:
    if content is None or len(content) == 0:
        raise ctx.error("empty payload (0 bytes)")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ctx.error(f"payload is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    head = text.lstrip()
    if head.startswith("<"):
        kind = "an HTML page" if _HTML_START.match(head) else "XML/HTML markup"
        raise ctx.error(f"{kind} instead of JSON (starts with {head[:60]!r})")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()) or _unclosed(text):
            raise ctx.error(
                f"truncated JSON: the payload ends before the document does ({len(content)} bytes, "
                f"{exc.msg} at line {exc.lineno} column {exc.colno})"
            ) from None
        raise ctx.error(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def _unclosed(text: str) -> bool:
    """True when the text ends inside a string or with brackets still open: cut short, not merely malformed."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
    return in_string or depth > 0


_EXPECTED = (
    "expected Apple RSS v2 ({feed: {results: [...]}}), legacy iTunes RSS ({feed: {entry: [...]}}), a WBGame archive "
    "({date, country, feedType, items: [...]} or {date, datasets: [...]}), an app-tracker day file "
    "({date, countries: {cc: [...]}}), an ohbarye scrape ([{rank, title, developer, url}, ...]) or a Google Play "
    "list() array ([{title, appId, url, ...}, ...])"
)


def _base_format(doc: Any, ctx: _Ctx) -> str:
    if isinstance(doc, dict):
        feed = doc.get("feed")
        if isinstance(feed, dict):
            if "results" in feed:
                return APPLE_RSS_V2
            if "entry" in feed:
                return ITUNES_RSS_LEGACY
            # An empty chart has no results/entry key at all: tell the feeds apart by their id's shape.
            fid = feed.get("id")
            if isinstance(fid, dict) and "label" in fid:
                return ITUNES_RSS_LEGACY
            if isinstance(fid, str) and "/api/v2/" in fid:
                return APPLE_RSS_V2
            raise ctx.error(f"unknown layout: a 'feed' object with keys {sorted(feed)[:12]}; {_EXPECTED}")
        if isinstance(doc.get("datasets"), list) or (isinstance(doc.get("items"), list) and "date" in doc):
            return WBGAME_ARCHIVE
        if app_tracker.looks_like_app_tracker(doc):
            return APP_TRACKER_ARCHIVE
        raise ctx.error(f"unknown layout: a JSON object with keys {sorted(doc)[:12]}; {_EXPECTED}")
    if isinstance(doc, list):
        if not doc:
            raise ctx.error("empty chart: the payload is an empty JSON array")
        first = doc[0]
        if isinstance(first, dict) and {"rank", "title", "url"} <= set(first):
            return OHBARYE_HTML_SCRAPE
        if play.looks_like_play_list(doc):
            return GOOGLE_PLAY_LIST
        raise ctx.error(f"unknown layout: a JSON array of {type(first).__name__}; {_EXPECTED}")
    raise ctx.error(f"unknown layout: a JSON {type(doc).__name__} at the top level; {_EXPECTED}")


def _is_simulated(doc: Any) -> bool:
    if isinstance(doc, list) and doc:
        doc = doc[0]  # a top-level array (Play's list()) has no envelope: the demo marks its first entry
    marker = doc.get("chartlake") if isinstance(doc, dict) else None
    return isinstance(marker, dict) and marker.get("simulated") is True


# --- Apple RSS v2 ---------------------------------------------------------------------------------------------


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


# --- legacy iTunes RSS ----------------------------------------------------------------------------------------


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


# --- WBGame archive -------------------------------------------------------------------------------------------


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


# --- ohbarye HTML scrape --------------------------------------------------------------------------------------


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


def _parse_app_tracker(doc: dict, ctx: _Ctx, chart_date: dt.date | None, request) -> list[ParsedChart]:
    # One file, every storefront: the request (one chart) cannot describe it, so each storefront keys itself.
    day = _resolve_date(ctx, chart_date, _payload_date(ctx, doc.get("date"), "date"))
    return [_build_chart(ctx, {**key, "chart_date": day}, [{**r, "rank": _rank(ctx, r["rank"], f"{where}[{i}]")}
                                                           for i, r in enumerate(rows)], where)
            for key, rows, where in app_tracker.charts(doc, ctx)]


_PARSERS: dict[str, Callable[..., list[ParsedChart]]] = {
    APPLE_RSS_V2: _parse_v2,
    ITUNES_RSS_LEGACY: _parse_legacy,
    WBGAME_ARCHIVE: _parse_wbgame,
    OHBARYE_HTML_SCRAPE: _parse_ohbarye,
    APP_TRACKER_ARCHIVE: _parse_app_tracker,
    GOOGLE_PLAY_LIST: play.parse,
}


# --- shared checks --------------------------------------------------------------------------------------------


def _build_chart(ctx: _Ctx, key: dict, rows: list[dict], where: str) -> ParsedChart:
    try:
        chart_key = ChartKey(STORE, key["country"], key["device"], key["chart"], key["genre_id"], key["chart_date"])
    except ValueError as exc:
        raise ctx.error(f"cannot key this chart: {exc}") from None
    label = chart_key.label()
    if not rows:
        raise ctx.error(f"empty chart {label}: {where} has no entries")
    entries: list[dict] = []
    seen: set[int] = set()
    for row in rows:
        rank = row["rank"]
        if rank in seen:
            raise ctx.error(f"duplicate rank {rank} in {label}")
        seen.add(rank)
        app_id = row["app_id"]
        if app_id is None or app_id == "":
            raise ctx.error(f"entry at rank {rank} has no app id in {label}")
        if not _APP_ID.match(app_id):
            raise ctx.error(f"malformed app id {app_id!r} at rank {rank} in {label} (expected digits, no leading zero)")
        name = row["app_name"]
        if not isinstance(name, str) or not name.strip():
            raise ctx.error(f"entry at rank {rank} (app {app_id}) has no name in {label}")
        # Every parser builds its rows with exactly ENTRY_FIELDS, in order: keep the row rather than copy it.
        entries.append(row if tuple(row) == ENTRY_FIELDS
                       else {f: row.get(f) for f in ENTRY_FIELDS})
    entries.sort(key=lambda e: e["rank"])
    return ParsedChart(key=chart_key, entries=entries)


def _agree(ctx: _Ctx, field: str, from_payload, from_request):
    """The payload's value, checked against the request's; the request only fills what the payload omits."""
    if from_payload is not None and from_request is not None and from_payload != from_request:
        raise ctx.error(f"the payload is for {field} {from_payload!r} but was requested as {from_request!r}")
    if from_payload is None and from_request is None:
        raise ctx.error(f"cannot tell the {field} of this chart: the payload does not say and there is no request")
    return from_payload if from_payload is not None else from_request


def _agree_genre(ctx: _Ctx, from_payload: int | None, request) -> int | None:
    # Unlike other fields, a payload's "no genre" is a fact (the overall chart), so it must match the request too.
    if request is not None and getattr(request, "genre_id", None) != from_payload:
        raise ctx.error(
            f"the payload is for genre {from_payload!r} but was requested as {getattr(request, 'genre_id', None)!r}"
        )
    return from_payload


def _req(request, name: str):
    return getattr(request, name, None) if request is not None else None


def _resolve_date(ctx: _Ctx, given: dt.date | None, from_payload: dt.date | None) -> dt.date:
    if given is not None:
        return given
    if from_payload is not None:
        return from_payload
    found = _date_from_name(ctx)
    if found is None:
        raise ctx.error("no chart date: pass chart_date, or the payload needs its own date or a YYYY-MM-DD file name")
    return found


def _payload_date(ctx: _Ctx, value, what: str) -> dt.date | None:
    """Calendar date of an ISO 8601 or RFC 2822 timestamp, in the offset it was written with."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ctx.error(f"{what} is a {type(value).__name__}, expected a date string")
    try:
        return dt.datetime.fromisoformat(value).date()
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(value).date()
    except (TypeError, ValueError):
        raise ctx.error(f"{what} {value!r} is not a date") from None


def _payload_time(value) -> dt.datetime | None:
    """A feed's ``updated`` stamp as naive UTC, when it is a time with an offset (a bare date says no time)."""
    if not isinstance(value, str) or "T" not in value and ":" not in value:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        return None
    return when.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _entry_date(ctx: _Ctx, value, rank: int) -> dt.date | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ctx.error(f"release date {value!r} at rank {rank} is not a date string")
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise ctx.error(f"release date {value!r} at rank {rank} is not a date") from None


def _date_from_name(ctx: _Ctx) -> dt.date | None:
    m = _DATE_IN_NAME.search(_file_name(ctx.source))
    if not m:
        return None
    try:
        return dt.date.fromisoformat(m[1])
    except ValueError:
        return None


def _file_name(source: str) -> str:
    if not source:
        return ""
    path = urlsplit(source).path if "://" in source else source
    return PurePath(path).name


def _rank(ctx: _Ctx, value, where: str) -> int:
    # isdigit() alone admits "²" and other Unicode digits that int() refuses: ASCII digits only.
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ctx.error(f"{where}: rank {value!r} is not a positive integer")
    return value


def _decimal(ctx: _Ctx, value, rank: int) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ctx.error(f"price {value!r} at rank {rank} is not a number") from None


def _id_str(value) -> str | None:
    """An id as text. JSON numbers are accepted (some archives write ids as numbers); bools are not ids."""
    return None if value is None else str(value)


def _id_from_url(url) -> str | None:
    """The numeric id in an Apple URL: ``.../id284882215?...`` or an old artist URL ending in ``/183313439``."""
    if not isinstance(url, str) or not url:
        return None
    return _id_in_url(url)


@functools.lru_cache(maxsize=16384)  # a developer's URL comes back on every chart they are in
def _id_in_url(url: str) -> str | None:
    path = urlsplit(url).path
    m = _ID_IN_URL.search(path)
    if m:
        return m[1]
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return last if last.isdigit() else None


def _feed_request_from(url) -> FeedRequest | None:
    return FeedRequest.from_url(url) if isinstance(url, str) else None


def _label(node) -> str | None:
    """The legacy feed wraps every value as ``{"label": ...}``."""
    if isinstance(node, dict):
        value = node.get("label")
        return value if isinstance(value, str) else None
    return None


def _dig(node, *path):
    for step in path:
        if not isinstance(node, dict):
            return None
        node = node.get(step)
    return node
