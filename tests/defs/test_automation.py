"""The daily schedule, the inbox sensor and the serving freshness check, through Dagster's own test contexts."""

from __future__ import annotations

import datetime as dt
import json
import os
import time

import dagster as dg
import pytest

from orchestration.defs.publish.checks import evaluate_freshness, freshness_job, freshness_schedule, serving_freshness
from orchestration.defs.raw.assets import RawLoadConfig, raw_chart_entries
from orchestration.defs.raw.schedules import DEFAULT_FETCH_CRON, build_daily_schedule, daily_job
from orchestration.defs.raw.sensors import inbox_sensor
from orchestration.defs.resources import AppleFeeds, ChartlakeHome, PlayFeeds, ServingFreshness
from orchestration.lib import lake, serving
from tests.conftest import v2_payload

UTC = dt.timezone.utc
APPS = [("741292507", "REDnote"), ("835599320", "TikTok"), ("389801252", "Instagram")]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
FETCH = {"ops": {"raw__chart_entries": {"config": {"fetch": True}}}}
# The schedule as the definitions build it, at the default time (the cron's variable has its own test).
daily_schedule = build_daily_schedule(DEFAULT_FETCH_CRON)


# --- daily schedule ----------------------------------------------------------------------------------------------


def _requests(result) -> list[dg.RunRequest]:
    if result is None or isinstance(result, dg.SkipReason):
        return []
    if isinstance(result, dg.RunRequest):
        return [result]
    if isinstance(result, dg.SensorResult):
        return list(result.run_requests or [])
    return list(result or [])


def test_schedule_requests_the_ticks_utc_date_with_fetch_on():
    feeds = AppleFeeds(countries="us,fr", charts="iphone:top-free,ipad:top-grossing")
    # 06:15 UTC on the 14th is still the 13th in New York: the partition must follow UTC.
    ctx = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2025, 1, 14, 6, 15, tzinfo=UTC), resources={"apple_feeds": feeds})
    (req,) = _requests(daily_schedule(ctx))
    assert req.partition_key == "2025-01-14"
    assert req.run_config == FETCH
    assert req.run_key == "daily:2025-01-14"
    assert req.tags["chartlake/countries"] == "us,fr"
    assert req.tags["chartlake/charts"] == "iphone:top-free,ipad:top-grossing"

    late = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2025, 1, 14, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        resources={"apple_feeds": feeds})
    assert _requests(daily_schedule(late))[0].partition_key == "2025-01-15"


def test_schedule_with_no_storefront_skips():
    ctx = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2025, 1, 14, 6, 15, tzinfo=UTC),
                                    resources={"apple_feeds": AppleFeeds(countries=" , ")})
    assert isinstance(daily_schedule(ctx), dg.SkipReason)


def test_schedule_cron_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("CHARTLAKE_FETCH_CRON", raising=False)
    default = build_daily_schedule()
    assert default.cron_schedule == DEFAULT_FETCH_CRON and default.execution_timezone == "UTC"
    monkeypatch.setenv("CHARTLAKE_FETCH_CRON", "30 4 * * *")
    assert build_daily_schedule().cron_schedule == "30 4 * * *"
    monkeypatch.setenv("CHARTLAKE_FETCH_CRON", "every morning")
    with pytest.raises(ValueError, match="CHARTLAKE_FETCH_CRON='every morning'"):
        build_daily_schedule()


@pytest.fixture(scope="module")
def merged_defs() -> dg.Definitions:
    """The project's Definitions plus this module's objects, as the lead will register them."""
    from orchestration.definitions import defs

    return dg.Definitions.merge(defs, dg.Definitions(
        jobs=[daily_job, freshness_job], schedules=[freshness_schedule], sensors=[inbox_sensor],
        asset_checks=[serving_freshness]))


def test_daily_job_covers_every_asset_and_accepts_the_schedules_config(merged_defs):
    dg.Definitions.validate_loadable(merged_defs)
    job = merged_defs.resolve_job_def("daily_job")
    selected = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {"raw/chart_entries", "marts/mart_daily_rankings", "serving/chartlake"} <= selected
    # Fetch, build, publish, then the freshness check on what was published.
    assert {"raw__chart_entries", "serving__chartlake", "serving__chartlake_serving_freshness"} <= set(
        job.graph.node_dict)
    assert dg.validate_run_config(job, FETCH)["ops"]["raw__chart_entries"]["config"]["fetch"] is True
    assert merged_defs.resolve_sensor_def("inbox_sensor").job_name == "raw_job"
    assert merged_defs.resolve_schedule_def("freshness_schedule").job_name == "freshness_job"


# --- inbox sensor ------------------------------------------------------------------------------------------------


