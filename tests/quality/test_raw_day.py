"""The raw suite over a whole day: every country in one run, each country judged (and quarantined) on its own rows."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import duckdb
import pandas as pd
import pytest

from conftest import DAY, raw_day, sha
from orchestration.lib.quality.raw import HISTORY_COLUMNS, read_history, run_raw_day, run_raw_suite
from tests.conftest import v2_payload

COUNTRIES = ("fr", "gb", "us")
YESTERDAY = DAY - dt.timedelta(days=1)


def failed(result) -> set[str]:
    return {o.name for o in result.blocking_failures}


def day_of(*frames: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def day():
    return day_of(*(raw_day(c) for c in COUNTRIES))


@pytest.fixture
def history():
    """A week before DAY for every country: the same charts, a different ranking each day."""
    week = [raw_day(c, DAY - dt.timedelta(days=n)) for n in range(1, 8) for c in COUNTRIES]
    return day_of(*week)[list(HISTORY_COLUMNS)]


def _in(df, country, chart="top-paid"):
    return df.index[(df["country"] == country) & (df["chart"] == chart)]


def test_clean_day_passes_every_country_in_one_run(day, history):
    check = run_raw_day(day, chart_date=DAY, history=history)
    assert check.error is None
    assert sorted(check.results) == list(COUNTRIES)
    for country, result in check.results.items():
        assert result.passed and not result.warnings, result.describe()
        assert result.partition == {"country": country, "chart_date": DAY.isoformat()}
        assert result.charts == [f"apple/{country}/iphone/{c}/{DAY}" for c in ("top-free", "top-paid")]
        # With history, the day-over-day rules ran for every country.
        assert {"ranking_differs_from_previous_day", "new_app_share_usual"} <= {o.name for o in result.outcomes}
    assert sorted(check.gx_results) == ["charts", "rows", "schema"]  # three validations, whatever the countries


def _duplicate_rank(df):
    df.loc[_in(df, "fr")[5], "rank"] = 5
    return 2


def _missing_ranks(df):
    return df.drop(_in(df, "fr")[[39, 40]])


def _duplicate_app(df):
    rows = _in(df, "fr")
    df.loc[rows[3], "app_id"] = df.loc[rows[0], "app_id"]
    return 2


def _bad_app_id(df):
    df.loc[_in(df, "fr")[[5, 6]], "app_id"] = ["id1234", "0000000001"]
    return 2


def _date_off_by_two(df):
    df.loc[_in(df, "fr"), "chart_date"] = pd.Timestamp(DAY - dt.timedelta(days=2))
    return 100


def _cut_to_ten(df):
    return df.drop(_in(df, "fr")[10:])


def _rank_out_of_range(df):
    df.loc[_in(df, "fr")[99], "rank"] = 250
    return 1


DEFECTS = {
    "duplicate_rank": (_duplicate_rank, "rank_unique_in_chart"),
    "missing_ranks": (_missing_ranks, "rank_within_chart_size"),
    "duplicate_app": (_duplicate_app, "app_unique_in_chart"),
    "bad_app_id": (_bad_app_id, "app_id_well_formed"),
    "date_off_by_two": (_date_off_by_two, "chart_date_within_a_day"),
    "cut_to_ten": (_cut_to_ten, "chart_depth_at_least_expected"),
    "rank_out_of_range": (_rank_out_of_range, "rank_positive"),
}


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_a_defect_in_one_country_fails_only_that_country(day, history, defect):
    make, rule = DEFECTS[defect]
    bad = day.copy()
    changed = make(bad)
    bad = changed if isinstance(changed, pd.DataFrame) else bad
    fr_paid = bad.loc[_in(bad, "fr")]
    check = run_raw_day(bad.reset_index(drop=True), chart_date=DAY, history=history)
    fr = check.results["fr"]
    assert rule in failed(fr), fr.describe()
    # The same frame checked alone under run_raw_suite gives the same verdict: the split loses nothing.
    alone = run_raw_suite(bad[bad["country"] == "fr"].reset_index(drop=True), country="fr", chart_date=DAY,
                          expected_depth={"iphone/top-free": 100, "iphone/top-paid": 100})
    assert failed(fr) == failed(alone)
    assert fr.outcome(rule).unexpected_count == alone.outcome(rule).unexpected_count
    if isinstance(changed, int):
        assert fr.outcome(rule).unexpected_count == changed
    assert fr.failed_charts == [fr_paid["chart_date"].dt.strftime("apple/fr/iphone/top-paid/%Y-%m-%d").iloc[0]]
    assert fr.failed_payloads == sorted(set(fr_paid["payload_sha256"])) or fr.outcome(rule).charts is None
    for country in ("gb", "us"):
        other = check.results[country]
        assert other.passed, other.describe()
        assert other.outcome(rule).success and other.outcome(rule).unexpected_count == 0
        assert other.failed_charts == [] and other.failed_payloads == []


def test_values_and_counts_are_split_per_country(day):
    bad = day.copy()
    bad.loc[_in(bad, "fr")[[1, 2]], "app_id"] = ["x1", "x2"]
    bad.loc[_in(bad, "us", "top-free")[7], "app_id"] = "x3"
    check = run_raw_day(bad, chart_date=DAY)
    fr, us = check.results["fr"].outcome("app_id_well_formed"), check.results["us"].outcome("app_id_well_formed")
    assert (fr.unexpected_count, sorted(fr.unexpected_values)) == (2, ["x1", "x2"])
    assert (us.unexpected_count, us.unexpected_values) == (1, ["x3"])
    assert us.charts == [f"apple/us/iphone/top-free/{DAY}"]
    assert check.results["gb"].passed


def test_frozen_feed_and_warnings_stay_with_their_country(day, history):
    frozen = raw_day("gb", DAY, shift=YESTERDAY.toordinal())  # yesterday's gb ranking again
    other = raw_day("us")
    other.loc[other["chart"] == "top-free", "app_id"] = [str(900_000_000 + i) for i in range(100)]
    check = run_raw_day(day_of(raw_day("fr"), frozen, other), chart_date=DAY, history=history)
    gb = check.results["gb"]
    assert failed(gb) == {"ranking_differs_from_previous_day"}
    assert gb.outcome("ranking_differs_from_previous_day").unexpected_count == 2
    us = check.results["us"]
    assert us.passed and [o.name for o in us.warnings] == ["new_app_share_usual"]
    assert us.outcome("new_app_share_usual").unexpected_values == [1.0]
    assert check.results["fr"].passed and not check.results["fr"].warnings


def test_expected_depth_comes_from_each_countrys_own_history(history):
    # gb served 200-entry paid charts all week; today it serves 100: cut short. fr always served 100.
    deep = day_of(*(raw_day("gb", DAY - dt.timedelta(days=n), charts=[("iphone", "top-paid")], depth=200)
                    for n in range(1, 8)))[list(HISTORY_COLUMNS)]
    today = day_of(raw_day("fr", charts=[("iphone", "top-paid")]), raw_day("gb", charts=[("iphone", "top-paid")]))
    hist = day_of(history[history["country"] == "fr"], deep)
    check = run_raw_day(today, chart_date=DAY, history=hist)
    assert failed(check.results["gb"]) == {"chart_depth_at_least_expected"}
    assert check.results["fr"].passed, check.results["fr"].describe()


def test_usual_depth_counts_positions_not_the_rows_left_after_dropped_repeats():
    # Found importing the real Play files on consecutive days: yesterday's chart listed 200 positions of which 4 were
    # recorded repeats (196 rows, ranks up to 200); today's lists 200 distinct apps. Its depth is what Play served,
    # not "more entries than requested": today must pass, and the expected depth is 200.
    from orchestration.lib.quality.raw import usual_depths

    yesterday = raw_day("fr", YESTERDAY, charts=[("iphone", "top-free")], depth=200)
    yesterday = yesterday[~yesterday["rank"].isin([17, 58, 121, 180])][list(HISTORY_COLUMNS)]
    assert len(yesterday) == 196 and usual_depths(yesterday) == {"fr": {"iphone/top-free": 200}}
    today = raw_day("fr", charts=[("iphone", "top-free")], depth=200)
    check = run_raw_day(today, chart_date=DAY, history=yesterday)
    assert check.results["fr"].passed, check.results["fr"].describe()


def test_a_frame_wide_failure_fails_every_country(day):
    check = run_raw_day(day.assign(rank=day["rank"].astype(str)), chart_date=DAY)
    for result in check.results.values():
        assert "column_types" in failed(result)
        assert result.failed_charts == result.charts  # not attributable to a chart: the whole country-day


def test_suite_error_fails_every_country_and_an_empty_day_has_none(day):
    broken = run_raw_day(day, chart_date="not a date")
    assert broken.error and "chart_date" in broken.error
    assert sorted(broken.results) == list(COUNTRIES)
    assert all(not r.passed and r.error == broken.error for r in broken.results.values())
    empty = run_raw_day(day.iloc[0:0], chart_date=DAY)
    assert empty.error is None and empty.results == {}


def test_save_writes_each_country_and_the_days_gx_pages_once(day, tmp_path):
    bad = day.copy()
    bad.loc[_in(bad, "us")[0], "app_id"] = "x"
    run_raw_day(bad, chart_date=DAY).save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{c}.{ext}" for c in COUNTRIES for ext in ("json", "html")] + ["day.gx"])
    assert sorted(p.name for p in (tmp_path / "day.gx").iterdir()) == ["charts.html", "rows.html", "schema.html"]
    us = json.loads((tmp_path / "us.json").read_text())
    assert us["passed"] is False and us["blocking_failures"] == ["app_id_well_formed"]
    assert json.loads((tmp_path / "fr.json").read_text())["passed"] is True
    page = (tmp_path / "us.html").read_text()
    assert "FAILED" in page and "day.gx/rows.html" in page


def test_read_history_reads_the_current_version_of_the_week_before(tmp_path):
    days = [DAY - dt.timedelta(days=n) for n in range(0, 9)]
    raw = day_of(*(raw_day("us", d, depth=5) for d in days))
    # A later fetch of yesterday's top-free chart replaces the first one; the first must not be read.
    refetch = raw_day("us", YESTERDAY, charts=[("iphone", "top-free")], depth=5, shift=3)
    refetch["payload_sha256"] = sha("refetch")
    refetch["fetched_at"] += pd.Timedelta(hours=8)
    raw = day_of(raw, refetch)
    con = duckdb.connect(str(tmp_path / "lake.duckdb"))
    con.execute("create schema raw")
    con.register("frame", raw)
    con.execute("create table raw.chart_entries as select * from frame")
    con.execute("create table raw.quarantined_payloads (chart_date date, country varchar, payload_sha256 varchar, "
                "reason varchar, run_id varchar, checked_at timestamp)")
    history = read_history(con, DAY)
    assert list(history.columns) == list(HISTORY_COLUMNS)
    dates = sorted({d.date() for d in history["chart_date"]})
    assert dates == [DAY - dt.timedelta(days=n) for n in range(7, 0, -1)]  # the week before, not the day itself
    yesterday_free = history[(history["chart_date"] == pd.Timestamp(YESTERDAY)) & (history["chart"] == "top-free")]
    assert set(yesterday_free["payload_sha256"]) == {sha("refetch")} and len(yesterday_free) == 5


def test_the_quarantine_asset_holds_back_only_the_bad_country(home, tmp_path):
    """The quarantine asset and its check on a real lake: fr's feed lists an app twice on the second day; gb and
    us go on, and fr's bad payload is never the current version."""
    from orchestration.defs.raw.assets import RawLoadConfig, raw_chart_entries
    from orchestration.defs.raw.quarantine import raw_quarantined_payloads
    from orchestration.defs.resources import AppleFeeds, ChartlakeHome, PlayFeeds
    from orchestration.lib import audit, ingest, lake
    from orchestration.lib.payload_store import PayloadStore

    apps = [(str(300_000_000 + i), f"App {i}") for i in range(1, 21)]
    files = {}
    for d, order in ((YESTERDAY, apps), (DAY, apps[::-1])):
        for country in COUNTRIES:
            listed = list(order)
            if country == "fr" and d == DAY:
                listed[5] = listed[2]  # the same app at #3 and #6
            files[f"{country}-iphone-top-free-{d}.json"] = v2_payload(country, "top-free", listed, f"{d}T10:00:00Z")
    paths = []
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        paths.append(tmp_path / name)
    with lake.session(home) as con:
        ingest.stage_files(con, PayloadStore(home.raw), paths, run_id="import")
    instance = dg.DagsterInstance.ephemeral()
    for d in (YESTERDAY, DAY):
        res = dg.materialize(
            [raw_chart_entries, raw_quarantined_payloads], partition_key=d.isoformat(), instance=instance,
            resources={"chartlake": ChartlakeHome(path=str(home.root)), "apple_feeds": AppleFeeds(),
                   "play_feeds": PlayFeeds()},
            run_config=dg.RunConfig({"raw__chart_entries": RawLoadConfig(fetch=False)}), raise_on_error=False,
        )
        assert res.success
    evaluation = res.get_asset_check_evaluations()[0]
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    assert not evaluation.passed
    assert meta["countries_checked"] == 3 and meta["quarantined_countries"] == ["fr"]
    (entry,) = meta["quarantine"]
    assert entry["country"] == "fr" and "app_unique_in_chart" in entry["reason"]
    assert entry["charts"] == [f"apple/fr/iphone/top-free/{DAY}"]
    assert "passed" in meta["results"]["gb"] and "FAILED" in meta["results"]["fr"]
    out = home.quality / "raw" / DAY.isoformat()
    assert {p.name for p in out.iterdir()} >= {"fr.json", "gb.json", "us.json", "fr.html", "day.gx"}
    assert not (out / "quarantine.json").exists()  # one store: the lake table
    (bad,) = entry["payload_sha256"]
    with lake.session(home, read_only=True) as con:
        held = con.execute("select country, payload_sha256 from raw.quarantined_payloads where chart_date = ?",
                           [DAY]).fetchall()
        versions = con.execute("""select country, payload_sha256, is_quarantined, is_current, version_rank
                                  from raw.payload_versions where chart_date = ? order by country""", [DAY]).fetchall()
        assert [e["country"] for e in audit.quarantine_entries(con, DAY)] == ["fr"]
    assert held == [("fr", bad)]
    assert [(c, q, cur, r) for c, _, q, cur, r in versions] == [
        ("fr", True, False, 1), ("gb", False, True, 1), ("us", False, True, 1)]
    assert versions[0][1] == bad
    # The materialization is the store's new state; the check only reports it.
    (mat,) = [m for m in res.get_asset_materialization_events()
              if m.asset_key == dg.AssetKey(["raw", "quarantined_payloads"])]
    assert mat.materialization.metadata["payloads_quarantined"].value == 1


