"""Issue 4's acceptance: a defect injected into one chart of a country's day is quarantined with its reason, every
other chart and country publishes, the raw payload is kept, and that chart's previously published rows stay."""

import json
import shutil

import duckdb
import pytest

from tests.conftest import run_chartlake
from orchestration.config import Home
from orchestration.lib.payload_store import PayloadStore, sha256_hex

pytestmark = pytest.mark.slow

DAY = "2025-01-14"
PREVIOUS_DAY = "2025-01-13"


_chartlake = run_chartlake


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """Publish 1 of a small demo slice; each test works on its own copy of this home."""
    home = Home(tmp_path_factory.mktemp("quarantine") / "home")
    assert _chartlake(home, "demo", "--countries", "us,fr,gb", "--start", "2025-01-08", "--end", DAY) == 0
    return home


@pytest.fixture
def home(published, tmp_path):
    copy = Home(tmp_path / "home")
    shutil.copytree(published.root, copy.root)  # a moved home must still open: DESIGN.md
    return copy


def _payload(home: Home, country: str = "fr", day: str = DAY) -> dict:
    path = home.root / "demo_payloads" / day / f"{country}-iphone-top-free.json"
    return json.loads(path.read_text())


def _corrected(doc: dict) -> dict:
    doc["feed"]["updated"] = doc["feed"]["updated"].replace("10:00:00", "20:00:00")  # a later version, same day
    return doc


def _duplicate_app(doc, home=None):
    results = doc["feed"]["results"]
    results[5] = dict(results[2])
    return _corrected(doc)


def _cut_to_10(doc, home=None):
    doc["feed"]["results"] = doc["feed"]["results"][:10]
    return _corrected(doc)


def _archive(doc, ranks):
    """The same chart in the archive layout that carries explicit ranks (WBGame's), with ``ranks`` as given."""
    results = doc["feed"]["results"]
    items = [{"date": DAY, "rank": r, "id": a["id"], "name": a["name"], "artistName": a["artistName"],
              "kind": "apps", "releaseDate": a["releaseDate"], "url": a["url"]} for r, a in zip(ranks, results)]
    return {"date": DAY, "country": "fr", "mediaType": "apps", "feedType": "top-free", "limit": len(items),
            "genre": None, "source": "archive", "total": len(items), "items": items}


def _duplicate_rank(doc, home=None):
    ranks = list(range(1, len(doc["feed"]["results"]) + 1))
    ranks[6] = 6
    return _archive(doc, ranks)


def _missing_ranks(doc, home=None):
    n = len(doc["feed"]["results"])
    return _archive(doc, [r if r < 7 else r + 3 for r in range(1, n + 1)])  # 7, 8, 9 missing


def _stale(doc, home):
    """Yesterday's FR ranking served again as today's (a frozen CDN cache): only the feed's date moved."""
    frozen = _payload(home, "fr", PREVIOUS_DAY)
    frozen["feed"]["updated"] = doc["feed"]["updated"]
    return _corrected(frozen)


def _wrong_country(doc, home):
    """The US chart filed as FR's: the file name says fr, the payload says us."""
    return _payload(home, "us")


DEFECTS = {
    "duplicate_rank": (_duplicate_rank, "duplicate rank"),
    "missing_ranks": (_missing_ranks, "rank"),
    "html": (lambda doc, home: None, "payload failed"),
    "duplicate_app": (_duplicate_app, "unique"),
    "cut_to_10": (_cut_to_10, "depth"),
    "stale": (_stale, "ranking_differs_from_previous_day"),
    "wrong_country": (_wrong_country, "country"),
}


