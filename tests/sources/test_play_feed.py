"""The Google Play fetch client: the real Node google-play-scraper against a local batchexecute stand-in.

No network: the library's request goes to 127.0.0.1 through list.js's CHARTLAKE_PLAY_BASE_URL hook. The answer is
the constructed fixture in tests/fixtures/play_batchexecute (its README says how it was built).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import stat

import pytest

from orchestration.sources import play_feed
from orchestration.sources.parsers import parse_payload
from orchestration.sources.play import PLAY_CATEGORY_IDS, PlayRequest
from orchestration.sources.play_feed import SCRAPER_VERSION, PlayFeedClient
from tests.play_helpers import US_TOP_FREE, PlayServer, ensure_fetcher, fixture_apps

US = PlayRequest("us", "top-free", limit=200)
JSON = "application/json; charset=utf-8"


@pytest.fixture(scope="module")
def fetcher():
    return ensure_fetcher()


@pytest.fixture
def server():
    s = PlayServer({("us", "TOP_FREE"): (200, JSON, US_TOP_FREE.read_bytes())})
    yield s
    s.close()


def _client(server, **kw) -> PlayFeedClient:
    return PlayFeedClient(base_url=server.url, **kw)


def test_the_pin_is_the_one_the_lock_file_installs():
    package = json.loads((play_feed.FETCHER_DIR / "package.json").read_text())
    lock = json.loads((play_feed.FETCHER_DIR / "package-lock.json").read_text())
    assert package["dependencies"] == {"google-play-scraper": SCRAPER_VERSION}  # exact, no range
    assert lock["packages"]["node_modules/google-play-scraper"]["version"] == SCRAPER_VERSION
    assert lock["packages"][""]["dependencies"] == {"google-play-scraper": SCRAPER_VERSION}


def test_the_request_is_named_by_the_library_call():
    client = PlayFeedClient()
    assert client.source_url(US) == "google-play-scraper@10.1.3:list?collection=TOP_FREE&country=us&lang=en&num=200"
    social = PlayRequest("fr", "top-grossing", genre_id=PLAY_CATEGORY_IDS["SOCIAL"], limit=50, lang="fr")
    assert client.source_url(social) == (
        "google-play-scraper@10.1.3:list?collection=GROSSING&category=SOCIAL&country=fr&lang=fr&num=50")
    assert client.command(social)[2:] == ["--collection", "GROSSING", "--country", "fr", "--lang", "fr", "--num",
                                          "50", "--timeout-ms", "30000", "--category", "SOCIAL"]
    # A payload fetched from a stand-in says so in its lineage.
    assert PlayFeedClient(base_url="http://127.0.0.1:9").source_url(US).endswith("&base_url=http%3A%2F%2F127.0.0.1%3A9")


def test_play_requests_refuse_what_list_cannot_ask():
    with pytest.raises(ValueError, match="overall chart"):
        PlayRequest("us", "top-free", genre_id=PLAY_CATEGORY_IDS["APPLICATION"])
    with pytest.raises(ValueError, match="not a Play category id"):
        PlayRequest("us", "top-free", genre_id=6014)  # an Apple genre
    with pytest.raises(ValueError, match="lang"):
        PlayRequest("us", "top-free", lang="English")
    with pytest.raises(ValueError, match="limit"):
        PlayRequest("us", "top-free", limit=201)


def test_fetch_runs_the_real_library_against_the_local_server(fetcher, server):
    res = _client(server).fetch(US)
    assert res.ok, res.error
    assert res.status == 200 and res.content_type == JSON and res.attempts == 1
    assert res.url == play_feed.PlayFeedClient(base_url=server.url).source_url(US)
    # What the library sent: its own POST to batchexecute, the storefront in the query, the chart in the body.
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("POST", "/_/PlayStoreUi/data/batchexecute")
    assert (seen.query["gl"], seen.query["hl"], seen.query["rpcids"]) == ("us", "en", "vyAe2")
    assert (seen.collection, seen.num) == ("TOP_FREE", 200)
    # The payload is the list() array exactly, in the fixture's order, repeat included (ingest records it).
    doc = json.loads(res.content)
    assert [(a["appId"], a["title"]) for a in doc] == [(a["appId"], a["title"]) for a in fixture_apps()]
    assert doc[0] == {
        "title": "REDnote", "appId": "com.xingin.xhs", "url": "https://play.google.com/store/apps/details?id=com.xingin.xhs",
        "icon": "https://play-lh.googleusercontent.com/com-xingin-xhs",
        "developer": "Xingin Information Technology (Shanghai) Co., Ltd.", "currency": "USD", "price": 0,
        "free": True, "summary": "Lifestyle sharing community", "scoreText": "4.6", "score": 4.6123}
    (chart,) = parse_payload(res.content, source=res.url, sha256="x", chart_date=dt.date(2025, 1, 14),
                            request=US)
    assert chart.key.store == "google_play" and chart.key.device == "android"
    assert [e["rank"] for e in chart.entries] == [1, 2, 3, 4, 6]
    assert chart.repeats == [{"position": 5, "app_id": "com.zhiliaoapp.musically", "first_rank": 2}]
    assert {e["currency"] for e in chart.entries} == {"USD"}


@pytest.mark.parametrize("answer, kind", [
    ((200, "text/html", b"<!doctype html><html><body>Before you continue to Google</body></html>"),
     "not the batchexecute format"),
    ((200, JSON, US_TOP_FREE.read_bytes()[:900]), "not the batchexecute format"),  # cut mid-line
    ((500, "text/html", b"<html>Server Error</html>"), "the request failed (HTTP 500)"),
    ((429, "text/html", b"<html>Too Many Requests</html>"), "the request failed (HTTP 429)"),
])
def test_a_bad_answer_is_an_error_naming_the_request_with_no_payload(fetcher, server, answer, kind):
    server.routes[("us", "TOP_FREE")] = answer
    res = _client(server).fetch(US)
    assert not res.ok and res.content is None
    assert res.error.startswith("Google Play google_play/us/android/top-free (google-play-scraper@10.1.3:list?"
                                "collection=TOP_FREE&country=us&lang=en&num=200")
    assert kind in res.error
    assert res.status == answer[0]


def test_an_unreachable_endpoint_and_a_timeout_are_errors(fetcher, server):
    server.hang = True
    res = _client(server, timeout=0.5).fetch(US)
    assert not res.ok and res.content is None
    assert "the request failed" in res.error and "Timeout awaiting 'request' for 500ms" in res.error

    closed = PlayServer()
    url = closed.url
    closed.close()
    res = PlayFeedClient(base_url=url).fetch(US)
    assert not res.ok and "the request failed" in res.error and "ECONNREFUSED" in res.error


def test_one_failed_chart_leaves_the_others_alone(fetcher, server):
    server.routes[("fr", "TOP_FREE")] = (500, "text/html", b"oops")
    fr = PlayRequest("fr", "top-free", limit=200)
    us, bad = _client(server, max_in_flight=2).fetch_many([US, fr])
    assert us.ok and json.loads(us.content)[0]["appId"] == "com.xingin.xhs"
    assert not bad.ok and "google_play/fr/android/top-free" in bad.error and "HTTP 500" in bad.error


def _fake_fetcher(tmp_path, script: str, version: str = SCRAPER_VERSION):
    """A fetcher folder whose list.js is ``script``: what the client does with output list.js should never give."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "list.js").write_text(script)
    pkg = tmp_path / "node_modules" / "google-play-scraper"
    pkg.mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps({"name": "google-play-scraper", "version": version}))
    return tmp_path


