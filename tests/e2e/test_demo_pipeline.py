"""End to end on a small slice of the demo: generate -> import -> raw -> dbt -> checks -> publish, then the plain
dbt CLI against the same lake."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import latest_check_evaluations, run_chartlake
from orchestration.config import DBT_PROJECT_DIR, Home
from orchestration.lib import serving

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    home = Home(tmp_path_factory.mktemp("demo") / "home")
    assert run_chartlake(home, "demo", "--countries", "us,fr,gb,ca", "--start", "2025-01-08", "--end", "2025-01-20") == 0
    return home


def test_demo_publishes_audited_marts(demo_home, capsys):
    log = serving.read_publish_log(demo_home.serving_db)
    assert len(log) == 1 and log[0]["publish_id"] == 1
    con = duckdb.connect(str(demo_home.serving_db), read_only=True)
    try:
        top = con.execute("""select app_id, app_name from analytics.mart_daily_rankings
            where country='us' and device='iphone' and chart='top-free' and chart_date=date '2025-01-14'
              and rank = 1""").fetchall()
        assert top == [("741292507", "REDnote")]
        tables = {r[0] for r in con.execute(
            "select table_name from duckdb_tables() where schema_name='analytics'").fetchall()}
        assert {"fct_chart_entries", "mart_daily_rankings", "mart_daily_country_summary", "mart_breakouts",
                "dim_apps", "dim_countries", "publish_log", "quarantine"} <= tables
    finally:
        con.close()


def test_demo_is_labelled_simulated(demo_home):
    from orchestration.lib import lake

    with lake.session(demo_home, read_only=True) as con:
        formats = {r[0] for r in con.execute("select distinct source_format from raw.chart_entries").fetchall()}
    assert formats and all(f.endswith("-simulated") for f in formats)


def test_rerun_with_unchanged_feeds_adds_no_raw_rows(demo_home):
    from orchestration.lib import lake

    with lake.session(demo_home, read_only=True) as con:
        before = con.execute("select count(*) from raw.chart_entries").fetchone()[0]
    assert run_chartlake(demo_home, "import", str(demo_home.root / "demo_payloads" / "2025-01-14")) == 0
    with lake.session(demo_home, read_only=True) as con:
        assert con.execute("select count(*) from raw.chart_entries").fetchone()[0] == before


def test_plain_dbt_cli_builds_against_the_same_lake(demo_home):
    dbt = Path(sys.executable).parent / "dbt"
    proc = subprocess.run([str(dbt), "build", "--exclude", "resource_type:unit_test"], cwd=DBT_PROJECT_DIR,
                          env={**os.environ, "CHARTLAKE_HOME": str(demo_home.root)},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "ERROR=0" in proc.stdout


def _serving(home):
    return duckdb.connect(str(home.serving_db), read_only=True)


def test_january_2025_story_in_the_published_marts(demo_home):
    """Issue 3's acceptance facts, read from what analysts see (the serving DB)."""
    con = _serving(demo_home)
    try:
        breakouts = con.execute("""select country, max(country_spread) from analytics.mart_breakouts
            where app_id = '741292507' and device = 'iphone' and chart = 'top-free'
              and breakout_date between date '2025-01-10' and date '2025-01-17'
            group by country order by country""").fetchall()
        countries = {c for c, _ in breakouts}
        assert {"us", "fr"} <= countries, breakouts
        assert all(spread >= 2 for c, spread in breakouts if c in ("us", "fr")), breakouts

        overtaken = con.execute("""select sum(watchlist_overtaken_count) from analytics.mart_daily_country_summary
            where country = 'us' and chart = 'top-free' and chart_date between date '2025-01-10' and date '2025-01-16'
        """).fetchone()[0]
        assert overtaken and overtaken > 0

        tiktok_exit = con.execute("""select min(chart_date) from analytics.mart_daily_country_summary
            where country = 'us' and device = 'iphone' and chart = 'top-free'
              and list_contains(chart_exited_app_ids, '835599320')""").fetchone()[0]
        assert str(tiktok_exit) in ("2025-01-18", "2025-01-19")
    finally:
        con.close()


def test_every_check_is_green_after_the_demo(demo_home):
    """Issue 7: after `make demo` the UI shows every check green, freshness included (the home replays its window)."""
    from orchestration.config import read_replay

    replay = read_replay(demo_home)
    assert replay is not None and (replay.start, replay.end) == (dt.date(2025, 1, 8), dt.date(2025, 1, 20))
    assert replay.countries == ("us", "fr", "gb", "ca")
    latest = latest_check_evaluations(demo_home)
    days = {(replay.start + dt.timedelta(days=n)).isoformat() for n in range((replay.end - replay.start).days + 1)}
    assert {partition for _, check, partition in latest if check == "raw_chart_quality"} == days  # each day's own
    names = {check for _, check, _ in latest}
    assert {"raw_chart_quality", "marts_quality", "serving_freshness"} <= names, names
    failed = sorted(k for k, passed in latest.items() if not passed)
    assert failed == [], failed


