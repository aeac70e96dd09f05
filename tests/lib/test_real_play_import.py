"""The real Google Play and app-tracker archives (../shared/real_charts) through `chartlake import`, landing and the
raw suite, as the raw check runs it (lib.repeats + run_raw_day), on a temporary home.

Item counts and repeats are read here from the files themselves, independently of the parser.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest

from orchestration.lib import audit, ingest, lake, repeats
from orchestration.lib.payload_store import PayloadStore, sha256_hex
from orchestration.lib.quality.raw import run_raw_day
from tests.conftest import REAL_CHARTS, run_chartlake

PLAY = REAL_CHARTS / "price-of-privacy-play"
TRACKER = REAL_CHARTS / "lyubimovats-app-tracker" / "snapshots"
pytestmark = pytest.mark.skipif(not REAL_CHARTS.is_dir(),
                                reason=f"real chart archives not present at {REAL_CHARTS} (third-party data)")

# The undated files, with the dates given on import (their content places them about there: MANIFEST.tsv).
UNDATED = {"654229a/play_store/rankings/fr_TOP_FREE.json": dt.date(2020, 10, 11),
           "0005577/play_store/rankings/fr_TOP_FREE.json": dt.date(2021, 12, 1),
           "a2b867d/play_store/rankings/us_TOP_FREE.json": dt.date(2022, 2, 1)}
DATED = {"play_store/fr/TOP_FREE_20201010_134126.json": ("fr", dt.date(2020, 10, 10)),
         "play_store/us/TOP_FREE_20201010_134023.json": ("us", dt.date(2020, 10, 10))}


def _items_and_repeats(path: Path) -> tuple[int, int]:
    ids = [i["appId"] for i in json.loads(path.read_bytes())]
    return len(ids), len(ids) - len(set(ids))


def _import(home, *args) -> int:
    return run_chartlake(home, "import", "--no-land", *args)


def _land(home, day: dt.date):
    with lake.session(home) as con:
        return ingest.land_day(con, PayloadStore(home.raw), day, run_id="test-land")


def _raw_check(home, day: dt.date):
    """What the raw_chart_quality check computes for a day (without Dagster: the archive predates the partitions)."""
    with lake.session(home, read_only=True) as con:
        today = audit.current_raw_rows(con, day)
        recorded = repeats.read_day(con, day)
    return run_raw_day(today, chart_date=day, history=None, repeats=recorded), today, recorded


def test_the_five_real_play_files_land_with_their_repeats_recorded(home):
    assert _import(home, *(str(PLAY / p) for p in DATED)) == 0
    for rel, day in UNDATED.items():
        assert _import(home, "--chart-date", day.isoformat(), str(PLAY / "undated" / rel)) == 0
    expected = {}
    for rel, (cc, day) in DATED.items():
        expected[(cc, day)] = _items_and_repeats(PLAY / rel)
    for rel, day in UNDATED.items():
        expected[(rel.split("/")[-1][:2], day)] = _items_and_repeats(PLAY / "undated" / rel)
    assert sorted(r for _, r in expected.values()) == [0, 0, 1, 3, 4]  # PROVENANCE: fr 4, ~Oct fr 1, us 3
    for day in sorted({d for _, d in expected}):
        landed = _land(home, day)
        assert not landed.failures
        check, today, recorded = _raw_check(home, day)
        for (cc, d), (items, reps) in expected.items():
            if d != day:
                continue
            mine = today[today["country"] == cc]
            assert len(mine) == items - reps, (cc, day)
            assert set(mine["store"]) == {"google_play"} and set(mine["device"]) == {"android"}
            assert mine["rank"].is_unique and mine["app_id"].is_unique
            assert len(recorded[recorded["country"] == cc]) == reps
            result = check.results[cc]
            assert result.passed, result.describe()  # repeats are not a quarantine
            warned = {o.name for o in result.warnings}
            assert ("no_recorded_repeats" in warned) == (reps > 0), (cc, day, warned)
    with lake.session(home, read_only=True) as con:
        assert con.execute("select count(*) from raw.chart_entries").fetchone()[0] == 200 * 5 - 8
        fmt = con.execute("select distinct source_format from raw.chart_entries").fetchall()
    assert fmt == [("google-play-list",)]


def test_without_its_recorded_repeats_a_play_chart_with_gaps_fails(home):
    rel = "play_store/fr/TOP_FREE_20201010_134126.json"
    assert _import(home, str(PLAY / rel)) == 0
    day = dt.date(2020, 10, 10)
    _land(home, day)
    with lake.session(home, read_only=True) as con:
        today = audit.current_raw_rows(con, day)
    result = run_raw_day(today, chart_date=day).results["fr"]
    assert not result.passed and "rank_within_chart_size" in {o.name for o in result.blocking_failures}


def _state(home):
    with lake.session(home, read_only=True) as con:
        return (con.execute("select * from raw.chart_entries order by all").fetchall(),
                con.execute("select * exclude (registered_at) from raw.payloads where status = 'staged' "
                            "order by all").fetchall(),
                con.execute("select * from raw.chart_repeats order by all").fetchall())


@pytest.mark.parametrize("name,content,reason", [
    ("TOP_FREE_20201011_120000.json", b"<!DOCTYPE html><html><body>503</body></html>", "an HTML page instead of JSON"),
    ("TOP_FREE_20201011_120000.json", None, "truncated JSON"),
    ("TOP_FREE_20201011_120000.json", b'{"apps": []}', "unknown layout: a JSON object"),
    ("TOP_FREE_20201011_120000.json", "no-app-id", "entry at position 3 has no appId"),
    ("../rankings/fr_TOP_FREE.json", "good", "no chart date"),
])
def test_bad_play_input_is_refused_with_file_and_hash_and_changes_nothing(home, tmp_path, capsys, name, content,
                                                                          reason):
    good = PLAY / "play_store/fr/TOP_FREE_20201010_134126.json"
    assert _import(home, str(good)) == 0
    _land(home, dt.date(2020, 10, 10))
    before = _state(home)
    doc = json.loads(good.read_bytes())
    if content is None:
        content = good.read_bytes()[: len(good.read_bytes()) // 2]
    elif content == "no-app-id":
        del doc[2]["appId"]
        content = json.dumps(doc).encode()
    elif content == "good":
        content = json.dumps(doc[:50]).encode()
    path = tmp_path / "play_store" / "fr" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path = path.resolve()
    capsys.readouterr()
    assert _import(home, str(path)) == 1
    err = capsys.readouterr().err
    assert f"FAILED {path} (payload_sha256={sha256_hex(content)})" in err and reason in err
    for day in (dt.date(2020, 10, 10), dt.date(2020, 10, 11), dt.date.today()):
        _land(home, day)
    assert _state(home) == before
    with lake.session(home, read_only=True) as con:
        failed = con.execute("select store, country, error from raw.payloads where status = 'failed'").fetchall()
    assert len(failed) == 1 and failed[0][:2] == ("google_play", "fr") and reason in failed[0][2]
    assert PayloadStore(home.raw).get(sha256_hex(content)) == content  # kept, as every payload


@pytest.mark.slow
def test_the_184_app_tracker_days_land_one_chart_per_storefront(home):
    files = sorted(TRACKER.glob("*.json"))
    assert len(files) == 184
    items, storefronts = 0, Counter()
    for f in files:
        doc = json.loads(f.read_bytes())
        storefronts.update(doc["countries"].keys())
        items += sum(len(v) for v in doc["countries"].values())
    assert _import(home, str(TRACKER)) == 0
    days = [dt.date.fromisoformat(f.stem) for f in files]
    for day in days:
        assert not _land(home, day).failures
    with lake.session(home, read_only=True) as con:
        n, charts, payloads = con.execute(
            "select count(*), count(distinct (country, chart_date)), count(distinct payload_sha256) "
            "from raw.chart_entries").fetchone()
        gb = con.execute("select count(*) from raw.chart_entries where country = 'gb' "
                         "and chart_date = '2026-07-17'").fetchone()[0]
        per_country = dict(con.execute("select country, count(distinct chart_date) from raw.chart_entries "
                                       "group by country").fetchall())
    assert (n, charts, payloads) == (items, sum(storefronts.values()), 184) == (183_712, 1_839, 184)
    assert gb == 0 and per_country["gb"] == 183 and per_country["us"] == 184  # missing, not empty
    # The raw suite on the day gb is missing and on a day with a 98-entry `in` chart, with a week of history.
    for day in (dt.date(2026, 7, 17), days[-1]):
        with lake.session(home, read_only=True) as con:
            from orchestration.lib.quality.raw import read_history
            today, history = audit.current_raw_rows(con, day), read_history(con, day)
        check = run_raw_day(today, chart_date=day, history=history)
        assert not check.failed, {c: r.describe() for c, r in check.failed.items()}
        assert ("gb" in check.results) == (day != dt.date(2026, 7, 17))
