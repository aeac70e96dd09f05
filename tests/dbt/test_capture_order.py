"""Versions are ordered by capture time, through the real ingest and the dbt project, on the real JP Finance archive
(../shared/real_charts/ohbarye-finance-app-ranking: 67 scrapes, some Japanese days scraped twice).

- the marts rank each Japanese day as its latest scrape does (on 2024-12-30 JST the 09:11Z scrape, not 01:26Z);
- importing the files in reverse or shuffled order builds the same marts (the import time never decides);
- every name and developer an app was charted under, in any scrape, is in dim_apps verbatim.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from pathlib import Path

import pytest

from dbt_helpers import make_dbt_home
from orchestration.lib import ingest, lake
from orchestration.lib.payload_store import PayloadStore

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "real_charts" / "ohbarye-finance-app-ranking"
_SCRAPED = re.compile(r"__(\d{4}-\d{2}-\d{2})T(\d{2})(\d{2})(\d{2})Z__")
JST = dt.timezone(dt.timedelta(hours=9))
_ID = re.compile(r"/id(\d+)")

pytestmark = pytest.mark.slow


def _files() -> list[Path]:
    if not REAL.is_dir():
        pytest.skip(f"real chart archives not present at {REAL.resolve()} (see ../shared/real_charts/README.md)")
    return sorted((REAL / "snapshots").glob("*.json"))


def _scraped_at(path: Path) -> dt.datetime:
    m = _SCRAPED.search(path.name)
    return dt.datetime.fromisoformat(f"{m[1]}T{m[2]}:{m[3]}:{m[4]}+00:00")


def _build(root: Path, files: list[Path]):
    """Stage ``files`` in the given order (one import each, as separate `chartlake import`s would), land every
    date, build the dbt project."""
    h = make_dbt_home(root)
    store = PayloadStore(h.home.raw)
    with lake.session(h.home) as con:
        dates = set()
        for i, path in enumerate(files):
            for r in ingest.stage_files(con, store, [path], run_id=f"import-{i}"):
                assert r.status == "staged", (path, r.error)
                dates |= {k.chart_date for k in r.charts}
        for d in sorted(dates):
            ingest.land_day(con, store, d, run_id=f"land-{d}")
    h.dbt("build", "--exclude", "resource_type:unit_test")
    return h


@pytest.fixture(scope="module")
def jp_shuffled(tmp_path_factory):
    files = _files()
    random.Random(12).shuffle(files)
    return _build(tmp_path_factory.mktemp("jp_shuffled"), files)


def test_each_japanese_day_ranks_as_its_latest_scrape(jp_shuffled):
    latest: dict[dt.date, Path] = {}
    for path in _files():
        day = _scraped_at(path).astimezone(JST).date()
        if day not in latest or _scraped_at(path) > _scraped_at(latest[day]):
            latest[day] = path
    assert len(latest) < len(_files())  # some days were scraped twice: the case under test
    expected = {(day, int(e["rank"]), _ID.search(e["url"])[1])
                for day, path in latest.items() for e in json.loads(path.read_text())}
    got = set(jp_shuffled.query("select chart_date, rank, app_id from marts.mart_daily_rankings"))
    assert got == expected
    # The day the issue names: two scrapes on 2024-12-30 JST, 01:26Z and 09:11Z; the later one is published.
    (sha,) = {r[0] for r in jp_shuffled.query(
        "select distinct payload_sha256 from marts.fct_chart_entries where chart_date = '2024-12-30'")}
    versions = jp_shuffled.query("""select captured_at, payload_sha256, version_rank, is_current
                                    from raw.payload_versions where chart_date = '2024-12-30' order by version_rank""")
    assert [(str(c), cur) for c, _, _, cur in versions] == [("2024-12-30 09:11:01", True), ("2024-12-30 01:26:13", False)]
    assert versions[0][1] == sha


def test_every_name_and_developer_is_kept_verbatim(jp_shuffled):
    seen: dict[str, tuple[set, set]] = {}
    for path in _files():
        for e in json.loads(path.read_text()):
            names, devs = seen.setdefault(_ID.search(e["url"])[1], (set(), set()))
            names.add(e["title"].strip(" "))
            devs.add(e["developer"].strip(" "))
    got = {app: (set(n), set(d)) for app, n, d in jp_shuffled.query(
        "select app_id, any_value(known_names), any_value(known_developers) from marts.dim_apps group by app_id")}
    assert got == seen
    renamed = [app for app, (names, _) in seen.items() if len(names) > 1]
    assert renamed  # the archive has renamed apps: each keeps every name


CONTENT = {
    "marts.fct_chart_entries": "chart_id, chart_date, rank, app_id, app_name, developer_name, payload_sha256",
    "marts.mart_daily_rankings": "chart_id, chart_date, rank, app_id, previous_rank, days_in_chart, payload_sha256",
    "marts.dim_apps": "app_id, version_number, app_name, developer_name, valid_from, valid_to, known_names, "
                      "known_developers",
    "raw.payload_versions": "chart_date, payload_sha256, captured_at, version_rank, is_current",
}


def test_import_order_does_not_change_the_marts(jp_shuffled, tmp_path):
    # The first fortnight (several twice-scraped days), newest file first: the reverse of any natural order.
    files = [p for p in _files() if _scraped_at(p) < dt.datetime(2025, 1, 12, tzinfo=dt.timezone.utc)]
    reverse = _build(tmp_path / "reverse", files[::-1])
    shuffled = _build(tmp_path / "shuffled", random.Random(3).sample(files, len(files)))
    last = max(_scraped_at(p).astimezone(JST).date() for p in files)
    for rel, cols in CONTENT.items():
        where = "" if rel == "marts.dim_apps" else f"where chart_date <= '{last}'"
        a = reverse.query(f"select {cols} from {rel} {where} order by all")
        b = shuffled.query(f"select {cols} from {rel} {where} order by all")
        assert a == b and a, rel
        if rel != "marts.dim_apps":  # the full archive agrees on those days too
            assert jp_shuffled.query(f"select {cols} from {rel} {where} order by all") == a, rel


def test_a_one_day_read_of_staging_filters_the_raw_scans(jp_shuffled):
    """The staging performance property: a chart_date filter on staging reaches every raw scan under it."""
    with lake.session(jp_shuffled.home, read_only=True) as con:
        plan = json.loads(con.execute("explain (format json) select * from staging.stg_apple__chart_entries "
                                      "where chart_date = date '2025-01-14'").fetchall()[0][1])
    scans = []

    def walk(node):
        if node.get("name") == "DUCKLAKE_SCAN":
            scans.append((node["extra_info"]["Table"], node["extra_info"].get("Filters") or ""))
        for child in node.get("children", []):
            walk(child)

    for node in plan:
        walk(node)
    assert {t for t, _ in scans} == {"chart_entries", "quarantined_payloads"}
    assert all("chart_date='2025-01-14'" in f for t, f in scans if t == "chart_entries"), scans
