"""Google Play charts: the ``list()`` JSON array of the Node ``google-play-scraper`` (format ``google-play-list``).

Grain: one payload is one chart, a JSON array of ``{title, appId, url, icon, developer, developerId, priceText,
price, free, summary, scoreText, score}`` in chart order (index 0 = #1). Store ``google_play``, device
``android``, app ids are package names (``com.xingin.xhs``).

What the array does not say comes from where it was kept:

- the chart and country, from the file's path: Price-of-Privacy's dated ``play_store/<cc>/<COLLECTION>_YYYYMMDD_
  HHMMSS.json`` or undated ``play_store/rankings/<cc>_<COLLECTION>.json``, or chartlake's own
  ``[YYYY-MM-DD/]<cc>-android-<chart>[-YYYY-MM-DD].json`` (the demo's); else from the ``PlayRequest`` a fetch answered;
- the chart date, from the caller (``chart_date``: a fetch's partition, ``chartlake import --chart-date``), else
  the dated file name (the scrape's calendar date as written: the archive states no time zone). An undated file
  without ``chart_date`` is refused: guessing a date would file the chart under the wrong day.

Ranks: the scraper reads Play page by page and the pages overlap, so one app can be listed twice (the real fr
chart of 2020-10-10 lists 4 apps twice). The first listing is the app's rank; every other app keeps its own
position as its rank (what Play showed at that position), so ranks have a gap where a repeat was dropped. Each
repeat is returned in ``ParsedChart.repeats``; ingest records it and the raw check warns on it.

Play categories (``GAME_ACTION``, ``SOCIAL`` ...) are carried as ``genre_id`` integers from ``PLAY_CATEGORY_IDS``
(the raw column is an INTEGER shared with Apple's genre ids, so Play's are placed in a range Apple never uses);
the overall chart, the only one the archives hold, has no genre (``None``), as Apple's overall charts.

Only ``canonical`` is imported (``parsers`` dispatches here); no Dagster.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import PurePath
from urllib.parse import urlsplit

from orchestration.sources.canonical import CHARTS, ChartKey, ParsedChart

GOOGLE_PLAY_LIST = "google-play-list"
STORE = "google_play"
DEVICE = "android"
MAX_DEPTH = 200  # list() reads at most 200 (num > 200 is refused by the library)

# google-play-scraper's collection constants -> our chart names.
COLLECTIONS = {"TOP_FREE": "top-free", "TOP_PAID": "top-paid", "GROSSING": "top-grossing"}
CHART_COLLECTIONS = {chart: name for name, chart in COLLECTIONS.items()}
# Play category -> genre_id. Apple's genre ids are 36 and 6000-7xxx (games' subgenres) and 13xxx (newsstand);
# 90_000 + a fixed position keeps the two apart in one INTEGER column. Append only: ids must never move.
PLAY_CATEGORIES = (
    "APPLICATION", "GAME", "SOCIAL", "COMMUNICATION", "PHOTOGRAPHY", "VIDEO_PLAYERS", "ENTERTAINMENT", "SHOPPING",
    "PRODUCTIVITY", "TOOLS", "FINANCE", "LIFESTYLE", "MUSIC_AND_AUDIO", "NEWS_AND_MAGAZINES", "EDUCATION",
    "TRAVEL_AND_LOCAL", "HEALTH_AND_FITNESS", "BUSINESS", "MAPS_AND_NAVIGATION", "FOOD_AND_DRINK",
)
PLAY_GENRE_BASE = 90_000
PLAY_CATEGORY_IDS = {name: PLAY_GENRE_BASE + i for i, name in enumerate(PLAY_CATEGORIES)}
PLAY_CATEGORY_NAMES = {i: name for name, i in PLAY_CATEGORY_IDS.items()}

# A Java package name: two or more dot-separated parts, each a letter then letters, digits or underscores.
PACKAGE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$")
_COLLECTION = "|".join(COLLECTIONS)
_DATED = re.compile(rf"^(?P<collection>{_COLLECTION})_(?P<date>\d{{8}})_(?P<time>\d{{6}})\.json$")
_RANKINGS = re.compile(rf"^(?P<cc>[a-z]{{2}})_(?P<collection>{_COLLECTION})\.json$")
_CHARTLAKE = re.compile(
    r"^(?P<cc>[a-z]{2})-android-(?P<chart>top-free|top-paid|top-grossing)(?:-(?P<date>\d{4}-\d{2}-\d{2}))?\.json$")
_COUNTRY = re.compile(r"^[a-z]{2}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LANG = re.compile(r"^[a-z]{2}(-[A-Za-z]{2,4})?$")


@dataclass(frozen=True)
class PlayRequest:
    """One Play chart to fetch (``list()`` of a collection in a country). Plain fields: stored beside the payload.

    ``genre_id`` None is the overall chart (list()'s default category, ``APPLICATION``); a Play category's id from
    ``PLAY_CATEGORY_IDS`` asks for that category's chart. ``lang`` is the language Play names the apps in
    (list()'s ``lang``): part of the request because it changes the payload, not the ranking.
    """

    country: str
    chart: str
    device: str = DEVICE
    genre_id: int | None = None
    limit: int = MAX_DEPTH
    lang: str = "en"

    def __post_init__(self):
        if not isinstance(self.country, str) or not _COUNTRY.match(self.country):
            raise ValueError(f"country must be an ISO 3166-1 alpha-2 code in lower case, got {self.country!r}")
        if self.chart not in CHARTS:
            raise ValueError(f"unknown chart {self.chart!r} (expected one of {', '.join(CHARTS)})")
        if self.device != DEVICE:
            raise ValueError(f"Google Play charts are {DEVICE!r} charts, got device {self.device!r}")
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or not 1 <= self.limit <= MAX_DEPTH:
            raise ValueError(f"limit must be 1..{MAX_DEPTH}, got {self.limit!r}")
        if self.genre_id is not None and self.genre_id not in PLAY_CATEGORY_NAMES:
            raise ValueError(f"genre_id {self.genre_id!r} is not a Play category id (PLAY_CATEGORY_IDS)")
        if self.genre_id == PLAY_CATEGORY_IDS["APPLICATION"]:
            # The same chart as the overall one: two keys for one chart would count it twice.
            raise ValueError("category APPLICATION is the overall chart: ask for it with genre_id None")
        if not isinstance(self.lang, str) or not _LANG.match(self.lang):
            raise ValueError(f"lang must be a language code such as 'en' or 'pt-BR', got {self.lang!r}")

    @property
    def collection(self) -> str:
        return CHART_COLLECTIONS[self.chart]

    @property
    def category(self) -> str | None:
        """The list() category of this request, None for the overall chart (the library's default)."""
        return PLAY_CATEGORY_NAMES[self.genre_id] if self.genre_id is not None else None

    def label(self) -> str:
        genre = f"/category={self.category}" if self.category else ""
        return f"{STORE}/{self.country}/{DEVICE}/{self.chart}{genre}"


def looks_like_play_list(doc) -> bool:
    """A non-empty JSON array whose first element is an object with ``appId``: list()'s output."""
    return isinstance(doc, list) and bool(doc) and isinstance(doc[0], dict) and "appId" in doc[0]


def parse(doc: list, ctx, chart_date: dt.date | None, request) -> list[ParsedChart]:
    """The one chart of a ``list()`` array. ``ctx`` names the payload in errors (``ctx.error``, ``ctx.source``)."""
    named = _from_path(ctx.source or "", ctx.error)
    country = _agree(ctx, "country", named.get("country"), getattr(request, "country", None))
    chart = _agree(ctx, "chart", named.get("chart"), getattr(request, "chart", None))
    if request is not None and getattr(request, "device", DEVICE) != DEVICE:
        raise ctx.error(f"a Google Play chart was requested as device {request.device!r}")
    genre_id = getattr(request, "genre_id", None)
    day = chart_date or named.get("date")
    if day is None:
        raise ctx.error(
            "no chart date: a Google Play list() payload has no date inside and this file name carries none "
            "(expected <COLLECTION>_YYYYMMDD_HHMMSS.json or <cc>-android-<chart>-YYYY-MM-DD.json); import it "
            "with --chart-date YYYY-MM-DD")
    try:
        key = ChartKey(STORE, country, DEVICE, chart, genre_id, day)
    except ValueError as exc:
        raise ctx.error(f"cannot key this chart: {exc}") from None
    label = key.label()
    if len(doc) > MAX_DEPTH:
        raise ctx.error(f"{len(doc)} entries in {label}: list() serves at most {MAX_DEPTH}, so payloads were merged")
    entries: list[dict] = []
    repeats: list[dict] = []
    first_rank: dict[str, int] = {}
    for i, item in enumerate(doc):
        position = i + 1
        if not isinstance(item, dict):
            raise ctx.error(f"[{i}] is a {type(item).__name__}, expected an object, in {label}")
        app_id = item.get("appId")
        if app_id is None or app_id == "":
            raise ctx.error(f"entry at position {position} has no appId in {label}")
        if not isinstance(app_id, str) or not PACKAGE_NAME.match(app_id):
            raise ctx.error(f"malformed appId {app_id!r} at position {position} in {label} (expected a package "
                            "name such as com.xingin.xhs)")
        if app_id in first_rank:
            repeats.append({"position": position, "app_id": app_id, "first_rank": first_rank[app_id]})
            continue
        title = item.get("title")
        if not isinstance(title, str) or not title.strip():
            raise ctx.error(f"entry at position {position} (app {app_id}) has no title in {label}")
        first_rank[app_id] = position
        entries.append({
            "rank": position,
            "app_id": app_id,
            "app_name": html.unescape(title),
            "developer_name": _text(item.get("developer")),
            "developer_id": _id_text(item.get("developerId")),
            "genre_name": None,  # list() without fullDetail names no category; the chart's own is genre_id
            "release_date": None,
            "price": _price(ctx, item.get("price"), position),
            "currency": _currency(item.get("currency")),
            "url": item.get("url") or None,
        })
    return [ParsedChart(key=key, entries=entries, repeats=repeats)]


def path_hints(source: str | None) -> dict:
    """What a Play file's path promises (country, chart, date), for a payload that did not parse; {} if nothing."""
    try:
        return _from_path(source or "", ValueError)
    except ValueError:
        return {}


def _from_path(source: str, error) -> dict:
    """Country, chart and date that the file's name (and parent folder) promise; {} for a URL or another name.
    ``error(message)`` makes the exception raised for a name that promises something impossible."""
    if "://" in source and not source.startswith("file://"):
        return {}
    path = PurePath(urlsplit(source).path if "://" in source else source)
    m = _DATED.match(path.name)
    if m:
        cc = path.parent.name
        if not _COUNTRY.match(cc):
            raise error(f"a dated Play file must sit in its storefront's folder (play_store/<cc>/{path.name}), "
                            f"not in {cc!r}")
        try:
            day = dt.datetime.strptime(m["date"] + m["time"], "%Y%m%d%H%M%S").date()
        except ValueError:
            raise error(f"the scrape time in the file name {path.name!r} is not a valid time") from None
        return {"country": cc, "chart": COLLECTIONS[m["collection"]], "date": day}
    m = _RANKINGS.match(path.name)
    if m:
        return {"country": m["cc"], "chart": COLLECTIONS[m["collection"]]}
    m = _CHARTLAKE.match(path.name)
    if m:
        # The demo's layout files a day's charts in a folder named by the date: {date}/{cc}-android-{chart}.json.
        named = m["date"] or (path.parent.name if _ISO_DATE.match(path.parent.name) else None)
        try:
            day = dt.date.fromisoformat(named) if named else None
        except ValueError:
            raise error(f"the date in the file name {path.name!r} is not a valid date") from None
        return {"country": m["cc"], "chart": m["chart"], "date": day}
    return {}


def _agree(ctx, field: str, from_name, from_request):
    if from_name is not None and from_request is not None and from_name != from_request:
        raise ctx.error(f"the file name says {field} {from_name!r} but the payload was requested as {from_request!r}")
    value = from_name if from_name is not None else from_request
    if value is None:
        raise ctx.error(
            f"cannot tell the {field} of this Google Play chart: list() does not say it and the file name is not "
            "play_store/<cc>/<COLLECTION>_YYYYMMDD_HHMMSS.json, play_store/rankings/<cc>_<COLLECTION>.json or "
            "<cc>-android-<chart>[-YYYY-MM-DD].json")
    return value


def _text(value) -> str | None:
    return html.unescape(value) if isinstance(value, str) and value else None


def _currency(value) -> str | None:
    # list() >= 9 writes the ISO code Play priced the chart in ("USD"); the 2020 archives have only priceText, a
    # localised string ("FREE", "1,99 €") with no ISO code in it. A value that is not an ISO code is the
    # validator's to refuse, naming it.
    return None if value is None or value == "" else str(value)


def _id_text(value) -> str | None:
    # A numeric id or the developer's name URL-encoded (H%26M): kept as Play wrote it, it is Play's key.
    if value is None or value == "" or isinstance(value, bool):
        return None
    return str(value)


def _price(ctx, value, position: int) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ctx.error(f"price {value!r} at position {position} is not a number")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ctx.error(f"price {value!r} at position {position} is not a number") from None
