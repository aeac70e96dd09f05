"""Landing a day: typed columns whatever the first rows hold, each chart once, and the stage-time parse reused."""

import datetime as dt
import json
from decimal import Decimal

import pytest

from orchestration.lib import ingest, lake
from orchestration.lib.payload_store import PayloadStore, sha256_hex
from tests.conftest import v2_payload

DAY = dt.date(2025, 1, 14)
APPS = [("741292507", "REDnote"), ("835599320", "TikTok"), ("389801252", "Instagram")]


def legacy_payload(country: str, prices: list[str], *, currency: str = "KRW", genre: int | None = None,
                   updated: str = "2025-01-14T02:00:00-07:00") -> bytes:
    """A legacy iTunes RSS top-grossing iPad chart (layout as Apple serves it) with one entry per price."""
    genre_part = f"/genre={genre}" if genre else ""
    url = f"https://itunes.apple.com/{country}/rss/topgrossingipadapplications/limit=200{genre_part}/json"
    entries = [{
        "im:name": {"label": f"App {i}"},
        "im:price": {"label": "Get", "attributes": {"amount": amount, "currency": currency}},
        "link": {"attributes": {"rel": "alternate", "type": "text/html",
                                "href": f"https://apps.apple.com/{country}/app/a/id{1000 + i}?uo=2"}},
        "id": {"label": f"https://apps.apple.com/{country}/app/a/id{1000 + i}?uo=2",
               "attributes": {"im:id": str(1000 + i)}},
        "im:artist": {"label": f"Dev {i % 7}",
                      "attributes": {"href": f"https://apps.apple.com/{country}/developer/d/id{500 + i % 7}?uo=2"}},
        "category": {"attributes": {"im:id": "6014", "label": "Games"}},
        "im:releaseDate": {"label": "2019-03-0%dT00:00:00-07:00" % (1 + i % 9)},
    } for i, amount in enumerate(prices)]
    return json.dumps({"feed": {"id": {"label": url}, "updated": {"label": updated},
                                "link": [{"attributes": {"rel": "self", "href": url}}], "entry": entries}}).encode()


def _write(folder, name, content: bytes):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    return path


def _land(home, files, day=DAY, run_id="r1"):
    store = PayloadStore(home.raw)
    with lake.session(home) as con:
        staged = ingest.stage_files(con, store, files, run_id=run_id)
        landed = ingest.land_day(con, store, day, run_id=run_id)
    return staged, landed


def _table(home, columns="*", where="true"):
    with lake.session(home, read_only=True) as con:
        return con.execute(f"select {columns} from raw.chart_entries where {where} order by all").fetchall()


def test_prices_land_whatever_rows_duckdb_samples_to_type_them(home, tmp_path):
    # DuckDB types an object column from a sample of its rows (pandas_analyze_sample, 1,000 rows spread over the
    # frame): Decimal prices sampled at 1100.00000 gave DECIMAL(9,5), and an unsampled KRW 11000.00000 failed the
    # whole day's landing (demo data, 2025-04-26 at depth 200).
    # Twelve genre charts of 200 (the deepest chart Apple serves) make the 2,400 rows of one day, plus "1E+1".
    files = [_write(tmp_path, f"kr-{g}.json", legacy_payload(
        "kr", ["11000.00000" if (g * 200 + i) % 12 == 5 else "1100.00000" for i in range(200)], genre=6000 + g))
        for g in range(12)] + [_write(tmp_path, "kr-e.json", legacy_payload("kr", ["1E+1"], genre=6012))]
    staged, landed = _land(home, files)
    assert {s.status for s in staged} == {"staged"} and landed.rows_inserted == 2401
    got = _table(home, "price, count(*)", "true group by price")
    assert got == [(Decimal("10.00"), 1), (Decimal("1100.00"), 2200), (Decimal("11000.00"), 200)]


def test_legacy_row_lands_with_every_column_typed(home, tmp_path):
    f = _write(tmp_path, "kr-games.json", legacy_payload("kr", ["0", "4.99000"], genre=6014))
    _land(home, [f])
    with lake.session(home, read_only=True) as con:
        row = con.execute("""select store, country, device, chart, genre_id, chart_date, rank, app_id, app_name,
                                    developer_name, developer_id, genre_name, release_date, price, currency, url,
                                    payload_sha256, source_format, run_id
                             from raw.chart_entries where rank = 2""").fetchone()
        types = dict(con.execute("select column_name, data_type from duckdb_columns() "
                                 "where table_name = 'chart_entries' and schema_name = 'raw'").fetchall())
    assert row == ("apple", "kr", "ipad", "top-grossing", 6014, DAY, 2, "1001", "App 1", "Dev 1", "501", "Games",
                   dt.date(2019, 3, 2), Decimal("4.99"), "KRW", "https://apps.apple.com/kr/app/a/id1001?uo=2",
                   sha256_hex(f.read_bytes()), "itunes-rss-legacy", "r1")
    assert types["price"] == "DECIMAL(10,2)" and types["genre_id"] == "INTEGER"