def _readme_analyst_queries() -> list[tuple[str, str]]:
    """(question, SQL) for every query in the README's analyst section, in order: the SQL analysts copy."""
    import re

    from orchestration.config import PROJECT_ROOT

    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## For analysts", 1)[1].split("\n## ", 1)[0]
    queries = []
    for block in re.findall(r"```sql\n(.*?)```", section, flags=re.S):
        for chunk in block.split(";"):
            lines = [ln for ln in chunk.strip().splitlines() if ln.strip()]
            question = " ".join(ln.strip("- ").strip() for ln in lines if ln.lstrip().startswith("--"))
            sql = "\n".join(ln for ln in lines if not ln.lstrip().startswith("--"))
            if sql:
                queries.append((question, sql))
    return queries


def test_readme_analyst_sql_runs_on_the_demo_and_gives_the_answers_it_states(demo_home):
    """Every query of the README's analyst section runs on the published demo and answers (no empty result); the
    cross-store answers the README states after them are the ones the queries give."""
    queries = _readme_analyst_queries()
    assert len(queries) >= 8, [q for q, _ in queries]
    con = _serving(demo_home)
    try:
        answers = {}
        for question, sql in queries:
            rows = con.execute(sql).fetchall()
            assert rows, f"README query answers nothing on the demo: {question}"
            answers[question] = rows
    finally:
        con.close()
    d = dt.date
    ranks = answers["Where did RedNote rank on each store, each day, in the US?"]
    by_day = {r[0]: r[1:3] for r in ranks}
    assert by_day[d(2025, 1, 12)] == (3, 48)
    assert all(by_day[d(2025, 1, day)] == (1, 1) for day in (15, 16, 17))
    both = answers["Did it break out on both stores, and how many days did Play follow the App Store?"]
    assert both == [
        ("Lemon8", "us", d(2025, 1, 12), d(2025, 1, 13), 1),
        ("RedNote (Xiaohongshu)", "ca", d(2025, 1, 12), d(2025, 1, 14), 2),
        ("RedNote (Xiaohongshu)", "fr", d(2025, 1, 14), d(2025, 1, 16), 2),
        ("RedNote (Xiaohongshu)", "gb", d(2025, 1, 12), d(2025, 1, 14), 2),
        ("RedNote (Xiaohongshu)", "us", d(2025, 1, 12), d(2025, 1, 14), 2),
    ]
    products = {r[0]: r for r in answers["One product, both stores: its id and current name on each"]}
    assert products["rednote"][1] == "741292507" and products["rednote"][3] == "com.xingin.xhs"
    assert products["rednote"][5] == 2


def test_cross_store_questions_in_the_published_marts(demo_home):
    """Issue 14: the demo publishes both stores, and RedNote's product row shows both."""
    con = _serving(demo_home)
    try:
        stores = con.execute("select store, device, count(distinct country) from analytics.fct_chart_entries "
                             "group by all order by all").fetchall()
        assert stores == [("apple", "ipad", 4), ("apple", "iphone", 4), ("google_play", "android", 4)]
        red = con.execute("select apple_app_id, google_play_app_id, stores_charted from analytics.dim_products "
                          "where product_id = 'rednote'").fetchall()
        assert red == [("741292507", "com.xingin.xhs", 2)]
        # Play follows the App Store by two days: its rank on day d is the App Store's of d - 2.
        ranks = dict(((d, (a, p)) for d, a, p in con.execute(
            "select chart_date, apple_rank, google_play_rank from analytics.mart_product_daily_ranks "
            "where product_id = 'rednote' and country = 'us' and chart = 'top-free'").fetchall()))
        for d in (dt.date(2025, 1, 14), dt.date(2025, 1, 15), dt.date(2025, 1, 16)):
            assert ranks[d][1] == ranks[d - dt.timedelta(days=2)][0], (d, ranks)
        both = con.execute("select country, apple_breakout_date, google_play_breakout_date, "
                           "google_play_days_after_apple from analytics.mart_product_breakouts "
                           "where product_id = 'rednote' and chart = 'top-free' and broke_out_on_both_stores "
                           "order by country").fetchall()
        assert "us" in {c for c, *_ in both} and all(lag == 2 for *_, lag in both), both
    finally:
        con.close()
