"""The Google Play fetch as Dagster runs it: the raw asset with ``fetch_play`` and the ``play_schedule``.

End to end and offline: the real Node google-play-scraper (tests/play_helpers.ensure_fetcher) asks a local
batchexecute stand-in, its list() array is stored as the payload, and the chart lands in raw with store
google_play. A storefront whose answer is bad, or a machine without Node, is a failure naming the request, with
nothing stored, and never stops the other storefronts or the Apple fetch of the same run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import json
import threading

import dagster as dg
import pytest

from orchestration.defs.raw.assets import RawLoadConfig, raw_chart_entries
from orchestration.defs.raw.schedules import PLAY_FETCH_CRON_ENV, build_play_schedule, daily_job
from orchestration.defs.resources import AppleFeeds, ChartlakeHome, PlayFeeds
from orchestration.lib import lake
from orchestration.lib.payload_store import PayloadStore
from orchestration.sources.play import PlayRequest

play_schedule = build_play_schedule("45 6 * * *")
from orchestration.sources.play_feed import PlayFeedClient
from tests.conftest import v2_payload
from tests.play_helpers import US_TOP_FREE, PlayServer, ensure_fetcher

DAY = "2025-01-14"
JSON = "application/json; charset=utf-8"
UTC = dt.timezone.utc


def _materialize(home, *, play: PlayFeeds, apple: AppleFeeds | None = None, fetch=False, fetch_play=True):
    return dg.materialize(
        [raw_chart_entries], partition_key=DAY, raise_on_error=False,
        resources={"chartlake": ChartlakeHome(path=str(home.root)), "apple_feeds": apple or AppleFeeds(),
                   "play_feeds": play},
        run_config=dg.RunConfig({"raw__chart_entries": RawLoadConfig(fetch=fetch, fetch_play=fetch_play)}),
    )


def _stored_payloads(home) -> list[str]:
    return sorted(p.name.split(".")[0] for p in home.raw.glob("*/*.payload*"))


@pytest.fixture
def play_server():
    ensure_fetcher()
    server = PlayServer({
        ("us", "TOP_FREE"): (200, JSON, US_TOP_FREE.read_bytes()),
        ("fr", "TOP_FREE"): (200, "text/html; charset=utf-8", b"<!doctype html><html>Before you continue</html>"),
        ("gb", "TOP_FREE"): (500, "text/html", b"<html>Server Error</html>"),
    })
    yield server
    server.close()


def test_play_fetch_lands_google_play_rows_and_refuses_bad_answers(home, play_server):
    feeds = PlayFeeds(countries="us,fr,gb", charts="top-free", depth=200, base_url=play_server.url)
    res = _materialize(home, play=feeds)
    assert res.success  # one good storefront is enough for the day; the others are reported
    mat = res.asset_materializations_for_node("raw__chart_entries")[0]
    # us: 6 listed, TikTok's repeat recorded and dropped; fr and gb: only their failed charts.
    assert mat.metadata["countries"].value == {"us": 5, "fr": 0, "gb": 0}
    assert sorted(mat.metadata["failed_countries"].value) == ["fr", "gb"]
    errors = {f["country"]: f["error"] for f in mat.metadata["failures"].value}
    assert errors["fr"].startswith("Google Play google_play/fr/android/top-free (google-play-scraper@10.1.3:list?")
    assert "not the batchexecute format" in errors["fr"]
    assert "google_play/gb/android/top-free" in errors["gb"] and "HTTP 500" in errors["gb"]
    assert {s.query["gl"] for s in play_server.seen} == {"us", "fr", "gb"}

    source_url = PlayFeedClient(base_url=play_server.url).source_url(PlayRequest("us", "top-free", limit=200))
    with lake.session(home, read_only=True) as con:
        rows = con.execute("""select store, country, device, chart, genre_id, chart_date, rank, app_id, app_name,
                                     currency, source_format, source_url, payload_sha256
                              from raw.chart_entries order by rank""").fetchall()
        repeats = con.execute("select position, app_id, first_rank from raw.chart_repeats").fetchall()
        failed = con.execute("""select store, country, device, chart, http_status, payload_sha256 from raw.payloads
                                where status = 'failed' order by country""").fetchall()
    assert [(r[6], r[7]) for r in rows] == [(1, "com.xingin.xhs"), (2, "com.zhiliaoapp.musically"),
                                            (3, "com.bd.nproject"), (4, "com.openai.chatgpt"),
                                            (6, "com.einnovation.temu")]
    assert {r[:6] for r in rows} == {("google_play", "us", "android", "top-free", None, dt.date(2025, 1, 14))}
    assert {(r[9], r[10], r[11]) for r in rows} == {("USD", "google-play-list", source_url)}
    assert repeats == [(5, "com.zhiliaoapp.musically", 2)]
    # The failures are registered under Play's chart key, with the HTTP status seen, and no payload.
    assert failed == [("google_play", "fr", "android", "top-free", 200, None),
                      ("google_play", "gb", "android", "top-free", 500, None)]
    # Only the good answer was stored: the list() array itself, byte for byte what the payload hash names.
    (sha,) = {r[12] for r in rows}
    assert _stored_payloads(home) == [sha]
    stored = PayloadStore(home.raw).get(sha)
    assert hashlib.sha256(stored).hexdigest() == sha
    assert [a["appId"] for a in json.loads(stored)][:2] == ["com.xingin.xhs", "com.zhiliaoapp.musically"]


class _AppleServer:
    def __init__(self, routes: dict[str, bytes]):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                body = routes.get(self.path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = "http://%s:%d" % self._server.server_address[:2]

    def close(self):
        self._server.shutdown()
        self._server.server_close()


def test_a_play_fetch_that_cannot_run_never_stops_the_apple_fetch(home, tmp_path):
    apple = _AppleServer({"/api/v2/us/apps/top-free/3/apps.json": v2_payload(
        "us", "top-free", [("741292507", "REDnote"), ("835599320", "TikTok"), ("389801252", "Instagram")],
        updated=f"{DAY}T08:00:00Z")})
    try:
        res = _materialize(
            home, fetch=True,
            apple=AppleFeeds(countries="us", charts="iphone:top-free", depth=3, v2_base_url=apple.url,
                             legacy_base_url=apple.url),
            play=PlayFeeds(countries="us,fr", charts="top-free", node=str(tmp_path / "no-node-here")))
    finally:
        apple.close()
    assert res.success
    mat = res.asset_materializations_for_node("raw__chart_entries")[0]
    assert mat.metadata["countries"].value == {"us": 3, "fr": 0}  # fr: only its failed Play chart
    errors = sorted(f["error"] for f in mat.metadata["failures"].value)
    assert len(errors) == 2 and all("Node.js was not found" in e for e in errors)
    assert "google_play/fr/android/top-free" in errors[0] and "google_play/us/android/top-free" in errors[1]
    with lake.session(home, read_only=True) as con:
        assert con.execute("select store, count(*) from raw.chart_entries group by store").fetchall() == [("apple", 3)]
    assert len(_stored_payloads(home)) == 1  # Apple's payload only


def test_play_schedule_is_stopped_by_default_and_requests_fetch_play():
    assert play_schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert play_schedule.job_name == daily_job.name
    feeds = PlayFeeds(countries="us,fr", charts="top-free,top-grossing")
    ctx = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2025, 1, 14, 6, 45, tzinfo=UTC),
                                    resources={"play_feeds": feeds})
    req = play_schedule(ctx)
    assert isinstance(req, dg.RunRequest)
    assert (req.partition_key, req.run_key) == ("2025-01-14", "play:2025-01-14")
    assert req.run_config == {"ops": {"raw__chart_entries": {"config": {"fetch_play": True}}}}
    assert req.tags["chartlake/store"] == "google_play" and req.tags["chartlake/countries"] == "us,fr"
    # The config is one the daily job accepts as it is.
    from orchestration.definitions import defs

    assert dg.validate_run_config(defs.resolve_job_def("daily_job"), req.run_config)

    empty = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2025, 1, 14, 6, 45, tzinfo=UTC),
                                      resources={"play_feeds": PlayFeeds(countries=" , ")})
    assert isinstance(play_schedule(empty), dg.SkipReason)


def test_play_schedule_cron_comes_from_its_own_variable(monkeypatch):
    monkeypatch.delenv(PLAY_FETCH_CRON_ENV, raising=False)
    assert build_play_schedule().cron_schedule == "45 6 * * *"
    monkeypatch.setenv(PLAY_FETCH_CRON_ENV, "0 9 * * *")
    assert build_play_schedule().cron_schedule == "0 9 * * *"
    monkeypatch.setenv(PLAY_FETCH_CRON_ENV, "every morning")
    with pytest.raises(ValueError, match=rf"{PLAY_FETCH_CRON_ENV}='every morning' is not a valid cron"):
        build_play_schedule()


def test_play_feeds_builds_android_requests():
    feeds = PlayFeeds(countries="US, fr", charts="top-free, android:top-grossing", depth=500, lang="fr")
    assert feeds.requests() == [PlayRequest(c, chart, limit=200, lang="fr") for c in ("us", "fr")
                                for chart in ("top-free", "top-grossing")]
    with pytest.raises(ValueError, match="android charts"):
        PlayFeeds(charts="iphone:top-free").requests()
