"""Parsers over the recorded payloads in tests/fixtures/payloads (good and bad ones)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from pathlib import Path

import pytest

from orchestration.sources.canonical import ENTRY_FIELDS, PayloadError
from orchestration.sources.feeds import FeedRequest
from orchestration.sources.parsers import detect_format, parse_payload

PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"


def load(name: str) -> tuple[bytes, str, str]:
    path = PAYLOADS / name
    content = path.read_bytes()
    return content, str(path), hashlib.sha256(content).hexdigest()


def parse_one(name: str, **kw):
    content, source, sha = load(name)
    charts = parse_payload(content, source=source, sha256=sha, **kw)
    assert len(charts) == 1
    return charts[0]


def assert_well_formed(chart, n: int):
    assert len(chart.entries) == n
    assert [e["rank"] for e in chart.entries] == list(range(1, n + 1))
    for e in chart.entries:
        assert tuple(e) == ENTRY_FIELDS
        assert e["app_id"].isdigit() and isinstance(e["app_name"], str) and e["app_name"]
        assert e["price"] is None or isinstance(e["price"], Decimal)
        assert e["release_date"] is None or type(e["release_date"]) is dt.date


# --- good payloads --------------------------------------------------------------------------------------------


def test_apple_v2():
    content, source, _ = load("apple_v2_us_top_free_2025-01-14.json")
    assert detect_format(content, source) == "apple-rss-v2"
    chart = parse_one("apple_v2_us_top_free_2025-01-14.json")
    assert chart.source_format == "apple-rss-v2"
    assert chart.key.label() == "apple/us/iphone/top-free/2025-01-14"  # from feed.updated (UTC)
    assert_well_formed(chart, 8)
    first = chart.entries[0]
    assert first["app_id"] == "741292507" and first["app_name"] == "RedNote"
    assert first["developer_name"] == "Xingin Information Technology (Shanghai) Co., Ltd."
    assert first["genre_name"] is None  # genres: []
    assert first["release_date"] == dt.date(2014, 12, 5)
    assert first["price"] is None and first["currency"] is None
    assert first["url"] == "https://apps.apple.com/us/app/rednote/id741292507"
    assert chart.entries[2]["genre_name"] == "Entertainment"
    # rank is list order: the payload's order is the chart
    raw = json.loads(content)["feed"]["results"]
    assert [e["app_id"] for e in chart.entries] == [r["id"] for r in raw]


def test_legacy_iphone_top_free():
    chart = parse_one("itunes_legacy_us_top_free_2025-01-14.json")
    assert chart.source_format == "itunes-rss-legacy"
    assert chart.key.label() == "apple/us/iphone/top-free/2025-01-14"
    assert_well_formed(chart, 6)
    e = chart.entries[0]
    assert e == {
        "rank": 1, "app_id": "741292507", "app_name": "RedNote",
        "developer_name": "Xingin Information Technology (Shanghai) Co., Ltd.", "developer_id": "741292510",
        "genre_name": "Social Networking", "release_date": dt.date(2014, 12, 5), "price": Decimal("0"),
        "currency": "USD", "url": "https://apps.apple.com/us/app/rednote/id741292507?uo=2",
    }
    # link as an object (entry 2) and as a list with an enclosure (entry 1) both give the app page
    assert chart.entries[1]["url"].endswith("/id1498607143?uo=2")


def test_legacy_ipad_top_grossing_with_genre():
    chart = parse_one("itunes_legacy_us_ipad_top_grossing_genre_6014_2025-01-14.json")
    assert (chart.key.device, chart.key.chart, chart.key.genre_id) == ("ipad", "top-grossing", 6014)
    assert_well_formed(chart, 5)
    assert chart.entries[1]["price"] == Decimal("6.99") and chart.entries[1]["currency"] == "USD"
    assert {e["genre_name"] for e in chart.entries} == {"Games"}


def test_legacy_single_entry_is_an_object():
    content, source, _ = load("itunes_legacy_fr_top_paid_single_entry_2025-01-14.json")
    assert isinstance(json.loads(content)["feed"]["entry"], dict)
    chart = parse_one("itunes_legacy_fr_top_paid_single_entry_2025-01-14.json")
    assert chart.key.label() == "apple/fr/iphone/top-paid/2025-01-14"
    assert_well_formed(chart, 1)
    assert chart.entries[0]["price"] == Decimal("6.99") and chart.entries[0]["currency"] == "EUR"
    assert chart.entries[0]["genre_name"] == "Graphisme et design"


def test_chart_date_argument_wins_over_payload():
    chart = parse_one("apple_v2_us_top_free_2025-01-14.json", chart_date=dt.date(2025, 1, 15))
    assert chart.key.chart_date == dt.date(2025, 1, 15)


def test_date_falls_back_to_file_name_then_fails():
    content, _, _ = load("apple_v2_us_top_free_2025-01-14.json")
    doc = json.loads(content)
    del doc["feed"]["updated"]
    undated = json.dumps(doc).encode()
    [chart] = parse_payload(undated, source="/x/us-2025-01-13.json")
    assert chart.key.chart_date == dt.date(2025, 1, 13)
    with pytest.raises(PayloadError, match="no chart date") as exc:
        parse_payload(undated, source="/x/us.json", sha256="f" * 64)
    assert "/x/us.json" in str(exc.value) and "f" * 64 in str(exc.value)


def test_request_fills_and_must_agree():
    content, source, sha = load("apple_v2_us_top_free_2025-01-14.json")
    ok = FeedRequest("us", "top-free", limit=8)
    assert parse_payload(content, source=source, request=ok)[0].key.country == "us"
    for wrong, word in ((FeedRequest("fr", "top-free"), "country 'us'"),
                        (FeedRequest("us", "top-paid"), "chart 'top-free'"),
                        (FeedRequest("us", "top-free", device="ipad"), "device 'iphone'")):
        with pytest.raises(PayloadError, match=word):
            parse_payload(content, source=source, sha256=sha, request=wrong)


def test_legacy_without_feed_url_is_keyed_by_request():
    content, source, _ = load("itunes_legacy_us_ipad_top_grossing_genre_6014_2025-01-14.json")
    doc = json.loads(content)
    del doc["feed"]["id"], doc["feed"]["link"]
    bare = json.dumps(doc).encode()
    with pytest.raises(PayloadError, match="cannot tell the country"):
        parse_payload(bare, source=source)
    req = FeedRequest("us", "top-grossing", "ipad", 6014, 5)
    [chart] = parse_payload(bare, source=source, request=req)
    assert chart.key.label() == "apple/us/ipad/top-grossing/genre=6014/2025-01-14"


def test_simulated_marker_suffixes_source_format():
    for name, base in (("apple_v2_us_top_free_2025-01-14.json", "apple-rss-v2"),
                       ("itunes_legacy_us_top_free_2025-01-14.json", "itunes-rss-legacy")):
        content, source, _ = load(name)
        doc = json.loads(content)
        doc["chartlake"] = {"simulated": True, "generator": "demo", "seed": 7}
        marked = json.dumps(doc).encode()
        assert detect_format(marked, source) == f"{base}-simulated"
        assert parse_payload(marked, source=source)[0].source_format == f"{base}-simulated"
        doc["chartlake"] = {"simulated": False}
        assert parse_payload(json.dumps(doc).encode(), source=source)[0].source_format == base


def test_names_are_kept_as_given():
    content, source, _ = load("apple_v2_us_top_free_2025-01-14.json")
    doc = json.loads(content)
    doc["feed"]["results"][0]["name"] = "  小红书 – 你的生活兴趣社区\u3000"
    [chart] = parse_payload(json.dumps(doc, ensure_ascii=False).encode(), source=source)
    assert chart.entries[0]["app_name"] == "  小红书 – 你的生活兴趣社区\u3000"


# --- bad payloads ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, message",
    [
        ("bad_html_instead_of_json.json", "an HTML page instead of JSON"),
        ("bad_truncated_v2.json", "truncated JSON"),
        ("bad_empty_chart_v2.json", "empty chart apple/us/iphone/top-free/2025-01-14"),
        ("bad_empty_chart_legacy.json", "empty chart apple/fr/iphone/top-free/2025-01-14"),
        ("bad_duplicate_ranks_archive.json", "duplicate rank 7 in apple/us/iphone/top-free/genre=6000/2025-01-14"),
        ("bad_missing_id_legacy.json", "entry at rank 3 has no app id in apple/us/iphone/top-free/2025-01-14"),
    ],
)
def test_bad_payloads_raise_naming_source_and_hash(name, message):
    content, source, sha = load(name)
    with pytest.raises(PayloadError) as exc:
        parse_payload(content, source=source, sha256=sha)
    text = str(exc.value)
    assert message in text
    assert f"source={source}" in text and f"payload_sha256={sha}" in text
    assert exc.value.source == source and exc.value.sha256 == sha


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty payload"),
        (b'{"feed": {"results": [', "truncated JSON"),
        (b'{"feed": {"results": [}]}}', "invalid JSON"),
        (b'{"status": "ok", "data": []}', "unknown layout: a JSON object with keys ['data', 'status']; expected"),
        (b'{"feed": {"title": "x"}}', "unknown layout: a 'feed' object"),
        (b"[1, 2]", "unknown layout: a JSON array of int"),
        (b"[]", "empty chart"),
        (b'"just a string"', "unknown layout"),
        (b"<?xml version='1.0'?><feed/>", "XML/HTML markup instead of JSON"),
        (b"\xff\xfe{", "not UTF-8"),
    ],
)
def test_garbage_is_named(content, message):
    with pytest.raises(PayloadError) as exc:
        detect_format(content, "https://example.test/feed.json", sha256="abc")
    assert message in str(exc.value) and "https://example.test/feed.json" in str(exc.value)


def _v2_with(mutate) -> bytes:
    doc = json.loads((PAYLOADS / "apple_v2_us_top_free_2025-01-14.json").read_bytes())
    mutate(doc["feed"]["results"])
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda rs: rs[3].update(id="64483110x9"), "malformed app id '64483110x9' at rank 4 in apple/us/iphone/top-free/2025-01-14"),
        (lambda rs: rs[3].update(id="06448311069"), "malformed app id '06448311069' at rank 4 in apple/us/iphone/top-free/2025-01-14"),
        (lambda rs: rs[4].pop("id"), "entry at rank 5 has no app id in apple/us/iphone/top-free/2025-01-14"),
        (lambda rs: rs[1].update(name=""), "entry at rank 2 (app 1498607143) has no name in apple/us/iphone/top-free/2025-01-14"),
        (lambda rs: rs[1].pop("name"), "entry at rank 2 (app 1498607143) has no name in apple/us/iphone/top-free/2025-01-14"),
        (lambda rs: rs[0].update(releaseDate="soon"), "release date 'soon' at rank 1"),
        (lambda rs: rs.append("oops"), "feed.results[8] is a str"),
    ],
)
def test_bad_entries_are_named(mutate, message):
    with pytest.raises(PayloadError) as exc:
        parse_payload(_v2_with(mutate), source="fixture.json", sha256="abc")
    assert message in str(exc.value) and "source=fixture.json" in str(exc.value)
