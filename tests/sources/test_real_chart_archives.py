"""The archive adapters over the real third-party chart files in ../shared/real_charts (read in place, never copied).

Expected keys come from each file's own name and metadata, read here independently of the parser.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from orchestration.sources.canonical import ENTRY_FIELDS, PayloadError
from orchestration.sources.parsers import parse_payload

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "real_charts"
WBGAME = REAL / "wbgame-ios_rank_history"
OHBARYE = REAL / "ohbarye-finance-app-ranking"

pytestmark = pytest.mark.skipif(
    not REAL.is_dir(), reason=f"real chart archives not present at {REAL.resolve()} (third-party data, not in the repo)"
)

PER_CHART = sorted((WBGAME / "per_chart").glob("*.json")) if REAL.is_dir() else []
SNAPSHOTS = sorted((OHBARYE / "snapshots").glob("*.json")) if REAL.is_dir() else []
_PER_CHART_NAME = re.compile(r"^(apps|games)-(\d{4}-\d{2}-\d{2})-([a-z]{2})-(top-free|top-paid)\.json$")
_SNAPSHOT_NAME = re.compile(r"__(\d{4})-(\d{2})-(\d{2})T(\d{2})(\d{2})(\d{2})Z__")


def _parse(path: Path):
    return parse_payload(path.read_bytes(), source=str(path))


def test_every_per_chart_file_parses_with_the_right_key():
    assert len(PER_CHART) == 312
    short = rows = empty_urls = 0
    for path in PER_CHART:
        media, day, country, chart = _PER_CHART_NAME.match(path.name).groups()
        items = json.loads(path.read_bytes())["items"]
        [parsed] = _parse(path)
        k = parsed.key
        assert (k.store, k.country, k.device, k.chart) == ("apple", country, "iphone", chart), path.name
        assert k.genre_id == {"apps": 6000, "games": 6014}[media], path.name
        assert k.chart_date == dt.date.fromisoformat(day), path.name
        assert parsed.source_format == "wbgame-archive"
        assert len(parsed.entries) == len(items), path.name
        assert [e["app_id"] for e in parsed.entries] == [str(i["id"]) for i in sorted(items, key=lambda i: i["rank"])]
        assert all(tuple(e) == ENTRY_FIELDS for e in parsed.entries)
        short += len(items) < 100
        rows += len(parsed.entries)
        for raw, e in zip(sorted(items, key=lambda i: i["rank"]), parsed.entries):
            if raw["url"] == "":
                empty_urls += 1
                assert e["url"] is None and e["app_id"] == raw["id"]
        # the converter put the category label in `kind` for legacy-feed charts
        assert {e["genre_name"] for e in parsed.entries} <= {"Business", "Games"}
    # PROVENANCE: 146 short charts and 30,915 rows. It says 17,476 rows have an empty url; the files hold 19,476.
    assert short == 146
    assert rows == 30_915
    assert empty_urls == 19_476


def test_short_paid_charts_are_fine():
    path = WBGAME / "per_chart" / "apps-2026-02-18-us-top-paid.json"
    [parsed] = _parse(path)
    assert 95 <= len(parsed.entries) <= 99
    assert [e["rank"] for e in parsed.entries] == list(range(1, len(parsed.entries) + 1))


def test_overall_v2_single_chart_file():
    path = WBGAME / "overall_v2_2026-02-17" / "2026-02-17__committed-2026-02-17T0039Z__1ff7842.json"
    [parsed] = _parse(path)
    assert parsed.key.label() == "apple/cn/iphone/top-free/2026-02-17"  # overall: no genre
    assert len(parsed.entries) == 100
    rednote = [e for e in parsed.entries if e["app_id"] == "741292507"]
    assert [(e["rank"], e["app_name"]) for e in rednote] == [(40, "小红书 – 你的生活兴趣社区")]
    assert {e["genre_name"] for e in parsed.entries} == {None}  # `kind` is "apps" here, not a genre


def test_overall_v2_aggregate_file_gives_one_chart_per_dataset():
    path = WBGAME / "overall_v2_2026-02-17" / "2026-02-17__committed-2026-02-17T0140Z__fe41823.json"
    doc = json.loads(path.read_bytes())
    charts = _parse(path)
    assert len(charts) == len(doc["datasets"]) == 6
    got = {(c.key.country, c.key.chart): len(c.entries) for c in charts}
    assert got == {(d["country"], d["feedType"]): len(d["items"]) for d in doc["datasets"]}
    assert got[("us", "top-paid")] == 98 and got[("jp", "top-paid")] == 97
    assert {c.key.genre_id for c in charts} == {None}
    assert {c.key.chart_date for c in charts} == {dt.date(2026, 2, 17)}
    assert charts[[c.key.country for c in charts].index("us")].entries[0]["app_name"] == "ChatGPT"
    # the warnings[] (404s the archive recorded) are not charts
    assert len(doc["warnings"]) == 6


def test_the_fake_fallback_file_is_rejected():
    # It is made-up "Sample App" data with placeholder ids 0000000001/0000000002: it must never become rows.
    path = WBGAME / "quirks" / "2026-02-15__fallback_sample_NOT_REAL.json"
    with pytest.raises(PayloadError) as exc:
        _parse(path)
    assert "malformed app id '0000000001' at rank 1" in str(exc.value)
    assert str(path) in str(exc.value)


def test_every_ohbarye_snapshot_parses():
    assert len(SNAPSHOTS) == 67
    dates = Counter()
    for path in SNAPSHOTS:
        items = json.loads(path.read_bytes())
        [parsed] = _parse(path)
        k = parsed.key
        assert (k.country, k.device, k.chart, k.genre_id) == ("jp", "iphone", "top-free", 6015)
        assert parsed.source_format == "ohbarye-html-scrape"
        assert len(parsed.entries) == len(items) == 100
        for raw, e in zip(items, parsed.entries):
            assert e["rank"] == raw["rank"] and e["app_name"] == raw["title"] and e["developer_name"] == raw["developer"]
            assert raw["url"].endswith(f"/id{e['app_id']}")
        # chart date = the scrape's calendar day in Japan (UTC+9)
        y, mo, d, h, mi, s = map(int, _SNAPSHOT_NAME.search(path.name).groups())
        scraped = dt.datetime(y, mo, d, h, mi, s, tzinfo=dt.timezone.utc)
        assert k.chart_date == (scraped + dt.timedelta(hours=9)).date()
        dates[k.chart_date] += 1
    # the 22:10 UTC cron is 07:10 the next morning in Japan
    late = OHBARYE / "snapshots" / "jp-finance-top-free-iphone__2025-01-14T221005Z__83c0eeb.json"
    assert _parse(late)[0].key.chart_date == dt.date(2025, 1, 15)
    # every JST day from the first to the last snapshot is covered; a few have two versions
    span = (max(dates) - min(dates)).days + 1
    assert len(dates) == span
    assert {d for d, n in dates.items() if n > 1} == {dt.date(2024, 12, 29), dt.date(2024, 12, 30), dt.date(2025, 1, 2)}


def test_renamed_app_keeps_both_names_as_given():
    names = set()
    for path in SNAPSHOTS:
        for e in _parse(path)[0].entries:
            if e["app_id"] == "1589416708":
                names.add(e["app_name"])
    assert "あいぎんアプリ" in names
    assert any("\u3000" in n for n in names)  # the ideographic space is kept, not normalised


def test_ohbarye_snapshot_without_its_file_name_needs_a_date():
    content = SNAPSHOTS[0].read_bytes()
    with pytest.raises(PayloadError, match="no chart date"):
        parse_payload(content, source="/inbox/ios_ranking.json", sha256="abc")
    [parsed] = parse_payload(content, source="/inbox/ios_ranking.json", chart_date=dt.date(2025, 1, 20))
    assert parsed.key.chart_date == dt.date(2025, 1, 20)
