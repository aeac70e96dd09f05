"""FeedRequest and AppleFeedClient against a local HTTP server on 127.0.0.1 (never the network)."""

from __future__ import annotations

import dataclasses
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from orchestration.sources.feeds import AppleFeedClient, FeedRequest


# --- FeedRequest ----------------------------------------------------------------------------------------------


def test_auto_picks_v2_when_it_can_serve_the_chart():
    r = FeedRequest("us", "top-free", limit=50)
    assert r.resolved_feed == "v2"
    assert r.url() == "https://rss.applemarketingtools.com/api/v2/us/apps/top-free/50/apps.json"
    assert r.url("http://x:1/", "http://y:2") == "http://x:1/api/v2/us/apps/top-free/50/apps.json"


@pytest.mark.parametrize(
    "request_, url",
    [
        (FeedRequest("us", "top-grossing"), "https://itunes.apple.com/us/rss/topgrossingapplications/limit=100/json"),
        (FeedRequest("fr", "top-free", device="ipad", limit=25),
         "https://itunes.apple.com/fr/rss/topfreeipadapplications/limit=25/json"),
        (FeedRequest("jp", "top-paid", genre_id=6014), "https://itunes.apple.com/jp/rss/toppaidapplications/limit=100/genre=6014/json"),
        (FeedRequest("us", "top-free", limit=200), "https://itunes.apple.com/us/rss/topfreeapplications/limit=200/json"),
        (FeedRequest("gb", "top-grossing", device="ipad", genre_id=6015, limit=10),
         "https://itunes.apple.com/gb/rss/topgrossingipadapplications/limit=10/genre=6015/json"),
        (FeedRequest("us", "top-free", feed="legacy"), "https://itunes.apple.com/us/rss/topfreeapplications/limit=100/json"),
    ],
)
def test_auto_falls_back_to_legacy_feed(request_, url):
    assert request_.resolved_feed == "legacy"
    assert request_.url() == url
    # The URL names the request it answers, which is how parsers key a payload.
    assert FeedRequest.from_url(url) == dataclasses.replace(request_, feed="legacy")


@pytest.mark.parametrize(
    "kwargs, bad",
    [
        (dict(country="US", chart="top-free"), "'US'"),
        (dict(country="usa", chart="top-free"), "'usa'"),
        (dict(country="us", chart="top-new"), "'top-new'"),
        (dict(country="us", chart="top-free", device="watch"), "'watch'"),
        (dict(country="us", chart="top-free", limit=0), "0"),
        (dict(country="us", chart="top-free", limit=201), "201"),
        (dict(country="us", chart="top-free", limit=101, feed="v2"), "limit 101"),
        (dict(country="us", chart="top-grossing", feed="v2"), "'top-grossing'"),
        (dict(country="us", chart="top-free", device="ipad", feed="v2"), "'ipad'"),
        (dict(country="us", chart="top-free", genre_id=6014, feed="v2"), "genre 6014"),
        (dict(country="us", chart="top-free", feed="v3"), "'v3'"),
        (dict(country="us", chart="top-free", genre_id=-1), "-1"),
    ],
)
def test_invalid_requests_name_the_bad_value(kwargs, bad):
    with pytest.raises(ValueError) as exc:
        FeedRequest(**kwargs)
    assert bad in str(exc.value)


def test_request_round_trips_through_asdict():
    r = FeedRequest("jp", "top-grossing", "ipad", 6014, 150)
    assert FeedRequest(**dataclasses.asdict(r)) == r


def test_from_url_ignores_host_and_rejects_other_urls():
    assert FeedRequest.from_url(
        "https://mzstoreservices-int-st.itunes.apple.com/us/rss/topfreeapplications/limit=10/json"
    ) == FeedRequest("us", "top-free", limit=10, feed="legacy")
    assert FeedRequest.from_url("https://rss.applemarketingtools.com/api/v2/cn/apps/topfreeapplications/100/apps.json") is None
    assert FeedRequest.from_url("https://example.com/whatever") is None
    assert FeedRequest.from_url("") is None


# --- a scripted local server ----------------------------------------------------------------------------------


class _Server:
    """Answers each path from a script: a list of (status, headers, body, sleep) consumed one per hit."""

    def __init__(self):
        self.scripts: dict[str, list[tuple]] = {}
        self.hits: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.default_sleep = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with outer.lock:
                    outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                    script = outer.scripts.get(self.path)
                    step = (script.pop(0) if len(script) > 1 else script[0]) if script else None
                try:
                    if step is None:
                        step = (200, {}, f'{{"path": "{self.path}"}}'.encode(), outer.default_sleep)
                    status, headers, body, sleep = step
                    if sleep:
                        time.sleep(sleep)
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)
                finally:
                    with outer.lock:
                        outer.in_flight -= 1

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def client(self, **kw) -> AppleFeedClient:
        kw.setdefault("backoff_seconds", 0.01)
        kw.setdefault("timeout", 2.0)
        return AppleFeedClient(v2_base_url=self.base, legacy_base_url=self.base, **kw)


@pytest.fixture
def server():
    s = _Server()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


US_FREE = FeedRequest("us", "top-free", limit=10)
US_FREE_PATH = "/api/v2/us/apps/top-free/10/apps.json"