def _drop(home, name: str, content: bytes, age_seconds: float = 60) -> None:
    path = home.inbox / name
    path.write_bytes(content)
    past = time.time() - age_seconds
    os.utime(path, (past, past))


def _evaluate(home, cursor=None):
    ctx = dg.build_sensor_context(cursor=cursor, resources={"chartlake": ChartlakeHome(path=str(home.root))})
    return inbox_sensor(ctx)


def test_inbox_sensor_stages_moves_and_requests_each_date_once(home):
    us = v2_payload("us", "top-free", APPS)
    fr = v2_payload("fr", "top-free", list(reversed(APPS)))
    _drop(home, "us-2025-01-14.json", us)
    _drop(home, "fr-2025-01-14.json", fr)
    _drop(home, "notes.json", b"this is not JSON")
    _drop(home, "other.json", json.dumps({"hello": "an unknown layout"}).encode())
    _drop(home, "copying.json", us, age_seconds=0)  # still being written: left alone
    _drop(home, ".hidden.json", us)
    # A name already taken in processed/ gets a suffix instead of being overwritten.
    (home.inbox / "processed").mkdir()
    (home.inbox / "processed" / "us-2025-01-14.json").write_bytes(b"older file")

    result = _evaluate(home)
    assert isinstance(result, dg.SensorResult)
    (req,) = result.run_requests  # both good files hold 2025-01-14: one run for the day
    assert req.partition_key == "2025-01-14"
    assert req.run_key.startswith("inbox:2025-01-14:")

    processed, rejected = home.inbox / "processed", home.inbox / "rejected"
    assert (processed / "us-2025-01-14.json").read_bytes() == b"older file"
    assert (processed / "us-2025-01-14.1.json").read_bytes() == us
    assert (processed / "fr-2025-01-14.json").read_bytes() == fr
    assert sorted(p.name for p in rejected.iterdir()) == [
        "notes.json", "notes.json.reason.txt", "other.json", "other.json.reason.txt"]
    reason = (rejected / "notes.json.reason.txt").read_text()
    assert "file: notes.json" in reason and "payload_sha256: " in reason and "reason: " in reason
    assert sorted(p.name for p in home.inbox.iterdir() if p.is_file()) == [".hidden.json", "copying.json"]

    cursor = json.loads(result.cursor)
    assert sorted(cursor["done"].values()) == ["processed", "processed", "rejected", "rejected"]

    with lake.session(home, read_only=True) as con:
        rows = con.execute(
            "select country, status, error, payload_sha256 from raw.payloads order by status, country").fetchall()
    staged = [(c, s) for c, s, _, _ in rows if s == "staged"]
    failed = [(e, h) for _, s, e, h in rows if s == "failed"]
    assert staged == [("fr", "staged"), ("us", "staged")]
    assert len(failed) == 2 and all(h in cursor["done"] for _, h in failed)
    assert any("notes.json" in e for e, _ in failed)

    # Same state again: nothing new, nothing requested.
    again = _evaluate(home, result.cursor)
    assert isinstance(again, dg.SkipReason)

    # The same content dropped under another name is recognised, filed, and not requested again.
    _drop(home, "us-again.json", us)
    dup = _evaluate(home, result.cursor)
    assert not _requests(dup)
    assert (processed / "us-again.json").read_bytes() == us

    # The requested run lands both countries' charts.
    res = dg.materialize(
        [raw_chart_entries], partition_key=req.partition_key,
        resources={"chartlake": ChartlakeHome(path=str(home.root)), "apple_feeds": AppleFeeds(),
                   "play_feeds": PlayFeeds()},
        run_config=dg.RunConfig({"raw__chart_entries": RawLoadConfig()}))
    assert res.success
    with lake.session(home, read_only=True) as con:
        landed = dict(con.execute(
            "select country, count(*) from raw.chart_entries where chart_date = '2025-01-14' group by 1").fetchall())
    assert landed == {"us": 3, "fr": 3}


def test_inbox_sensor_with_empty_inbox_skips(home):
    assert isinstance(_evaluate(home), dg.SkipReason)


# --- freshness check ---------------------------------------------------------------------------------------------


