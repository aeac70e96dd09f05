"""The dbt project on real third-party charts (../shared/real_charts, WBGame/ios_rank_history).

26 days of cn/jp/us Business (6000) and Games (6014) genre charts, plus one day of overall charts saved
twice (two versions of the same chart keys). Parsed with the project's own parser; the rows are given
lineage here the way the ingest would (payload hash, fetch time from the archive's commit time).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import pytest

from dbt_helpers import load_raw, make_dbt_home
from orchestration.sources.canonical import CHART_COLUMNS
from orchestration.sources.parsers import parse_payload

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "real_charts" / "wbgame-ios_rank_history"
REDNOTE = "741292507"
_COMMITTED = re.compile(r"committed-(\d{4}-\d{2}-\d{2})T(\d{2})(\d{2})Z")


def _real_rows() -> list[tuple]:
    files = sorted((REAL / "per_chart").glob("*.json")) + sorted((REAL / "overall_v2_2026-02-17").glob("*.json"))
    ingested = dt.datetime(2026, 11, 1)
    rows = []
    for path in files:
        content = path.read_bytes()
        sha = hashlib.sha256(content).hexdigest()
        m = _COMMITTED.search(path.name)
        for chart in parse_payload(content, source=str(path), sha256=sha):
            k = chart.key
            fetched = (dt.datetime.fromisoformat(f"{m[1]}T{m[2]}:{m[3]}") if m
                       else dt.datetime.combine(k.chart_date, dt.time(12)))
            for e in chart.entries:
                chart_part = {"store": k.store, "country": k.country, "device": k.device, "chart": k.chart,
                              "genre_id": k.genre_id, "chart_date": k.chart_date, **e}
                rows.append(tuple(chart_part[c] for c, _ in CHART_COLUMNS)
                            + (sha, path.as_uri(), chart.source_format, fetched, "real-charts-test", ingested,
                               fetched))
    return rows


@pytest.fixture(scope="module")
def real_built(tmp_path_factory):
    if not REAL.is_dir():
        pytest.skip(f"real chart archives not present at {REAL.resolve()} (see ../shared/real_charts/README.md)")
    h = make_dbt_home(tmp_path_factory.mktemp("dbt_real"))
    load_raw(h.home, _real_rows())
    h.dbt("build")  # every data test (grain, relationships to dim_countries, accepted values) must pass
    return h


def test_genre_charts_have_their_own_series(real_built):
    rows = real_built.query(
        "select chart_id, count(*) from intermediate.int_chart_days where genre_id is not null group by chart_id"
    )
    assert len(rows) == 12 and {n for _, n in rows} == {26}
    assert "apple/us/iphone/top-free/6014" in {c for c, _ in rows}


def test_history_is_carried_across_real_days(real_built):
    last = real_built.query_dicts(
        "select count(*) as n, count(previous_rank) as with_previous, max(days_in_chart) as max_days "
        "from marts.mart_daily_rankings where chart_id = 'apple/us/iphone/top-free/6014' "
        "and chart_date = '2026-03-14'"
    )[0]
    assert last["n"] >= 50
    # Real charts move, but most of a top list was there the day before.
    assert last["with_previous"] / last["n"] > 0.5
    assert last["max_days"] == 26
    summary = real_built.query(
        "select count(*), count(top_n_entries) from marts.mart_daily_country_summary where genre_id = 6000"
    )[0]
    assert summary == (6 * 26, 6 * 25)  # no movement figures on each chart's first captured day


def test_latest_saved_version_of_the_overall_chart_wins(real_built):
    versions = real_built.query(
        "select count(distinct payload_sha256) from raw.chart_entries "
        "where country = 'cn' and chart = 'top-free' and genre_id is null"
    )[0][0]
    assert versions == 2
    used = real_built.query(
        "select distinct fetched_at from marts.fct_chart_entries "
        "where chart_id = 'apple/cn/iphone/top-free/all'"
    )
    assert used == [(dt.datetime(2026, 2, 17, 1, 40),)]
    rednote = real_built.query(
        "select rank from marts.mart_daily_rankings where chart_id = 'apple/cn/iphone/top-free/all' and app_id = ?",
        [REDNOTE],
    )
    assert rednote == [(40,)]


def test_real_names_are_nfc(real_built):
    bad = real_built.query(
        "select count(*) from marts.fct_chart_entries where app_name <> nfc_normalize(app_name) "
        "or app_name <> trim(app_name)"
    )
    assert bad == [(0,)]
    cjk = real_built.query(
        "select count(*) from marts.dim_apps where regexp_matches(app_name, '[\\x{4e00}-\\x{9fff}]')"
    )[0][0]
    assert cjk > 10
