"""Google Play ``list()`` arrays and app-tracker day files: keys from the path, repeats, dates, refusals."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from orchestration.sources.canonical import ENTRY_FIELDS, PayloadError
from orchestration.sources.parsers import detect_format, parse_payload
from orchestration.sources.play import PLAY_CATEGORY_IDS, PlayRequest


def item(app_id: str, title: str, **extra) -> dict:
    """One list() entry with the scraper's 12 keys, in its order."""
    return {"title": title, "appId": app_id, "url": f"https://play.google.com/store/apps/details?id={app_id}",
            "icon": "https://lh3.googleusercontent.com/x", "developer": extra.get("developer", "Dev"),
            "developerId": extra.get("developerId", "123"), "priceText": extra.get("priceText", "FREE"),
            "price": extra.get("price", 0), "free": extra.get("free", True), "summary": "s &amp; t",
            "scoreText": "4.1", "score": 4.08}


def payload(*items: dict) -> bytes:
    return json.dumps(list(items), indent=2).encode()


APPS = [item("com.xingin.xhs", "RED"), item("com.zhiliaoapp.musically", "TikTok"), item("com.whatsapp", "WhatsApp")]
DATED = "/arch/play_store/fr/TOP_FREE_20201010_134126.json"


def test_dated_price_of_privacy_file_keys_itself_from_its_path():
    [c] = parse_payload(payload(*APPS), source=DATED)
    assert c.key.label() == "google_play/fr/android/top-free/2020-10-10"
    assert c.source_format == "google-play-list"
    assert [(e["rank"], e["app_id"]) for e in c.entries] == [
        (1, "com.xingin.xhs"), (2, "com.zhiliaoapp.musically"), (3, "com.whatsapp")]
    assert all(tuple(e) == ENTRY_FIELDS for e in c.entries) and c.repeats == []
    assert c.entries[0]["price"] == Decimal("0") and c.entries[0]["currency"] is None
    assert detect_format(payload(*APPS), DATED) == "google-play-list"


@pytest.mark.parametrize("name,chart", [("us_TOP_PAID.json", "top-paid"), ("gb_GROSSING.json", "top-grossing")])
def test_undated_rankings_file_needs_a_chart_date(name, chart):
    source = f"/arch/play_store/rankings/{name}"
    with pytest.raises(PayloadError) as exc:
        parse_payload(payload(*APPS), source=source, sha256="ab" * 32)
    msg = str(exc.value)
    assert "no chart date" in msg and "--chart-date" in msg and source in msg and "ab" * 32 in msg
    [c] = parse_payload(payload(*APPS), source=source, chart_date=dt.date(2021, 12, 1))
    assert c.key.label() == f"google_play/{name[:2]}/android/{chart}/2021-12-01"


def test_a_repeated_app_keeps_its_first_position_and_the_others_keep_theirs():
    doc = payload(APPS[0], APPS[1], item("com.xingin.xhs", "RED again"), APPS[2], item("com.zhiliaoapp.musically", "x"))
    [c] = parse_payload(doc, source=DATED)
    assert [(e["rank"], e["app_id"], e["app_name"]) for e in c.entries] == [
        (1, "com.xingin.xhs", "RED"), (2, "com.zhiliaoapp.musically", "TikTok"), (4, "com.whatsapp", "WhatsApp")]
    assert c.repeats == [{"position": 3, "app_id": "com.xingin.xhs", "first_rank": 1},
                         {"position": 5, "app_id": "com.zhiliaoapp.musically", "first_rank": 2}]


def test_html_entities_are_decoded_in_names_only():
    doc = payload(item("com.hm.goe", "H&amp;M &#8211; fashion", developer="H&amp;M", developerId="H%26M"))
    [c] = parse_payload(doc, source=DATED)
    e = c.entries[0]
    assert (e["app_name"], e["developer_name"], e["developer_id"]) == ("H&M – fashion", "H&M", "H%26M")


def test_chartlake_layout_name_and_request():
    [c] = parse_payload(payload(*APPS), source="/d/us-android-top-grossing-2025-01-14.json")
    assert c.key.label() == "google_play/us/android/top-grossing/2025-01-14"
    req = PlayRequest("jp", "top-paid")
    [c] = parse_payload(payload(*APPS), source="https://play.google.com/_/x", request=req,
                        chart_date=dt.date(2025, 1, 2))
    assert c.key.label() == "google_play/jp/android/top-paid/2025-01-02"
    with pytest.raises(PayloadError, match="file name says country 'fr' but the payload was requested as 'jp'"):
        parse_payload(payload(*APPS), source=DATED, request=req)


