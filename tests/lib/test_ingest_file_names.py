"""A file named in chartlake's layout promises its chart: a payload for another chart must not land under it."""

import datetime as dt
import json

import pytest

from orchestration.lib import ingest, lake
from orchestration.lib.payload_store import PayloadStore, sha256_hex
from tests.conftest import v2_payload

DAY = dt.date(2025, 1, 14)
APPS = [("741292507", "REDnote"), ("835599320", "TikTok"), ("389801252", "Instagram")]


def _stage_and_land(home, files, day=DAY):
    store = PayloadStore(home.raw)
    with lake.session(home) as con:
        staged = ingest.stage_files(con, store, files, run_id="import")
        landed = ingest.land_day(con, store, day, run_id="import")
        registry = con.execute("""select country, device, chart, chart_date, status, error, payload_sha256
                                  from raw.payloads order by all""").fetchall()
        landed_rows = con.execute("select country, count(*) from raw.chart_entries group by all order by all").fetchall()
    return staged, landed, registry, landed_rows


def _write(folder, name, content: bytes):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    return path


def test_payload_for_another_country_than_its_file_name_fails(home, tmp_path):
    content = v2_payload("us", "top-free", APPS)
    bad = _write(tmp_path, f"fr-iphone-top-free-{DAY}.json", content)
    good = _write(tmp_path, f"gb-iphone-top-free-{DAY}.json", v2_payload("gb", "top-free", APPS))
    staged, landed, registry, rows = _stage_and_land(home, [bad, good])
    failure = staged[0]
    assert failure.status == "failed" and staged[1].status == "staged"
    assert "payload says 'us', file name says 'fr'" in failure.error
    assert str(bad) in failure.error and sha256_hex(content) in failure.error
    assert (failure.country, failure.chart_date) == ("fr", DAY)
    # Registered under the chart its name promised, so the French day shows the failure.
    assert ("fr", "iphone", "top-free", DAY, "failed", failure.error, sha256_hex(content)) in registry
    assert rows == [("gb", 3)]  # nothing landed as 'us'
    assert landed.countries["fr"]["failures"][0]["payload_sha256"] == sha256_hex(content)
    assert PayloadStore(home.raw).get(sha256_hex(content)) == content  # kept as evidence


@pytest.mark.parametrize("name, says", [
    ("us-ipad-top-free.json", "device mismatch: payload says 'iphone', file name says 'ipad'"),
    ("us-iphone-top-paid.json", "chart mismatch: payload says 'top-free', file name says 'top-paid'"),
])
def test_payload_for_another_device_or_chart_than_its_file_name_fails(home, tmp_path, name, says):
    (result,) = _stage_and_land(home, [_write(tmp_path, name, v2_payload("us", "top-free", APPS))])[0]
    assert result.status == "failed" and says in result.error and name in result.error


def test_without_a_date_in_the_path_the_failure_is_filed_under_the_payloads_date(home, tmp_path):
    content = v2_payload("us", "top-free", APPS, updated="2025-01-14T12:00:00Z")
    _, _, registry, _ = _stage_and_land(home, [_write(tmp_path / "drop", "fr-iphone-top-free.json", content)])
    assert [r[:5] for r in registry] == [("fr", "iphone", "top-free", DAY, "failed")]


def test_payload_matching_its_file_name_is_staged(home, tmp_path):
    folder = tmp_path / "demo_payloads" / DAY.isoformat()
    files = [_write(folder, "us-iphone-top-free.json", v2_payload("us", "top-free", APPS)),
             _write(folder, f"fr-iphone-top-paid-{DAY}.json", v2_payload("fr", "top-paid", APPS))]
    staged, landed, _, rows = _stage_and_land(home, [tmp_path / "demo_payloads"])
    assert [s.status for s in staged] == ["staged", "staged"]
    assert rows == [("fr", 3), ("us", 3)] and not landed.failures


@pytest.mark.parametrize("name", [
    "fr-top-free.json",  # no device
    "fr-iphone-top-free.txt",
    "games-2026-03-08-fr-top-paid.json",  # an archive's own naming
    "fra-iphone-top-free.json",
    "FR-iphone-top-free.json",
    "fr-iphone-top-free-extra.json",
])
def test_other_names_promise_nothing(home, tmp_path, name):
    staged, _, registry, rows = _stage_and_land(home, [_write(tmp_path, name, v2_payload("us", "top-free", APPS))])
    assert [s.status for s in staged] == ["staged"] and rows == [("us", 3)]
    assert [r[:5] for r in registry] == [("us", "iphone", "top-free", DAY, "staged")]


def test_unparsable_payload_under_a_chartlake_name_keeps_the_names_hints(home, tmp_path):
    bad = _write(tmp_path, f"fr-ipad-top-grossing-{DAY}.json", json.dumps({"feed": {"nope": 1}}).encode())
    staged, _, registry, _ = _stage_and_land(home, [bad])
    assert staged[0].status == "failed" and "unknown layout" in staged[0].error
    assert [r[:5] for r in registry] == [("fr", "ipad", "top-grossing", DAY, "failed")]


def test_same_content_under_its_own_name_still_stages_after_a_misnamed_copy_failed(home, tmp_path):
    content = v2_payload("us", "top-free", APPS)
    misnamed = _write(tmp_path / "a", f"fr-iphone-top-free-{DAY}.json", content)
    right = _write(tmp_path / "b", f"us-iphone-top-free-{DAY}.json", content)
    staged, _, registry, rows = _stage_and_land(home, [misnamed, right])
    assert [s.status for s in staged] == ["failed", "staged"]
    assert rows == [("us", 3)]
    assert sorted(r[4] for r in registry) == ["failed", "staged"]