@pytest.mark.parametrize("printed, why", [
    ('{"apps": []}', "printed a JSON dict, not the list() JSON array"),
    ("[]", "an empty array"),
    ("[1, 2]", "element [0] is a int"),
    ("not json", "that are not JSON"),
])
def test_output_that_is_not_a_list_array_is_refused(tmp_path, printed, why):
    if not _has_node():
        pytest.skip("node not on PATH")
    script = (f"process.stdout.write({json.dumps(printed)});"
              "process.stderr.write('chartlake-play-result ' + JSON.stringify({status: 200}) + '\\n');")
    res = PlayFeedClient(fetcher_dir=_fake_fetcher(tmp_path, script)).fetch(US)
    assert not res.ok and res.content is None
    assert "google_play/us/android/top-free" in res.error and why in res.error


def test_node_missing_or_packages_not_installed_is_an_error_with_the_fix(tmp_path):
    installed = _fake_fetcher(tmp_path / "installed", "")
    res = PlayFeedClient(fetcher_dir=installed, node=str(tmp_path / "no-such-node")).fetch(US)
    assert not res.ok and res.content is None
    assert "google_play/us/android/top-free" in res.error and "Node.js was not found" in res.error

    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "list.js").write_text("")
    res = PlayFeedClient(fetcher_dir=bare).fetch(US)
    assert "google-play-scraper is not installed" in res.error and "make play-setup" in res.error

    other = _fake_fetcher(tmp_path / "other", "", version="10.0.0")
    res = PlayFeedClient(fetcher_dir=other).fetch(US)
    assert "google-play-scraper 10.0.0 is installed, chartlake pins 10.1.3" in res.error


def test_a_node_that_cannot_run_is_an_error(tmp_path):
    node = tmp_path / "node"
    node.write_text("not executable")
    node.chmod(stat.S_IRUSR)
    res = PlayFeedClient(fetcher_dir=_fake_fetcher(tmp_path / "f", ""), node=str(node)).fetch(US)
    assert not res.ok and "cannot run" in res.error


def _has_node() -> bool:
    return shutil.which("node") is not None
