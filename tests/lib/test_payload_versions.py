"""raw.payload_versions: the raw layer's one version rule, on a real DuckLake through the real ingest.

Versions of a chart key are ordered by capture time (fetch time, or what the archive records), never by import
order; equal capture times fall to the payload hash; the current version is the newest one not quarantined.
"""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pytest

from orchestration.config import Home
from orchestration.lib import audit, ingest, lake, versions
from orchestration.lib.payload_store import PayloadStore
from orchestration.lib.versions.row_lineage import _raw_payloads
from tests.conftest import v2_payload

DAY = dt.date(2025, 1, 14)
APPS = [(str(400_000_000 + i), f"App {i}") for i in range(1, 6)]
KEY = "store = 'apple' and country = 'us' and chart_date = date '2025-01-14'"


def _import(home: Home, tmp_path, files: dict[str, bytes]) -> None:
    """Each file imported on its own, in the order given (as separate `chartlake import`s), then the day landed."""
    store = PayloadStore(home.raw)
    with lake.session(home) as con:
        for i, (name, content) in enumerate(files.items()):
            path = tmp_path / name
            path.write_bytes(content)
            (res,) = ingest.stage_files(con, store, [path], run_id=f"import-{i}")
            assert res.status == "staged", res.error
        ingest.land_day(con, store, DAY, run_id="land")


def _versions(home: Home) -> list[tuple]:
    with lake.session(home, read_only=True) as con:
        return con.execute(f"""select payload_sha256, captured_at, version_rank, is_current, is_quarantined, row_count
                               from raw.payload_versions where {KEY} order by version_rank""").fetchall()


def _current_app(home: Home) -> str:
    with lake.session(home, read_only=True) as con:
        rows = audit.current_raw_rows(con, DAY)
    return rows[rows["rank"] == 1]["app_id"].item()


def test_a_later_capture_wins_whatever_the_import_order(tmp_path):
    morning = v2_payload("us", "top-free", APPS, "2025-01-14T10:00:00Z")
    evening = v2_payload("us", "top-free", APPS[::-1], "2025-01-14T20:00:00Z")
    for order in ("evening first", "morning first"):
        home = Home(tmp_path / order.replace(" ", "_")).ensure()
        files = {"b.json": evening, "a.json": morning} if order == "evening first" else \
            {"a.json": morning, "b.json": evening}
        _import(home, tmp_path, files)
        got = _versions(home)
        assert [(str(c), r, cur) for _, c, r, cur, _, _ in got] == [
            ("2025-01-14 20:00:00", 1, True), ("2025-01-14 10:00:00", 2, False)], order
        assert _current_app(home) == APPS[-1][0], order
        with lake.session(home, read_only=True) as con:  # the registry and the rows both record it
            assert con.execute("select count(*) from raw.payloads where captured_at is null").fetchone()[0] == 0
            assert con.execute("select count(distinct captured_at) from raw.chart_entries").fetchone()[0] == 2


def test_a_time_in_the_file_name_is_the_capture_time(tmp_path):
    home = Home(tmp_path / "home").ensure()
    # The payload says 20:00, the scraper's name says 23:30: the archive's own record wins; without a time at
    # all, the chart date's midnight (never the import time).
    _import(home, tmp_path, {
        "us-scrape__2025-01-14T233000Z__aaa.json": v2_payload("us", "top-free", APPS, "2025-01-14T20:00:00Z"),
        "later-in-payload.json": v2_payload("us", "top-free", APPS[::-1], "2025-01-14T22:00:00Z"),
        "no-time.json": v2_payload("us", "top-free", APPS[1:], "2025-01-14"),
    })
    assert [(str(c), r) for _, c, r, *_ in _versions(home)] == [
        ("2025-01-14 23:30:00", 1), ("2025-01-14 22:00:00", 2), ("2025-01-14 00:00:00", 3)]
    assert _current_app(home) == APPS[0][0]


def test_equal_capture_times_fall_to_the_larger_payload_hash_in_any_order(tmp_path):
    a = v2_payload("us", "top-free", APPS, "2025-01-14")
    b = v2_payload("us", "top-free", APPS[::-1], "2025-01-14")
    winners = set()
    for i, files in enumerate(({"a.json": a, "b.json": b}, {"b.json": b, "a.json": a})):
        home = Home(tmp_path / f"h{i}").ensure()
        _import(home, tmp_path, files)
        got = _versions(home)
        assert got[0][1] == got[1][1] and got[0][0] > got[1][0]
        winners.add(got[0][0])
    assert len(winners) == 1


def test_a_quarantined_newer_payload_is_never_current_and_lineage_says_so(tmp_path):
    home = Home(tmp_path / "home").ensure()
    _import(home, tmp_path, {"old.json": v2_payload("us", "top-free", APPS, "2025-01-14T10:00:00Z"),
                             "new.json": v2_payload("us", "top-free", APPS[::-1], "2025-01-14T20:00:00Z")})
    newest, older = (sha for sha, *_ in _versions(home))
    with lake.session(home) as con:
        audit.record_quarantine(con, DAY, [audit.HeldBack("us", newest, "rank_unique_in_chart (2 unexpected)")],
                                run_id="check")
        snapshot = lake.current_snapshot(con)
    assert [(sha, r, cur, q) for sha, _, r, cur, q, _ in _versions(home)] == [
        (newest, 1, False, True), (older, 2, True, False)]
    assert _current_app(home) == APPS[0][0]
    with lake.session(home, read_only=True) as con:  # the raw check still judges the newest, quarantined or not
        assert set(audit.current_raw_rows(con, DAY, newest=True)["payload_sha256"]) == {newest}
        assert con.execute("select * from raw.quarantined_payloads").fetchall()[0][1:3] == ("us", newest)
    # Lineage of the mart row at rank 1: the payload the marts read is USED, the newer quarantined one is not.
    found = _raw_payloads(home, snapshot, {"country": "us", "chart_date": DAY, "app_id": APPS[0][0]})
    assert {p.payload_sha256: p.used for p in found} == {older: True, newest: False}