def test_archive_file_with_several_countries_lands_each_chart_once(home, tmp_path):
    datasets = [{"date": "2026-02-17", "country": cc, "feedType": chart, "total": 2,
                 "items": [{"rank": r, "id": str(100 + r), "name": f"{cc} app {r}"} for r in (1, 2)]}
                for cc in ("cn", "jp", "us") for chart in ("top-free", "top-paid")]
    f = _write(tmp_path, "aggregate.json", json.dumps({"date": "2026-02-17", "datasets": datasets}).encode())
    staged, landed = _land(home, [f], day=dt.date(2026, 2, 17))
    assert staged[0].entry_count == 12
    assert landed.rows_inserted == 12
    assert {c: v["rows"] for c, v in landed.countries.items()} == {"cn": 4, "jp": 4, "us": 4}
    assert _table(home, "country, chart, count(*)", "true group by all") == [
        (cc, chart, 2) for cc in ("cn", "jp", "us") for chart in ("top-free", "top-paid")]


def _day_files(folder):
    return [
        _write(folder, "us-iphone-top-free.json", v2_payload("us", "top-free", APPS)),
        _write(folder, "fr-iphone-top-paid.json", v2_payload("fr", "top-paid", APPS[:2])),
        _write(folder, "kr.json", legacy_payload("kr", ["0", "1100.00000", "4.99"])),
    ]


def _count_parses(monkeypatch):
    calls = []
    real = ingest.parse_payload

    def counting(*args, **kwargs):
        calls.append(kwargs.get("source"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, "parse_payload", counting)
    return calls


LANDED = "store, country, device, chart, genre_id, chart_date, rank, app_id, app_name, developer_name, " \
         "developer_id, genre_name, release_date, price, currency, url, payload_sha256, source_url, source_format"


def test_landing_after_staging_in_one_process_does_not_parse_again(home, tmp_path, monkeypatch):
    files = _day_files(tmp_path / "in")
    store = PayloadStore(home.raw)
    with lake.session(home) as con:
        ingest.stage_files(con, store, files, run_id="r1")
        calls = _count_parses(monkeypatch)
        # Another instance on the same root: the CLI stages with one, the Dagster raw asset lands with another.
        landed = ingest.land_day(con, PayloadStore(home.raw), DAY, run_id="r1")
    assert calls == [] and landed.rows_inserted == 8
    assert len(store.parsed) == 0  # landed, so released


def test_landing_from_the_store_gives_the_same_rows_as_from_the_stage_time_parse(home, tmp_path, monkeypatch):
    from orchestration.config import Home

    files = _day_files(tmp_path / "in")
    _land(home, files)
    other = Home(tmp_path / "other").ensure()
    store = PayloadStore(other.raw)
    with lake.session(other) as con:
        ingest.stage_files(con, store, files, run_id="r1")
        store.parsed.clear()  # as in a new process
        calls = _count_parses(monkeypatch)
        ingest.land_day(con, store, DAY, run_id="r1")
    assert sorted(calls) == sorted(str(f) for f in files)
    assert _table(other, LANDED) == _table(home, LANDED) and len(_table(home, LANDED)) == 8


def test_parse_cache_is_bounded_and_a_miss_parses_again(home, tmp_path, monkeypatch):
    monkeypatch.setenv("CHARTLAKE_PARSE_CACHE_ROWS", "4")
    files = _day_files(tmp_path / "in")
    store = PayloadStore(home.raw)  # the limit is read when a root's cache is first made: this test's own root
    with lake.session(home) as con:
        ingest.stage_files(con, store, files, run_id="r1")
        assert store.parsed.rows <= 4 and len(store.parsed) == 1  # us (3 rows) fits; fr (2) and kr (3) do not
        calls = _count_parses(monkeypatch)
        landed = ingest.land_day(con, store, DAY, run_id="r1")
    assert len(calls) == 2 and landed.rows_inserted == 8


def test_same_payload_twice_in_a_batch_and_across_chunks_registers_once(home, tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "_STAGE_CHUNK", 2)
    us = v2_payload("us", "top-free", APPS)
    bad = b"<html>oops</html>"
    files = [_write(tmp_path / d, n, c) for d, n, c in [
        ("a", "us.json", us), ("b", "us.json", us), ("a", "bad.json", bad), ("c", "us.json", us),
        ("b", "bad.json", bad)]]
    staged, landed = _land(home, files)
    assert [s.status for s in staged] == ["staged", "unchanged", "failed", "unchanged", "failed"]
    assert landed.rows_inserted == 3
    with lake.session(home, read_only=True) as con:
        registry = con.execute("select payload_sha256, status, source_url from raw.payloads order by status").fetchall()
    assert [(sha, status) for sha, status, _ in registry] == [(sha256_hex(bad), "failed"), (sha256_hex(us), "staged")]
    assert registry[1][2].endswith("/a/us.json")  # the first sighting
    assert PayloadStore(home.raw).meta(sha256_hex(us))["source"] == str(files[0])
    # A later batch sees what earlier ones registered, bad payloads included.
    staged, _ = _land(home, files[:3], run_id="r2")
    assert [s.status for s in staged] == ["unchanged", "unchanged", "failed"]
    with lake.session(home, read_only=True) as con:
        assert con.execute("select count(*) from raw.payloads").fetchone()[0] == 2


@pytest.mark.parametrize("value", ["abc", "-5"])
def test_bad_parse_cache_limit_is_a_clear_error(tmp_path, monkeypatch, value):
    from orchestration.lib.payload_store import PayloadStoreError

    monkeypatch.setenv("CHARTLAKE_PARSE_CACHE_ROWS", value)
    with pytest.raises(PayloadStoreError, match=f"CHARTLAKE_PARSE_CACHE_ROWS.*{value}"):
        PayloadStore(tmp_path / f"raw-{value}").parsed
