"""Staging and landing payloads: idempotent, versioned, and bad input never loses or overwrites anything."""

import datetime as dt
import json

import pytest

from orchestration.lib import ingest, lake
from orchestration.lib.payload_store import PayloadStore, sha256_hex
from tests.conftest import v2_payload

DAY = dt.date(2025, 1, 14)
APPS = [("741292507", "REDnote"), ("835599320", "TikTok"), ("389801252", "Instagram")]


def _stage_and_land(home, files, run_id="r1", day=DAY):
    store = PayloadStore(home.raw)
    with lake.session(home) as con:
        staged = ingest.stage_files(con, store, files, run_id=run_id)
        landed = ingest.land_day(con, store, day, run_id=run_id)
    return staged, landed


def _write(tmp_path, name, content: bytes):
    p = tmp_path / name
    p.write_bytes(content)
    return p


def test_payload_lands_with_lineage(home, tmp_path):
    f = _write(tmp_path, "us-top-free.json", v2_payload("us", "top-free", APPS))
    staged, landed = _stage_and_land(home, [f])
    assert [s.status for s in staged] == ["staged"]
    assert landed.rows_inserted == 3 and landed.countries["us"]["rows"] == 3
    sha = sha256_hex(f.read_bytes())
    assert landed.payload_hashes == [sha]
    with lake.session(home, read_only=True) as con:
        rows = con.execute("""select rank, app_id, app_name, country, device, chart, chart_date, payload_sha256,
                                     source_format, run_id from raw.chart_entries order by rank""").fetchall()
        snap = lake.snapshots(con, limit=1)[0]
    assert rows[0] == (1, "741292507", "REDnote", "us", "iphone", "top-free", DAY, sha, "apple-rss-v2", "r1")
    assert snap["commit_message"] == "land 2025-01-14" and '"partition": "2025-01-14"' in snap["commit_extra_info"]


def test_reingesting_the_same_payload_adds_nothing(home, tmp_path):
    f = _write(tmp_path, "us-top-free.json", v2_payload("us", "top-free", APPS))
    _, first = _stage_and_land(home, [f])
    with lake.session(home, read_only=True) as con:
        snap_before = lake.current_snapshot(con)
    staged, second = _stage_and_land(home, [f], run_id="r2")
    assert [s.status for s in staged] == ["unchanged"]
    assert second.rows_inserted == 0
    assert second.data_version == first.data_version
    with lake.session(home, read_only=True) as con:
        assert lake.current_snapshot(con) == snap_before  # no new DuckLake snapshot at all
        assert con.execute("select count(*) from raw.chart_entries").fetchone()[0] == 3
    assert len(list(home.raw.rglob("*.payload.zst"))) == 1


def test_changed_payload_is_a_new_version_and_the_old_stays_queryable(home, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    old = _write(tmp_path / "a", "us-top-free.json", v2_payload("us", "top-free", APPS))
    _, first = _stage_and_land(home, [old])
    with lake.session(home, read_only=True) as con:
        snap_old = lake.current_snapshot(con)
    corrected = list(reversed(APPS))
    new = _write(tmp_path / "b", "us-top-free.json",
                 v2_payload("us", "top-free", corrected, updated="2025-01-14T18:00:00Z"))
    _, second = _stage_and_land(home, [new], run_id="r2")
    assert second.rows_inserted == 3
    assert second.data_version != first.data_version
    assert second.payload_hashes == [sha256_hex(new.read_bytes())]  # the current version
    with lake.session(home, read_only=True) as con:
        versions = con.execute(
            "select payload_sha256, count(*) from raw.chart_entries group by 1 order by 1").fetchall()
        assert len(versions) == 2 and all(n == 3 for _, n in versions)
        as_of_old = con.execute(
            f"select app_name from raw.chart_entries at (version => {snap_old}) order by rank").fetchall()
    assert [r[0] for r in as_of_old] == ["REDnote", "TikTok", "Instagram"]


BAD = {
    "html.json": b"<!DOCTYPE html><html><body>Service Unavailable</body></html>",
    "truncated.json": v2_payload("fr", "top-free", APPS)[:120],
    "empty.json": v2_payload("gb", "top-free", []),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_payload_is_kept_reported_and_does_not_stop_others(home, tmp_path, name):
    good = _write(tmp_path, "us-top-free-2025-01-14.json", v2_payload("us", "top-free", APPS))
    bad = _write(tmp_path, f"fr-{name.replace('.json', '')}-2025-01-14.json", BAD[name])
    staged, landed = _stage_and_land(home, [good, bad])
    by_source = {s.source: s for s in staged}
    failure = by_source[str(bad)]
    assert failure.status == "failed"
    sha = sha256_hex(BAD[name])
    assert str(bad) in failure.error and sha in failure.error  # names the file and the payload hash
    assert PayloadStore(home.raw).get(sha) == BAD[name]  # the bad payload is kept
    assert landed.countries["us"]["rows"] == 3  # the good one landed
    assert any(f["payload_sha256"] == sha for f in landed.failures)


def test_missing_field_is_rejected(home, tmp_path):
    missing = json.loads(v2_payload("us", "top-paid", APPS))
    del missing["feed"]["results"][1]["id"]
    f2 = _write(tmp_path, "missing.json", json.dumps(missing).encode())
    staged, _ = _stage_and_land(home, [f2])
    assert staged[0].status == "failed" and "missing.json" in staged[0].error


def test_import_of_unknown_path_is_a_clear_error(home, tmp_path):
    with lake.session(home) as con, pytest.raises(FileNotFoundError, match="nope.json"):
        ingest.stage_files(con, PayloadStore(home.raw), [tmp_path / "nope.json"], run_id="r")