def _publish_rankings(home, rows: list[tuple[str, dt.date]], play: list[tuple[str, dt.date]] = ()) -> None:
    """A serving file whose ``mart_daily_rankings`` holds one #1 row per (country, chart_date): Apple's without a
    store column (a file from before Play), or, when ``play`` rows are given, both stores with one."""
    with lake.session(home) as con:
        con.execute("BEGIN")
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        store = "store VARCHAR, " if play else ""
        con.execute(f"CREATE OR REPLACE TABLE marts.mart_daily_rankings ({store}country VARCHAR, chart_date DATE, "
                    "device VARCHAR, chart VARCHAR, rank INTEGER, app_id VARCHAR)")
        if play:
            con.executemany("INSERT INTO marts.mart_daily_rankings VALUES (?, ?, ?, ?, 'top-free', 1, ?)",
                            [("apple", c, d, "iphone", "741292507") for c, d in rows]
                            + [("google_play", c, d, "android", "com.xingin.xhs") for c, d in play])
        else:
            con.executemany("INSERT INTO marts.mart_daily_rankings VALUES (?, ?, 'iphone', 'top-free', 1, "
                            "'741292507')", rows)
        lake.set_commit_message(con, "fake marts")
        con.execute("COMMIT")
        snapshot = lake.current_snapshot(con)
    serving.publish(
        home, lake_snapshot_id=snapshot,
        marts={"mart_daily_rankings": serving.MartSpec("marts.mart_daily_rankings", ("country", "chart_date"))},
        run_id="test", quarantined=[], check_summary={}, descriptions={})


def _check(home, countries: str, freshness: ServingFreshness | None = None,
           play_countries: str = "us") -> dg.AssetCheckResult:
    return serving_freshness(chartlake=ChartlakeHome(path=str(home.root)), apple_feeds=AppleFeeds(countries=countries),
                             play_feeds=PlayFeeds(countries=play_countries), freshness=freshness or ServingFreshness())


def test_freshness_judges_each_store_it_is_told_to_on_its_own(home, monkeypatch):
    """Fresh Apple charts say nothing about Play's: a judged store's storefronts are each judged on that store's
    rows. Play is judged only when asked (its fetch is off by default)."""
    monkeypatch.delenv("CHARTLAKE_FRESHNESS_HOURS", raising=False)
    monkeypatch.delenv("CHARTLAKE_FRESHNESS_STORES", raising=False)
    today = dt.datetime.now(UTC).date()
    _publish_rankings(home, [("us", today), ("fr", today)], play=[("us", dt.date(2025, 1, 13)), ("fr", today)])

    apple_only = _check(home, "us,fr", play_countries="us,fr")
    assert apple_only.passed is True and apple_only.metadata["countries_expected"].value == ["us", "fr"]

    both = _check(home, "us,fr", ServingFreshness(stores="apple,google_play"), play_countries="us,fr,de")
    assert both.passed is False
    assert both.metadata["countries_expected"].value == ["us", "fr", "google_play/us", "google_play/fr",
                                                         "google_play/de"]
    assert both.metadata["stale_countries"].value == ["google_play/de", "google_play/us"]
    assert both.metadata["newest_chart_date"].value["google_play/us"] == "2025-01-13"
    assert "google_play/us (newest 2025-01-13" in both.description and "google_play/de (no rows)" in both.description

    monkeypatch.setenv("CHARTLAKE_FRESHNESS_STORES", "google_play")
    assert _check(home, "us", play_countries="fr").passed is True
    assert _check(home, "us", play_countries="us").metadata["stale_countries"].value == ["google_play/us"]
    monkeypatch.setenv("CHARTLAKE_FRESHNESS_STORES", "apple,itunes")
    with pytest.raises(ValueError, match="CHARTLAKE_FRESHNESS_STORES='apple,itunes': expected"):
        _check(home, "us")


def test_freshness_fails_without_a_serving_file(home):
    result = _check(home, "us,fr")
    assert result.passed is False
    assert "no serving file" in result.description
    assert result.metadata["stale_countries"].value == ["us", "fr"]