def test_play_categories_are_integer_genres_apart_from_apples():
    assert PLAY_CATEGORY_IDS["APPLICATION"] == 90_000 and PLAY_CATEGORY_IDS["SOCIAL"] == 90_002
    [c] = parse_payload(payload(*APPS), source="https://x/list", chart_date=dt.date(2025, 1, 2),
                        request=PlayRequest("us", "top-free", genre_id=PLAY_CATEGORY_IDS["SOCIAL"]))
    assert c.key.genre_id == 90_002


SHA = "cd" * 32


@pytest.mark.parametrize("content,expected", [
    (b"<!doctype html><html><body>Sorry</body></html>", "an HTML page instead of JSON"),
    (payload(*APPS)[:-40], "truncated JSON"),
    (json.dumps({"results": APPS}).encode(), "unknown layout: a JSON object"),
    (payload(APPS[0], {k: v for k, v in APPS[1].items() if k != "appId"}), "entry at position 2 has no appId"),
    (payload(APPS[0], item("not a package", "x")), "malformed appId 'not a package' at position 2"),
    (payload(APPS[0], item("com.x.y", " ")), "entry at position 2 (app com.x.y) has no title"),
    (b"[]", "empty chart"),
])
def test_bad_play_input_is_refused_naming_file_and_hash(content, expected):
    with pytest.raises(PayloadError) as exc:
        parse_payload(content, source=DATED, sha256=SHA)
    msg = str(exc.value)
    assert expected in msg and f"source={DATED}" in msg and f"payload_sha256={SHA}" in msg


def test_a_list_without_a_storefront_in_its_name_is_refused():
    with pytest.raises(PayloadError, match="cannot tell the country of this Google Play chart"):
        parse_payload(payload(*APPS), source="/tmp/top.json", chart_date=dt.date(2025, 1, 1))


def test_simulated_marker_on_the_first_entry():
    first = {**APPS[0], "chartlake": {"simulated": True}}
    [c] = parse_payload(payload(first, *APPS[1:]), source=DATED)
    assert c.source_format == "google-play-list-simulated"


def tracker_day(countries: dict) -> bytes:
    return json.dumps({"date": "2026-07-17", "countries": {
        cc: [{"rank": i + 1, "id": str(app), "name": f"App {app}", "developer": "D"} for i, app in enumerate(apps)]
        for cc, apps in countries.items()}}).encode()


def test_app_tracker_day_gives_one_chart_per_storefront_present():
    charts = parse_payload(tracker_day({"us": [389801252, 835599320], "fr": [741292507]}), source="/s/2026-07-17.json")
    assert [c.key.label() for c in charts] == ["apple/us/iphone/top-free/genre=6008/2026-07-17",
                                               "apple/fr/iphone/top-free/genre=6008/2026-07-17"]
    assert charts[0].source_format == "app-tracker-archive"
    assert [(e["rank"], e["app_id"]) for e in charts[0].entries] == [(1, "389801252"), (2, "835599320")]


def test_app_tracker_bad_storefront_names_it():
    with pytest.raises(PayloadError, match="empty chart apple/gb/iphone/top-free/genre=6008/2026-07-17"):
        parse_payload(tracker_day({"us": [389801252], "gb": []}), source="/s/2026-07-17.json")
    with pytest.raises(PayloadError, match=r"countries.us\[0\]: rank None"):
        parse_payload(json.dumps({"date": "2026-07-17", "countries": {"us": [{"id": "1"}]}}).encode(), source="x")


def test_a_fetched_play_payload_stages_and_lands_with_its_request(home):
    from orchestration.lib import ingest, lake
    from orchestration.lib.payload_store import PayloadStore

    store = PayloadStore(home.raw)
    day = dt.date(2025, 1, 14)
    src = ingest.PayloadSource(content=payload(*APPS), source="https://play.google.com/list/us/TOP_FREE",
                               chart_date=day, request=PlayRequest("us", "top-free"))
    with lake.session(home) as con:
        [res] = ingest.stage(con, store, [src], run_id="t")
        store.parsed.clear()  # land from the store and the recorded request, as a later process would
        landed = ingest.land_day(con, store, day, run_id="t")
        keys = con.execute("select distinct store, country, device, chart from raw.chart_entries").fetchall()
    assert res.status == "staged" and landed.rows_inserted == 3 and not landed.failures
    assert keys == [("google_play", "us", "android", "top-free")]