def _file_sourced(df):
    # An archive file names no limit in its source_url (app-tracker: file://.../2026-07-28.json).
    return df.assign(source_url="file:///archive/day.json")


def test_a_chart_one_deeper_than_all_week_passes_and_a_merged_one_fails():
    # Found publishing app-tracker's 184 days: `in` served 99 entries for weeks (limit=200 asked), then 100 on
    # 2026-07-28 and most days of August; the week's 99 as a ceiling quarantined all of them.
    week = day_of(*(_file_sourced(raw_day("fr", DAY - dt.timedelta(days=n), charts=[("iphone", "top-free")],
                                          depth=99)) for n in range(1, 8)))[list(HISTORY_COLUMNS)]
    deeper = _file_sourced(raw_day("fr", charts=[("iphone", "top-free")], depth=100))
    check = run_raw_day(deeper, chart_date=DAY, history=week)
    assert check.results["fr"].passed, check.results["fr"].describe()
    merged = _file_sourced(raw_day("fr", charts=[("iphone", "top-free")], depth=198))
    assert failed(run_raw_day(merged, chart_date=DAY, history=week).results["fr"]) == {"chart_depth_at_most_expected"}


def test_a_chart_deeper_than_its_url_asked_for_fails_whatever_the_week():
    # Apple v2 asked for 99 (/99/apps.json) all week; 100 entries is more than requested, not a deeper feed.
    week = day_of(*(raw_day("fr", DAY - dt.timedelta(days=n), charts=[("iphone", "top-free")], depth=99)
                    for n in range(1, 8)))[list(HISTORY_COLUMNS)]
    over = raw_day("fr", charts=[("iphone", "top-free")], depth=100)
    over["source_url"] = over["source_url"].str.replace("/100/apps.json", "/99/apps.json")
    assert failed(run_raw_day(over, chart_date=DAY, history=week).results["fr"]) == {"chart_depth_at_most_expected"}