def test_freshness_passes_when_fresh_and_names_the_stale_storefronts(home, monkeypatch, merged_defs):
    monkeypatch.delenv("CHARTLAKE_FRESHNESS_HOURS", raising=False)
    today = dt.datetime.now(UTC).date()
    _publish_rankings(home, [("us", today), ("us", today - dt.timedelta(days=1)), ("fr", today),
                             ("gb", dt.date(2025, 1, 13))])

    fresh = _check(home, "us,fr")
    assert fresh.passed is True
    assert fresh.metadata["newest_chart_date"].value["us"] == today.isoformat()
    assert fresh.metadata["stale_countries"].value == []

    stale = _check(home, "us,fr,gb,de")  # gb is old, de was never published
    assert stale.passed is False
    assert stale.metadata["stale_countries"].value == ["de", "gb"]
    assert stale.metadata["newest_chart_date"].value["gb"] == "2025-01-13"
    assert "gb (newest 2025-01-13" in stale.description and "de (no rows)" in stale.description

    # The allowed age is read when the check runs.
    monkeypatch.setenv("CHARTLAKE_FRESHNESS_HOURS", str(24 * 365 * 100))
    assert _check(home, "us,gb").passed is True
    monkeypatch.setenv("CHARTLAKE_FRESHNESS_HOURS", "36")

    # As a Dagster run on its own (the hourly freshness_schedule): the run succeeds, the check fails.
    run = merged_defs.resolve_job_def("freshness_job").execute_in_process(
        resources={"chartlake": ChartlakeHome(path=str(home.root)), "apple_feeds": AppleFeeds(countries="us,gb")},
        instance=dg.DagsterInstance.ephemeral(), run_config=QUIET)
    (evaluation,) = run.get_asset_check_evaluations()
    assert evaluation.check_name == "serving_freshness" and evaluation.passed is False
    assert evaluation.metadata["stale_countries"].value == ["gb"]

    monkeypatch.setenv("CHARTLAKE_FRESHNESS_HOURS", "soon")
    with pytest.raises(ValueError, match="CHARTLAKE_FRESHNESS_HOURS='soon'"):
        _check(home, "us")
    # A value set on the resource wins over the variable (and is checked the same way).
    assert _check(home, "us,gb", ServingFreshness(max_age_hours=24 * 365 * 100)).passed is True
    with pytest.raises(ValueError, match="ServingFreshness.max_age_hours='-1.0' must be a positive"):
        _check(home, "us", ServingFreshness(max_age_hours=-1))


def test_a_replay_home_is_judged_at_its_own_clock_and_storefronts(home, monkeypatch):
    """`chartlake demo` marks its home as a replay of January 2025: checks green after the demo, not stale forever."""
    from orchestration.config import Replay

    monkeypatch.delenv("CHARTLAKE_FRESHNESS_HOURS", raising=False)
    _publish_rankings(home, [("us", dt.date(2025, 1, 31)), ("fr", dt.date(2025, 1, 31)), ("gb", dt.date(2025, 1, 29))])
    assert _check(home, "us,fr").passed is False  # a live home: January 2025 is long stale

    Replay.for_window(home, dt.date(2025, 1, 1), dt.date(2025, 1, 31), ["us", "fr"]).write()
    replayed = _check(home, "us,fr,de,jp")  # the replay's storefronts win over the configured ones
    assert replayed.passed is True, replayed.description
    assert replayed.metadata["countries_expected"].value == ["us", "fr"]
    assert replayed.metadata["age_hours"].value == {"us": 30.25, "fr": 30.25}
    assert replayed.metadata["clock"].text.startswith("replay 2025-02-01T06:15")

    # gb's feed stopped two days before the replay's end: stale at the replay's clock too.
    Replay.for_window(home, dt.date(2025, 1, 1), dt.date(2025, 1, 31), ["us", "fr", "gb"]).write()
    stale = _check(home, "us")
    assert stale.passed is False and stale.metadata["stale_countries"].value == ["gb"]

    home.replay_file.write_text('{"start": "2025-01-01"}')
    with pytest.raises(ValueError, match="replay.json: not a valid replay file"):
        _check(home, "us")
    home.replay_file.unlink()
    assert _check(home, "us,fr").passed is False  # back on the wall clock


def test_freshness_age_counts_from_the_start_of_the_chart_day():
    newest = {"us": dt.date(2025, 1, 14)}
    ok, ages = evaluate_freshness(newest, ["us"], 36, dt.datetime(2025, 1, 15, 11, 59, tzinfo=UTC))
    assert ok == [] and ages["us"] == pytest.approx(35.98, abs=0.01)
    late, _ = evaluate_freshness(newest, ["us"], 36, dt.datetime(2025, 1, 15, 12, 1, tzinfo=UTC))
    assert late == ["us"]


def test_inbox_file_that_crashes_staging_is_retried_then_rejected(home, monkeypatch):
    import orchestration.defs.raw.sensors as sensors

    def broken(*args, **kwargs):
        raise RuntimeError("lake unavailable")

    monkeypatch.setattr(sensors.ingest, "stage_files", broken)
    _drop(home, "us-2025-01-14.json", v2_payload("us", "top-free", APPS))
    cursor = None
    for attempt in range(1, sensors.MAX_ATTEMPTS):
        result = _evaluate(home, cursor)
        cursor = result.cursor
        assert (home.inbox / "us-2025-01-14.json").exists(), f"moved after attempt {attempt}"
        assert list(json.loads(cursor)["attempts"].values()) == [attempt]
    result = _evaluate(home, cursor)
    assert not _requests(result)
    reason = (home.inbox / "rejected" / "us-2025-01-14.json.reason.txt").read_text()
    assert f"raised RuntimeError {sensors.MAX_ATTEMPTS} times: lake unavailable" in reason
    assert json.loads(result.cursor)["attempts"] == {}