def test_an_older_home_gets_the_capture_column_and_the_view(tmp_path):
    home = Home(tmp_path / "home").ensure()
    with lake.session(home) as con:  # the raw layer as homes had it before capture times
        con.execute("create schema raw")
        con.execute("""create table raw.chart_entries as select 'apple' as store, 'us' as country, 'iphone' as device,
                       'top-free' as chart, cast(null as integer) as genre_id, date '2025-01-14' as chart_date,
                       r as rank, cast(r as varchar) as app_id, 'x' as app_name, null::varchar as developer_name,
                       null::varchar as developer_id, null::varchar as genre_name, null::date as release_date,
                       null::decimal(10,2) as price, null::varchar as currency, null::varchar as url,
                       sha as payload_sha256, 'u' as source_url, 'f' as source_format, t as fetched_at,
                       'run' as run_id, t as ingested_at
                       from (values (1, 'aaa', timestamp '2025-01-14 08:00'), (1, 'bbb', timestamp '2025-01-14 09:00'))
                            v(r, sha, t)""")
        con.execute("create table raw.payloads (payload_sha256 varchar, status varchar)")
        con.execute("create table raw.quarantined_payloads (chart_date date, country varchar, payload_sha256 varchar, "
                    "reason varchar, run_id varchar, checked_at timestamp)")
        con.execute("insert into raw.quarantined_payloads values "
                    "(date '2025-01-14', 'us', 'zzz', 'a reason of old', 'run', timestamp '2025-01-14 10:00')")
    with lake.session(home, read_only=True) as con:  # opened read-only before any write: the rule, inline
        assert con.execute(f"select payload_sha256 from {lake.versions_relation(con)} where is_current").fetchall() \
            == [("bbb",)]
    with lake.session(home) as con:
        lake.ensure_raw_schema(con)
        snap = lake.current_snapshot(con)
        lake.ensure_raw_schema(con)  # a second call changes nothing
        assert lake.current_snapshot(con) == snap
        assert con.execute("select payload_sha256, captured_at from raw.payload_versions where is_current").fetchall() \
            == [("bbb", dt.datetime(2025, 1, 14, 9))]  # no capture time recorded: the fetch time stands in
        assert "captured_at" in [r[0] for r in con.execute("describe raw.payloads").fetchall()]
        # The quarantine gets its chart key and scope columns; a row from before them holds back its country-day.
        assert [r[0] for r in con.execute("describe raw.quarantined_payloads").fetchall()][-5:] == \
            ["store", "device", "chart", "genre_id", "scope"]
        assert [(e["country"], e["scope"], e["store"], e["chart"], e["reason"]) for e in audit.quarantine_entries(con)] \
            == [("us", "country", None, None, "a reason of old")]


def test_a_quarantine_entry_takes_the_narrowest_scope_its_known_fields_allow():
    of = audit.HeldBack.of_known
    assert of("fr", "s", "r", store="google_play", device="android", chart="top-free") == audit.HeldBack(
        "fr", "s", "r", "google_play", "android", "top-free", None, "chart")
    assert of("fr", "s", "r", store="apple", device="iphone", chart="top-free", genre_id=6015.0).genre_id == 6015
    assert of("fr", "s", "r", store="apple", device=None, chart="top-free", genre_id=6015) == audit.HeldBack(
        "fr", "s", "r", "apple", scope="store")
    assert of("fr", None, "r") == audit.HeldBack("fr", None, "r", scope="country")
    with pytest.raises(ValueError, match="quarantine scope 'day'"):
        audit.HeldBack("fr", None, "r", scope="day")


def test_a_chart_date_filter_reaches_the_raw_scan(tmp_path):
    """Staging reads one day of the relation in an update: the filter must reach both raw scans, or a one-day
    update would re-run the version rule over all history."""
    home = Home(tmp_path / "home").ensure()
    store = PayloadStore(home.raw)
    with lake.session(home) as con:
        for d in (DAY, DAY + dt.timedelta(days=1)):
            path = tmp_path / f"us-{d}.json"
            path.write_bytes(v2_payload("us", "top-free", APPS, f"{d}T10:00:00Z"))
            ingest.stage_files(con, store, [path], run_id="import")
            ingest.land_day(con, store, d, run_id="land")
        for d in (DAY, DAY + dt.timedelta(days=1)):  # two dates each: a filter of one is not always true
            audit.record_quarantine(con, d, [audit.HeldBack("us", None, "test")], run_id="check")
    with lake.session(home, read_only=True) as con:
        plan = json.loads(con.execute("explain (format json) select * from raw.payload_versions "
                                      "where chart_date = date '2025-01-14'").fetchall()[0][1])
    scans = {}

    def walk(node):
        if node.get("name") == "DUCKLAKE_SCAN":
            scans[node["extra_info"]["Table"]] = node["extra_info"].get("Filters") or ""
        for child in node.get("children", []):
            walk(child)

    for node in plan:
        walk(node)
    assert set(scans) == {"chart_entries", "quarantined_payloads"}
    assert all("chart_date='2025-01-14'" in f for f in scans.values()), scans
