"""What every format's parser shares: the format names, where a payload came from (``_Ctx``, so every error names
it), and the checks that turn payload fields into a ``ParsedChart`` (ids, ranks, dates, prices, agreement with
the request)."""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import re
from decimal import Decimal, InvalidOperation
from pathlib import PurePath
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


_HTML_START = re.compile(r"<(?:!doctype\s+html|html|head|body)\b", re.IGNORECASE)


_FEED_TYPES = {
    "top-free": "top-free", "top-paid": "top-paid", "top-grossing": "top-grossing",
    "topfreeapplications": "top-free", "toppaidapplications": "top-paid", "topgrossingapplications": "top-grossing",
    "topfreeipadapplications": "top-free", "toppaidipadapplications": "top-paid",
    "topgrossingipadapplications": "top-grossing",
}


class _Ctx:
    """Where a payload came from, so every error can name it."""

    def __init__(self, source: str, sha256: str | None):
        self.source = source
        self.sha256 = sha256

    def error(self, message: str) -> PayloadError:
        return PayloadError(message, source=self.source, sha256=self.sha256)


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
