"""The demo generator: deterministic bytes, Apple's layouts, complete charts, and the January 2025 story.

Every story fact is read back from the JSON files the generator wrote, not from its internals.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from orchestration import demo
from orchestration.sources.canonical import CHARTS, DEVICES

D = dt.date


def _read(path: Path) -> dict:
    return json.loads(path.read_bytes())


def _apps(doc: dict) -> list[tuple[str, str]]:
    """(app id, name) in rank order, from either Apple format."""
    feed = doc["feed"]
    if "results" in feed:
        return [(r["id"], r["name"]) for r in feed["results"]]
    entries = feed["entry"]
    entries = [entries] if isinstance(entries, dict) else entries
    return [(e["id"]["attributes"]["im:id"], e["im:name"]["label"]) for e in entries]


def _rank(out: Path, day: dt.date, country: str, device: str, chart: str, app_id: str) -> int | None:
    ids = [i for i, _ in _apps(_read(out / demo.relative_path(day, country, device, chart)))]
    return ids.index(app_id) + 1 if app_id in ids else None


def _days(first: dt.date, last: dt.date):
    while first <= last:
        yield first
        first += dt.timedelta(days=1)


# ------------------------------------------------------------------------------------------ determinism


def test_same_arguments_give_identical_bytes_and_another_seed_does_not(tmp_path):
    kw = dict(start=D(2025, 1, 13), end=D(2025, 1, 15), countries=("us", "jp"), depth=25)
    a = demo.generate(tmp_path / "a", **kw)
    b = demo.generate(tmp_path / "b", **kw)
    c = demo.generate(tmp_path / "c", seed=7, **kw)
    rel = [p.relative_to(tmp_path / "a") for p in a]
    assert rel == [p.relative_to(tmp_path / "b") for p in b]
    for p, q in zip(a, b):
        assert p.read_bytes() == q.read_bytes(), p
    # Another seed moves the simulated apps (the scripted story stays, so compare whole files).
    differing = sum(p.read_bytes() != q.read_bytes() for p, q in zip(a, c))
    assert differing == len(a)


def test_a_day_does_not_depend_on_the_range_it_was_generated_in(tmp_path):
    month = demo.generate(tmp_path / "range", start=D(2025, 1, 12), end=D(2025, 1, 15), countries=("fr",),
                          depth=30)
    single = demo.generate(tmp_path / "one", start=D(2025, 1, 14), end=D(2025, 1, 14), countries=("fr",),
                           depth=30)
    by_rel = {p.relative_to(tmp_path / "range"): p for p in month}
    for p in single:
        assert p.read_bytes() == by_rel[p.relative_to(tmp_path / "one")].read_bytes()


# --------------------------------------------------------------------------------------- layout, format


def test_file_count_layout_and_apple_formats(tmp_path):
    start, end, countries = D(2025, 1, 30), D(2025, 2, 1), ("gb", "cn", "br")
    paths = demo.generate(tmp_path, start=start, end=end, countries=countries, depth=150)
    assert len(paths) == 3 * len(countries) * len(DEVICES) * len(CHARTS)
    assert len(set(paths)) == len(paths)
    expected = {demo.relative_path(d, c, dev, ch) for d in _days(start, end) for c in countries
                for dev in DEVICES for ch in CHARTS}
    assert {p.relative_to(tmp_path).as_posix() for p in paths} == expected
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json")) == sorted(expected)

    for p in paths:
        day = D.fromisoformat(p.parent.name)
        country, device, chart = p.stem.split("-", 2)
        raw = p.read_bytes()
        doc = json.loads(raw)
        assert list(doc) == ["feed", "chartlake"]
        assert doc["chartlake"] == {"simulated": True, "generator": "chartlake demo", "seed": demo.DEFAULT_SEED}
        feed = doc["feed"]
        if device == "iphone" and chart in ("top-free", "top-paid"):
            # RSS v2: capped at 100 whatever the depth asked; the URL says so too.
            assert len(feed["results"]) == 100 and "entry" not in feed
            assert feed["id"] == f"https://rss.applemarketingtools.com/api/v2/{country}/apps/{chart}/100/apps.json"
            assert feed["country"] == country
            assert feed["links"] == [{"self": feed["id"]}]
            assert set(feed["results"][0]) == {"artistName", "id", "name", "releaseDate", "kind",
                                               "artworkUrl100", "genres", "url"}
            assert feed["results"][0]["kind"] == "apps"
            assert dt.datetime.strptime(feed["updated"], "%a, %d %b %Y %H:%M:%S %z").date() == day
        else:
            assert len(feed["entry"]) == 150 and "results" not in feed
            ipad = "ipad" if device == "ipad" else ""
            collection = {"top-free": "topfree", "top-paid": "toppaid", "top-grossing": "topgrossing"}[chart]
            url = f"https://itunes.apple.com/{country}/rss/{collection}{ipad}applications/limit=150/json"
            assert feed["id"]["label"] == url
            assert {"rel": "self", "href": feed["id"]["label"]} in [link["attributes"] for link in feed["link"]]
            assert dt.datetime.fromisoformat(feed["updated"]["label"]).date() == day
            entry = feed["entry"][0]
            assert set(entry) == {"im:name", "im:image", "summary", "im:price", "im:contentType", "rights",
                                  "title", "link", "id", "im:artist", "category", "im:releaseDate"}
            price = entry["im:price"]["attributes"]
            assert price["currency"] == {"gb": "GBP", "cn": "CNY", "br": "BRL"}[country]
            amounts = {float(e["im:price"]["attributes"]["amount"]) for e in feed["entry"]}
            if chart == "top-paid":
                assert min(amounts) > 0
            elif chart == "top-free":
                assert amounts == {0.0}
        # Small files: no long texts.
        assert len(raw) < 1600 * 150


def test_every_chart_is_complete_with_unique_apps_at_the_largest_depth():
    """Ranks 1..depth without gaps or repeats, in every supported country and chart, at the legacy limit."""
    day = D(2025, 1, 19)
    for country in demo.DEFAULT_COUNTRIES:
        for device in DEVICES:
            for chart in CHARTS:
                doc = json.loads(demo.payload_bytes(country, device, chart, day, 200))
                apps = _apps(doc)
                expected = 100 if demo.is_v2(device, chart) else 200
                assert len(apps) == expected, (country, device, chart)
                ids = [i for i, _ in apps]
                assert len(set(ids)) == len(ids), (country, device, chart)
                assert all(i.isdigit() for i in ids)


def test_one_entry_legacy_feed_is_an_object_as_apple_serves_it():
    doc = json.loads(demo.payload_bytes("us", "ipad", "top-free", D(2025, 1, 14), 1))
    assert isinstance(doc["feed"]["entry"], dict)
    assert _apps(doc) == [(demo.REDNOTE_ID, "REDnote")]


def test_invalid_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="depth"):
        demo.generate(tmp_path, depth=201)
    with pytest.raises(ValueError, match="depth"):
        demo.generate(tmp_path, depth=0)
    with pytest.raises(ValueError, match="zz"):
        demo.generate(tmp_path, countries=("us", "zz"))
    with pytest.raises(ValueError, match="after"):
        demo.generate(tmp_path, start=D(2025, 1, 2), end=D(2025, 1, 1))
    with pytest.raises(ValueError, match="watch"):
        demo.generate(tmp_path, devices=("watch",))
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------------------------------------ apps


def test_watchlist_and_invented_ids():
    assert demo.WATCHLIST == {
        "389801252": "Instagram", "310633997": "WhatsApp", "585027354": "Google Maps", "6448311069": "ChatGPT",
        "6446901002": "Threads", "1641486558": "Temu", "544007664": "YouTube", "284882215": "Facebook",
        "1500855883": "CapCut", "835599320": "TikTok",
    }
    assert set(demo.WATCHLIST) <= set(demo.WELL_KNOWN_APPS)
    assert demo.WELL_KNOWN_APPS[demo.REDNOTE_ID].developer == "Xingin"
    # Invented apps never take a real app's id: they live in a range Apple has not reached.
    doc = json.loads(demo.payload_bytes("de", "iphone", "top-grossing", D(2025, 1, 5), 200))
    for app_id, name in _apps(doc):
        assert (app_id in demo.WELL_KNOWN_APPS) != (int(app_id) >= 9_000_000_000), (app_id, name)


def test_scripted_ranks_never_collide():
    forced: dict[tuple, set[int]] = {}
    for ev in demo.SCRIPTED_EVENTS:
        for day, rank in ev.ranks.items():
            if rank is None:
                continue
            for c in ev.countries:
                for dev in ev.devices:
                    for ch in ev.charts:
                        slot = forced.setdefault((c, dev, ch, day), set())
                        assert rank not in slot, (ev.key, c, dev, ch, day, rank)
                        slot.add(rank)


# ----------------------------------------------------------------------------------------------- story


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("story")
    demo.generate(out, start=D(2025, 1, 9), end=D(2025, 1, 25), countries=("us", "fr", "gb", "ca"))
    return out


def test_rednote_tops_the_us_charts_and_reaches_4_in_france(story):
    for device in DEVICES:
        for day in (D(2025, 1, 13), D(2025, 1, 14)):
            assert _rank(story, day, "us", device, "top-free", demo.REDNOTE_ID) == 1, (device, day)
    assert _rank(story, D(2025, 1, 14), "fr", "iphone", "top-free", demo.REDNOTE_ID) == 4
    # It came from outside the chart, and the surge is multi-country the same week.
    assert _rank(story, D(2025, 1, 9), "us", "iphone", "top-free", demo.REDNOTE_ID) is None
    for country in ("us", "fr", "gb", "ca"):
        assert _rank(story, D(2025, 1, 9), country, "iphone", "top-free", demo.REDNOTE_ID) is None
        assert _rank(story, D(2025, 1, 14), country, "iphone", "top-free", demo.REDNOTE_ID) <= 4
    # It stays high about a week, then fades.
    us = [_rank(story, d, "us", "iphone", "top-free", demo.REDNOTE_ID) for d in _days(D(2025, 1, 13), D(2025, 1, 25))]
    assert all(r <= 2 for r in us[:6]) and us[-1] > 20
    # It overtakes every heavyweight of the watch list that is in the chart.
    for app_id in demo.WATCHLIST:
        before = _rank(story, D(2025, 1, 9), "us", "iphone", "top-free", app_id)
        after = _rank(story, D(2025, 1, 14), "us", "iphone", "top-free", app_id)
        assert before is not None and after is not None and after > 1, demo.WATCHLIST[app_id]


def test_rednote_name_changes_in_the_payloads(story):
    def name(day, country):
        apps = dict(_apps(_read(story / demo.relative_path(day, country, "iphone", "top-free"))))
        return apps.get(demo.REDNOTE_ID)

    assert name(D(2025, 1, 12), "us") == "小红书"
    assert name(D(2025, 1, 13), "us") == "REDnote"
    assert name(D(2025, 1, 14), "fr") == "REDnote"
    # The Chinese storefront keeps its Chinese name.
    cn = dict(_apps(json.loads(demo.payload_bytes("cn", "iphone", "top-free", D(2025, 1, 14)))))
    assert cn[demo.REDNOTE_ID] == "小红书"
    v2 = _read(story / demo.relative_path(D(2025, 1, 14), "us", "iphone", "top-free"))["feed"]["results"][0]
    assert v2["url"] == "https://apps.apple.com/us/app/rednote/id741292507"
    assert v2["artistName"] == "Xingin"


def test_lemon8_climbs_into_the_us_top_10(story):
    before = _rank(story, D(2025, 1, 9), "us", "iphone", "top-free", demo.LEMON8_ID)
    assert before is None or before > 30
    for day in _days(D(2025, 1, 13), D(2025, 1, 16)):
        assert _rank(story, day, "us", "iphone", "top-free", demo.LEMON8_ID) <= 10


def test_tiktok_leaves_every_us_chart_and_comes_back(story):
    for day in _days(D(2025, 1, 9), D(2025, 1, 18)):
        assert _rank(story, day, "us", "iphone", "top-free", demo.TIKTOK_ID) <= 10, day
        assert _rank(story, day, "us", "ipad", "top-grossing", demo.TIKTOK_ID) is not None, day
    for day in _days(D(2025, 1, 19), D(2025, 1, 24)):
        for device in DEVICES:
            for chart in CHARTS:
                assert _rank(story, day, "us", device, chart, demo.TIKTOK_ID) is None, (day, device, chart)
    assert _rank(story, D(2025, 1, 25), "us", "iphone", "top-free", demo.TIKTOK_ID) <= 10
    # Only the US store lost it.
    assert _rank(story, D(2025, 1, 20), "fr", "iphone", "top-free", demo.TIKTOK_ID) is not None


def test_the_files_follow_the_scripted_events(story):
    """Every scripted position inside the generated window shows in the JSON exactly."""
    checked = 0
    for ev in demo.SCRIPTED_EVENTS:
        for day, rank in ev.ranks.items():
            if not D(2025, 1, 9) <= day <= D(2025, 1, 25):
                continue
            for country in set(ev.countries) & {"us", "fr", "gb", "ca"}:
                for device in ev.devices:
                    for chart in ev.charts:
                        got = _rank(story, day, country, device, chart, ev.app_id)
                        assert got == (rank if rank is not None and rank <= 100 else None), (ev.key, day)
                        checked += 1
    assert checked > 100


# --------------------------------------------------------------------------------------------- parsers


def test_every_generated_file_parses_as_simulated(tmp_path):
    parsers = pytest.importorskip("orchestration.sources.parsers")
    paths = demo.generate(tmp_path, start=D(2025, 1, 18), end=D(2025, 1, 19), countries=("us", "jp"), depth=30)
    for p in paths:
        day = D.fromisoformat(p.parent.name)
        country, device, chart = p.stem.split("-", 2)
        raw = p.read_bytes()
        charts = parsers.parse_payload(raw, source=str(p))
        assert len(charts) == 1
        parsed = charts[0]
        k = parsed.key
        assert (k.store, k.country, k.device, k.chart, k.genre_id, k.chart_date) == (
            "apple", country, device, chart, None, day), p
        base = "apple-rss-v2" if demo.is_v2(device, chart) else "itunes-rss-legacy"
        assert parsed.source_format == base + "-simulated"
        assert [e["rank"] for e in parsed.entries] == list(range(1, 31))
        assert [(e["app_id"], e["app_name"]) for e in parsed.entries] == _apps(json.loads(raw))
        first = parsed.entries[0]
        assert first["developer_name"] and first["genre_name"] and first["release_date"]
        if not demo.is_v2(device, chart):
            assert first["currency"] == ("USD" if country == "us" else "JPY")
            assert first["developer_id"] and first["developer_id"].isdigit()
            assert (first["price"] > 0) == (chart == "top-paid")
    one = parsers.parse_payload(demo.payload_bytes("us", "ipad", "top-paid", D(2025, 1, 3), 1), source="one.json")
    assert len(one[0].entries) == 1