def test_200_with_etag_and_last_modified(server):
    server.scripts[US_FREE_PATH] = [(200, {"ETag": '"abc123"', "Last-Modified": "Tue, 14 Jan 2025 17:05:11 GMT",
                                           "Content-Type": "application/json"}, b'{"feed": {"results": []}}', 0)]
    res = server.client().fetch(US_FREE)
    assert res.ok and res.error is None
    assert res.status == 200 and res.attempts == 1
    assert res.content == b'{"feed": {"results": []}}'
    assert res.etag == '"abc123"' and res.last_modified == "Tue, 14 Jan 2025 17:05:11 GMT"
    assert res.content_type == "application/json"
    assert res.url == server.base + US_FREE_PATH
    assert res.fetched_at.tzinfo is not None and res.fetched_at.utcoffset().total_seconds() == 0


def test_500_then_200_is_retried(server):
    server.scripts[US_FREE_PATH] = [(500, {}, b"oops", 0), (500, {}, b"oops", 0), (200, {}, b"{}", 0)]
    res = server.client(max_retries=3).fetch(US_FREE)
    assert res.ok and res.status == 200 and res.attempts == 3
    assert server.hits[US_FREE_PATH] == 3


def test_persistent_500_gives_up_with_url_and_status(server):
    server.scripts[US_FREE_PATH] = [(503, {}, b"down", 0)]
    res = server.client(max_retries=2).fetch(US_FREE)
    assert not res.ok and res.content is None and res.status == 503
    assert res.attempts == 3 and server.hits[US_FREE_PATH] == 3
    assert "503" in res.error and US_FREE_PATH in res.error


def test_429_honours_a_small_retry_after(server):
    server.scripts[US_FREE_PATH] = [(429, {"Retry-After": "1"}, b"slow down", 0), (200, {}, b"{}", 0)]
    start = time.monotonic()
    res = server.client().fetch(US_FREE)
    assert res.ok and res.attempts == 2
    assert time.monotonic() - start >= 0.9  # waited as told, not the 0.01 s backoff


def test_429_with_a_long_retry_after_stops(server):
    server.scripts[US_FREE_PATH] = [(429, {"Retry-After": "3600"}, b"slow down", 0)]
    res = server.client(max_retry_after=5).fetch(US_FREE)
    assert not res.ok and res.status == 429 and res.attempts == 1
    assert "Retry-After" in res.error and US_FREE_PATH in res.error


def test_404_is_not_retried(server):
    path = "/us/rss/topgrossingapplications/limit=10/json"
    server.scripts[path] = [(404, {}, b"not found", 0)]
    res = server.client(max_retries=3).fetch(FeedRequest("us", "top-grossing", limit=10))
    assert not res.ok and res.status == 404 and res.content is None
    assert res.attempts == 1 and server.hits[path] == 1
    assert "404" in res.error and path in res.error


def test_timeout_is_retried_then_reported(server):
    server.scripts[US_FREE_PATH] = [(200, {}, b"{}", 0.6)]
    res = server.client(timeout=0.15, max_retries=1).fetch(US_FREE)
    assert not res.ok and res.status is None and res.content is None
    assert res.attempts == 2
    assert "timed out" in res.error and US_FREE_PATH in res.error


def test_connection_refused_is_reported_not_raised():
    client = AppleFeedClient(v2_base_url="http://127.0.0.1:9", legacy_base_url="http://127.0.0.1:9",
                             timeout=0.5, max_retries=1, backoff_seconds=0.01)
    res = client.fetch(US_FREE)
    assert not res.ok and res.attempts == 2 and "127.0.0.1:9" in res.error


def test_fetch_many_bounds_concurrency_and_keeps_order(server):
    server.default_sleep = 0.1
    reqs = [FeedRequest(cc, "top-free", limit=n) for cc in ("us", "fr", "jp", "cn") for n in (5, 10, 20)]
    results = server.client(max_in_flight=3).fetch_many(reqs)
    assert [r.request for r in results] == reqs
    for req, res in zip(reqs, results):
        assert res.ok
        assert res.content == f'{{"path": "/api/v2/{req.country}/apps/top-free/{req.limit}/apps.json"}}'.encode()
    assert server.max_in_flight <= 3
    assert server.max_in_flight >= 2  # it did run in parallel


def test_max_in_flight_also_bounds_callers_on_their_own_threads(server):
    server.default_sleep = 0.1
    client = server.client(max_in_flight=2)
    reqs = [FeedRequest("us", "top-free", limit=n) for n in range(1, 7)]
    threads = [threading.Thread(target=client.fetch, args=(r,)) for r in reqs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= server.max_in_flight <= 2
    assert sum(server.hits.values()) == 6


def test_a_response_over_the_payload_size_limit_is_refused_unread(server, monkeypatch):
    monkeypatch.setenv("CHARTLAKE_MAX_PAYLOAD_BYTES", "1000")
    req = US_FREE
    client = server.client()
    server.scripts[US_FREE_PATH] = [(200, {}, b"[" + b" " * 5000 + b"]", 0)]
    result = client.fetch(req)
    assert result.content is None and not result.ok
    assert "over the payload size limit of 1,000 (CHARTLAKE_MAX_PAYLOAD_BYTES)" in result.error
    monkeypatch.setenv("CHARTLAKE_MAX_PAYLOAD_BYTES", "10000")
    assert client.fetch(req).content == b"[" + b" " * 5000 + b"]"