def _rows(home, country):
    con = duckdb.connect(str(home.serving_db), read_only=True)
    try:
        return con.execute(f"""select device, chart, rank, app_id, app_name from analytics.mart_daily_rankings
            where country = '{country}' and chart_date = date '{DAY}' order by all""").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_defect_quarantines_only_that_country_day(home, tmp_path, defect):
    make, reason_word = DEFECTS[defect]
    fr_before, us_before = _rows(home, "fr"), _rows(home, "us")
    assert fr_before and us_before
    doc = make(_payload(home), home)
    content = b"<!DOCTYPE html><html><body>Temporarily unavailable</body></html>" if doc is None \
        else json.dumps(doc).encode()
    # A version wins by capture time: the archive layout records none inside, so its name says it was saved at
    # 20:00, after the demo's 10:00 capture (an undated copy would be an older version, never current).
    archive = doc is not None and "feed" not in doc
    bad = tmp_path / (f"fr-iphone-top-free-{DAY}__{DAY}T200000Z.json" if archive else f"fr-iphone-top-free-{DAY}.json")
    bad.write_bytes(content)
    _chartlake(home, "import", "--no-land", str(bad))
    # 0: a quarantined country is data, not a failed run (raw_chart_quality warns; the day still publishes).
    assert _chartlake(home, "run", "--from", DAY, "--to", DAY) == 0

    con = duckdb.connect(str(home.serving_db), read_only=True)
    try:
        log = con.execute("select publish_id from analytics.publish_log order by publish_id").fetchall()
        quarantine = con.execute("""select country, chart_date, reason, payload_sha256 from analytics.quarantine
                                    where publish_id = 2""").fetchall()
    finally:
        con.close()
    assert [r[0] for r in log] == [1, 2]
    assert [(c, str(d)) for c, d, _, _ in quarantine] == [("fr", DAY)]
    assert reason_word in quarantine[0][2].lower()
    sha = sha256_hex(content)
    assert sha in (quarantine[0][3] or "")
    assert PayloadStore(home.raw).get(sha) == content  # the bad payload is kept
    assert _rows(home, "fr") == fr_before  # the last good published rows stay
    # The bad payload never reached the marts in the lake either: staging skipped it.
    from orchestration.lib import lake

    with lake.session(home, read_only=True) as con:
        assert con.execute(f"""select count(*) from marts.fct_chart_entries
                               where chart_date = date '{DAY}' and payload_sha256 = ?""", [sha]).fetchone()[0] == 0
    assert _rows(home, "us") == us_before and _rows(home, "gb")  # other countries publish


def _chart_rows(home, country, device, chart):
    con = duckdb.connect(str(home.serving_db), read_only=True)
    try:
        return con.execute("""select rank, app_id, app_name from analytics.mart_daily_rankings
            where country = ? and device = ? and chart = ? and chart_date = ? and genre_id is null order by rank""",
                           [country, device, chart, DAY]).fetchall()
    finally:
        con.close()


def test_a_bad_chart_holds_back_only_itself_not_its_country_day_or_the_other_store(home, tmp_path):
    """One import into fr's day: a broken Apple chart (an app listed twice), an HTML page in place of a Play chart,
    and a corrected Apple top-paid chart. The two bad charts are held back by their chart key alone: the corrected
    chart of the same country-day publishes, and neither store's other charts are held back."""
    before = {(d, c): _chart_rows(home, "fr", d, c) for d in ("iphone", "ipad", "android")
              for c in ("top-free", "top-paid", "top-grossing")}
    assert all(before.values())
    bad_apple = tmp_path / f"fr-iphone-top-free-{DAY}.json"
    bad_apple.write_bytes(json.dumps(_duplicate_app(_payload(home))).encode())
    bad_play = tmp_path / f"fr-android-top-free-{DAY}.json"
    bad_play.write_bytes(b"<!DOCTYPE html><html><body>unusual traffic from your network</body></html>")
    paid = _corrected(json.loads((home.root / "demo_payloads" / DAY / "fr-iphone-top-paid.json").read_text()))
    results = paid["feed"]["results"]
    results[0], results[1] = results[1], results[0]  # the corrected chart: #1 and #2 swapped
    good = tmp_path / f"fr-iphone-top-paid-{DAY}.json"
    good.write_bytes(json.dumps(paid).encode())
    assert _chartlake(home, "import", "--no-land", str(bad_apple), str(bad_play), str(good)) == 1  # one failed
    assert _chartlake(home, "run", "--from", DAY, "--to", DAY) == 0

    con = duckdb.connect(str(home.serving_db), read_only=True)
    try:
        held = con.execute("""select country, chart_date::varchar, store, device, chart, genre_id, payload_sha256
                              from analytics.quarantine where publish_id = 2 order by store""").fetchall()
    finally:
        con.close()
    assert held == [("fr", DAY, "apple", "iphone", "top-free", None, sha256_hex(bad_apple.read_bytes())),
                    ("fr", DAY, "google_play", "android", "top-free", None, sha256_hex(bad_play.read_bytes()))]
    after = {key: _chart_rows(home, "fr", *key) for key in before}
    old_paid = before[("iphone", "top-paid")]
    assert [r[1] for r in after[("iphone", "top-paid")][:2]] == [old_paid[1][1], old_paid[0][1]]
    assert after[("iphone", "top-paid")][2:] == old_paid[2:]
    # Every other chart of fr's day, on both stores, is as published before: the two bad ones carried over.
    assert {k: v for k, v in after.items() if k != ("iphone", "top-paid")} == \
        {k: v for k, v in before.items() if k != ("iphone", "top-paid")}
