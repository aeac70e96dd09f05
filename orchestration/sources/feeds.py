"""Fetching Apple's chart feeds over HTTP.

Two feeds serve the App Store charts (DESIGN.md, "Sources"):

- Apple RSS v2 (``rss.applemarketingtools.com/api/v2/{cc}/apps/{top-free|top-paid}/{n}/apps.json``): iPhone only,
  top-free / top-paid only, at most 100 entries, no genre filter.
- the legacy iTunes RSS feed (``itunes.apple.com/{cc}/rss/{feed}/limit=N[/genre=G]/json``): up to 200 entries,
  genre filters, iPad charts and top grossing.

``FeedRequest`` names one chart to fetch and picks the feed that can serve it; ``AppleFeedClient`` fetches it with
retries and never raises for HTTP trouble, so a scheduled run records a failed country instead of crashing. The
grain of everything here is one HTTP request for one chart. No Dagster imports: the raw assets, the CLI and tests
use this module directly.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable
from urllib.parse import urlsplit

import requests

from orchestration import config
from orchestration.sources.canonical import CHARTS, DEVICES
from orchestration.sources.fetch_pool import fetch_all

DEFAULT_V2_BASE_URL = "https://rss.applemarketingtools.com"
DEFAULT_LEGACY_BASE_URL = "https://itunes.apple.com"

FEEDS = ("auto", "v2", "legacy")
V2_MAX_LIMIT = 100  # above this Apple answers HTTP 500 (DESIGN.md)
LEGACY_MAX_LIMIT = 200
V2_CHARTS = ("top-free", "top-paid")  # v2 answers 404 for top-grossing apps

# (device, chart) -> legacy feed name, and back.
LEGACY_FEED_NAMES: dict[tuple[str, str], str] = {
    ("iphone", "top-free"): "topfreeapplications",
    ("iphone", "top-paid"): "toppaidapplications",
    ("iphone", "top-grossing"): "topgrossingapplications",
    ("ipad", "top-free"): "topfreeipadapplications",
    ("ipad", "top-paid"): "toppaidipadapplications",
    ("ipad", "top-grossing"): "topgrossingipadapplications",
}
LEGACY_FEED_KEYS: dict[str, tuple[str, str]] = {name: key for key, name in LEGACY_FEED_NAMES.items()}

_COUNTRY = re.compile(r"^[a-z]{2}$")
# Hosts vary (itunes.apple.com, mzstoreservices-int-st.itunes.apple.com ...): match on the path only.
_V2_PATH = re.compile(r"/api/v2/(?P<cc>[a-z]{2})/apps/(?P<chart>[a-z-]+)/(?P<limit>\d+)/apps\.json$")
_LEGACY_PATH = re.compile(r"^/(?:(?P<cc>[a-z]{2})/)?rss/(?P<feed>[a-z]+)(?P<params>(?:/[a-z]+=[^/]*)*)/json$")


@dataclass(frozen=True)
class FeedRequest:
    """One chart to fetch: a country's top-free/top-paid/top-grossing chart for a device, optionally one genre.

    ``feed="auto"`` picks Apple RSS v2 when it can serve the chart (iPhone, top-free/top-paid, no genre,
    limit <= 100), else the legacy iTunes feed. Plain fields only, so ``FeedRequest(**dataclasses.asdict(r))``
    round-trips (the payload store keeps the request beside the payload).
    """

    country: str
    chart: str
    device: str = "iphone"
    genre_id: int | None = None
    limit: int = 100
    feed: str = "auto"

    def __post_init__(self):
        if not isinstance(self.country, str) or not _COUNTRY.match(self.country):
            raise ValueError(
                f"country must be an ISO 3166-1 alpha-2 code in lower case (e.g. 'us'), got {self.country!r}"
            )
        if self.chart not in CHARTS:
            raise ValueError(f"unknown chart {self.chart!r} (expected one of {', '.join(CHARTS)})")
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r} (expected one of {', '.join(DEVICES)})")
        if self.genre_id is not None and (
            isinstance(self.genre_id, bool) or not isinstance(self.genre_id, int) or self.genre_id <= 0
        ):
            raise ValueError(f"genre_id must be a positive integer or None, got {self.genre_id!r}")
        if self.feed not in FEEDS:
            raise ValueError(f"unknown feed {self.feed!r} (expected one of {', '.join(FEEDS)})")
        if isinstance(self.limit, bool) or not isinstance(self.limit, int):
            raise ValueError(f"limit must be an integer, got {self.limit!r}")
        if self.feed == "v2":
            reason = self._v2_refusal()
            if reason:
                raise ValueError(f"the Apple RSS v2 feed cannot serve {self.label()}: {reason}")
        max_limit = V2_MAX_LIMIT if self.resolved_feed == "v2" else LEGACY_MAX_LIMIT
        if not 1 <= self.limit <= max_limit:
            raise ValueError(
                f"limit must be between 1 and {max_limit} for the {self.resolved_feed} feed, got {self.limit!r}"
            )

    def _v2_refusal(self) -> str | None:
        if self.device != "iphone":
            return f"device {self.device!r} (v2 serves iPhone charts only)"
        if self.chart not in V2_CHARTS:
            return f"chart {self.chart!r} (v2 serves {' and '.join(V2_CHARTS)} only)"
        if self.genre_id is not None:
            return f"genre {self.genre_id} (v2 has no genre filter)"
        if self.limit > V2_MAX_LIMIT:
            return f"limit {self.limit} (v2 serves at most {V2_MAX_LIMIT} entries)"
        return None

    @property
    def resolved_feed(self) -> str:
        """``v2`` or ``legacy``: the feed this request is sent to."""
        if self.feed != "auto":
            return self.feed
        return "v2" if self._v2_refusal() is None else "legacy"

    def label(self) -> str:
        genre = f"/genre={self.genre_id}" if self.genre_id is not None else ""
        return f"apple/{self.country}/{self.device}/{self.chart}{genre}"

    def url(self, v2_base_url: str = DEFAULT_V2_BASE_URL, legacy_base_url: str = DEFAULT_LEGACY_BASE_URL) -> str:
        if self.resolved_feed == "v2":
            return f"{v2_base_url.rstrip('/')}/api/v2/{self.country}/apps/{self.chart}/{self.limit}/apps.json"
        name = LEGACY_FEED_NAMES[(self.device, self.chart)]
        genre = f"/genre={self.genre_id}" if self.genre_id is not None else ""
        return f"{legacy_base_url.rstrip('/')}/{self.country}/rss/{name}/limit={self.limit}{genre}/json"

    @classmethod
    def from_url(cls, url: str) -> "FeedRequest | None":
        """The request a feed URL answers, or None when the URL is not a chart URL this module builds.

        Parsers use it to key a payload by the URL it names itself with (v2 ``feed.id``, legacy ``feed.id.label``).
        The host is ignored: Apple's payloads name internal hosts such as ``mzstoreservices-int-st``.
        """
        if not isinstance(url, str) or not url:
            return None
        path = urlsplit(url).path
        m = _V2_PATH.search(path)
        if m:
            try:
                return cls(m["cc"], m["chart"], "iphone", None, int(m["limit"]), feed="v2")
            except ValueError:
                return None
        m = _LEGACY_PATH.match(path)
        if m and m["feed"] in LEGACY_FEED_KEYS and m["cc"]:
            device, chart = LEGACY_FEED_KEYS[m["feed"]]
            params = dict(p.split("=", 1) for p in m["params"].split("/") if p)
            try:
                genre = int(params["genre"]) if params.get("genre") else None
                limit = int(params.get("limit") or 10)  # the legacy feed's own default
                return cls(m["cc"], chart, device, genre, limit, feed="legacy")
            except ValueError:
                return None
        return None


@dataclass
class FetchResult:
    """The outcome of fetching one ``FeedRequest`` (or, from ``play_feed.PlayFeedClient``, one ``PlayRequest``):
    the payload bytes, or the error that stopped it.

    ``content`` is only set for a 2xx answer: an error page is not a payload. ``fetched_at`` is the UTC time of
    the last attempt; ``attempts`` counts HTTP attempts including the first.
    """

    request: FeedRequest  # or a play.PlayRequest: both are plain dataclasses the payload store records
    url: str
    status: int | None
    content: bytes | None
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None
    fetched_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    attempts: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300 and self.content is not None


_RETRY_EXCEPTIONS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class AppleFeedClient:
    """HTTP client for both Apple chart feeds.

    Retries (``max_retries`` retries after the first attempt, exponential backoff from ``backoff_seconds``) on
    5xx, 429, connection errors and timeouts; a 429's ``Retry-After`` is honoured when it is at most
    ``max_retry_after`` seconds, and a longer one ends the retries (hammering a rate-limited feed only extends the
    ban). Other 4xx (a 404 for a chart Apple does not serve) are final. At most ``max_in_flight`` requests are on
    the wire at once across all threads using this client.

    Without a ``session`` each thread gets its own ``requests.Session`` (sessions are not documented as
    thread-safe); a given ``session`` is shared and then the caller vouches for it.
    """

    def __init__(
        self,
        v2_base_url: str = DEFAULT_V2_BASE_URL,
        legacy_base_url: str = DEFAULT_LEGACY_BASE_URL,
        timeout: float = 10.0,
        max_retries: int = 3,
        backoff_seconds: float = 0.5,
        max_in_flight: int = 4,
        session: requests.Session | None = None,
        *,
        max_retry_after: float = 30.0,
        user_agent: str = "chartlake/0.1 (+https://github.com/chartlake)",
    ):
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {max_retries}")
        self.v2_base_url = v2_base_url
        self.legacy_base_url = legacy_base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.max_in_flight = max_in_flight
        self.max_retry_after = max_retry_after
        self.user_agent = user_agent
        self._session = session
        self._local = threading.local()
        self._slots = threading.BoundedSemaphore(max_in_flight)

    def _get_session(self) -> requests.Session:
        if self._session is not None:
            return self._session
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
            s.headers["User-Agent"] = self.user_agent
        return s

    def url_for(self, request: FeedRequest) -> str:
        return request.url(self.v2_base_url, self.legacy_base_url)

    def fetch(self, request: FeedRequest) -> FetchResult:
        """Fetch one chart. Never raises for HTTP or network trouble: see ``FetchResult.error``."""
        url = self.url_for(request)
        attempts = 0
        while True:
            attempts += 1
            resp = None
            body = None
            exc: Exception | None = None
            limit = config.max_payload_bytes()
            with self._slots:
                try:
                    # stream: the body is read below within the payload size limit, never whole first.
                    resp = self._get_session().get(url, timeout=self.timeout, headers={"Accept": "application/json"},
                                                   stream=True)
                    body = _read_bounded(resp, limit) if 200 <= resp.status_code < 300 else None
                except _RETRY_EXCEPTIONS as e:
                    exc = e
                except requests.RequestException as e:  # invalid URL and the like: retrying cannot help
                    return FetchResult(request, url, None, None, attempts=attempts,
                                       error=f"request to {url} failed: {type(e).__name__}: {e}")
            fetched_at = dt.datetime.now(dt.timezone.utc)
            retries_left = attempts <= self.max_retries
            delay = self.backoff_seconds * (2 ** (attempts - 1))

            if exc is not None:
                kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                if retries_left:
                    time.sleep(delay)
                    continue
                detail = f" after {self.timeout}s" if isinstance(exc, requests.Timeout) else f": {exc}"
                return FetchResult(request, url, None, None, fetched_at=fetched_at, attempts=attempts,
                                   error=f"request to {url} {kind}{detail} ({attempts} attempts)")

            status = resp.status_code
            headers = resp.headers
            common = dict(etag=headers.get("ETag"), last_modified=headers.get("Last-Modified"),
                          content_type=headers.get("Content-Type"), fetched_at=fetched_at, attempts=attempts)
            if 200 <= status < 300:
                content, size = body
                if content is None:
                    return FetchResult(request, url, status, None, **common, error=(
                        f"refused {url}: {size:,} bytes or more, over the payload size limit of {limit:,} "
                        f"({config.MAX_PAYLOAD_BYTES_ENV})"))
                return FetchResult(request, url, status, content, **common)
            resp.close()  # an error page's body is not read

            reason = f"HTTP {status} {resp.reason or ''}".rstrip()
            if status == 429 or status >= 500:
                if status == 429 and "Retry-After" in headers:
                    wait = _retry_after_seconds(headers["Retry-After"])
                    if wait is None or wait > self.max_retry_after:
                        return FetchResult(request, url, status, None, **common, error=(
                            f"{reason} from {url}: Retry-After {headers['Retry-After']!r} is longer than "
                            f"{self.max_retry_after}s, not retried further ({attempts} attempts)"))
                    delay = max(delay, wait)
                if retries_left:
                    time.sleep(delay)
                    continue
                return FetchResult(request, url, status, None, **common,
                                   error=f"{reason} from {url} ({attempts} attempts)")
            return FetchResult(request, url, status, None, **common,
                               error=f"{reason} from {url} (not retried: a {status} does not go away on retry)")

    def fetch_many(self, requests: Iterable[FeedRequest]) -> list[FetchResult]:  # noqa: shadows the module here only
        """Fetch several charts on a pool of ``max_in_flight`` threads; results come back in input order."""
        return fetch_all(self.fetch, requests, max_in_flight=self.max_in_flight, thread_name_prefix="apple-feed")


def _retry_after_seconds(value: str) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date (RFC 9110); None when it is neither."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())


def _read_bounded(resp: requests.Response, limit: int) -> tuple[bytes | None, int]:
    """The body if it holds at most ``limit`` bytes (after any Content-Encoding), else (None, bytes seen)."""
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit and not resp.headers.get("Content-Encoding"):
        resp.close()
        return None, int(declared)
    chunks, size = [], 0
    for chunk in resp.iter_content(64 * 1024):
        size += len(chunk)
        if size > limit:
            resp.close()
            return None, size
        chunks.append(chunk)
    return b"".join(chunks), size
