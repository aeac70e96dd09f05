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

One module per format (``apple_v2``, ``itunes_legacy``, ``wbgame``, ``ohbarye``; ``sources/app_tracker.py`` and
``sources/play.py`` for theirs), what they share in ``common``; this module tells the layouts apart and dispatches.

Every problem raises ``PayloadError`` naming the source and payload hash, and the chart when it is known. No
Dagster imports.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable

from orchestration.sources import app_tracker, play
from orchestration.sources.canonical import ParsedChart, PayloadError
from orchestration.sources.feeds import FeedRequest

from .apple_v2 import _parse_v2
from .common import (  # the format names are this package's interface too
    APP_TRACKER_ARCHIVE, APPLE_RSS_V2, FORMATS, GOOGLE_PLAY_LIST, ITUNES_RSS_LEGACY, OHBARYE_HTML_SCRAPE,
    SIMULATED_SUFFIX, STORE, WBGAME_ARCHIVE, _build_chart, _Ctx, _HTML_START, _payload_date, _rank, _resolve_date)
from .itunes_legacy import _parse_legacy
from .ohbarye import _parse_ohbarye
from .wbgame import _parse_wbgame

__all__ = ["APP_TRACKER_ARCHIVE", "APPLE_RSS_V2", "FORMATS", "GOOGLE_PLAY_LIST", "ITUNES_RSS_LEGACY",
           "OHBARYE_HTML_SCRAPE", "PayloadError", "SIMULATED_SUFFIX", "STORE", "WBGAME_ARCHIVE", "detect_format",
           "parse_payload"]


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
