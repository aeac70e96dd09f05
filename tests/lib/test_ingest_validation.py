"""Issue 17's poisonous inputs in one import: each refused by name at staging (registered failed with field, value
and reason, kept in the raw store when it was read), while the good payloads of the same batch stage and land."""

import datetime as dt
import os
import tracemalloc
from decimal import Decimal

import pytest

from orchestration.lib import ingest, lake
from orchestration.lib.payload_store import PayloadStore, sha256_hex
from tests import poison

DAY = dt.date.fromisoformat(poison.GOOD_DAY)
GOOD = {"good-us-legacy.json": poison.legacy("us"), "good-fr-archive.json": poison.archive("fr"),
        "good-gb-v2.json": poison.v2("gb")}


def _registry(home):
    with lake.session(home, read_only=True) as con:
        return {os.path.basename(url): (status, sha, error) for url, status, sha, error in con.execute(
            "select source_url, status, payload_sha256, error from raw.payloads").fetchall()}


@pytest.fixture
def batch(tmp_path):
    folder = tmp_path / "import"
    folder.mkdir()
    for name, content in GOOD.items():
        (folder / name).write_bytes(content)
    for case, (content, _field, _shown) in poison.POISON.items():
        (folder / f"{case}.json").write_bytes(content)
    (folder / "rank-superscript.json").write_bytes(poison.SUPERSCRIPT_RANK)
    (folder / "x.json").symlink_to("/etc/passwd")
    with open(folder / "huge.json", "wb") as f:
        f.truncate(200 * 1024 * 1024)  # sparse: 200 MB long, no disk used
    os.mkfifo(folder / "fifo.json")  # reading it would block forever
    named_link = tmp_path / "passwd.json"
    named_link.symlink_to("/etc/passwd")
    return folder, named_link


def test_poisonous_inputs_are_refused_by_name_while_the_good_ones_land(home, batch):
    folder, named_link = batch
    store = PayloadStore(home.raw)
    tracemalloc.start()
    try:
        with lake.session(home) as con:
            results = ingest.stage_files(con, store, [folder, named_link], run_id="r1")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024  # the 200 MB file was never read into memory
    by_name = {os.path.basename(r.source): r for r in results}
    assert {n for n, r in by_name.items() if r.status == "staged"} == set(GOOD)
    registry = _registry(home)

    for case, (content, field, shown) in poison.POISON.items():
        name = f"{case}.json"
        status, sha, error = registry[name]
        assert (status, sha) == ("failed", sha256_hex(content))
        assert f"invalid {field} {shown}" in error and f"field={field}" in error
        assert f"{folder / name}" in error and f"payload_sha256={sha}" in error
        assert store.get(sha) == content  # kept, as every bad payload is
    status, sha, error = registry["rank-superscript.json"]
    assert status == "failed" and "rank '²' is not a positive integer" in error and store.get(sha)

    for name in ("x.json", "passwd.json"):
        status, sha, error = registry[name]
        assert (status, sha) == ("failed", None) and "a symbolic link (to '/etc/passwd')" in error and name in error
    assert sha256_hex(open("/etc/passwd", "rb").read()) not in store  # never copied into the raw store
    status, sha, error = registry["huge.json"]
    assert (status, sha) == ("failed", None)
    assert "209,715,200 bytes, over the payload size limit of 67,108,864 (CHARTLAKE_MAX_PAYLOAD_BYTES)" in error
    assert registry["fifo.json"][0] == "failed" and "not a regular file" in registry["fifo.json"][2]

    with lake.session(home, read_only=True) as con:
        where = dict((os.path.basename(u), (c, d)) for u, c, d in con.execute(
            "select source_url, country, chart_date from raw.payloads where status = 'failed'").fetchall())
    # A refused value is registered under its chart's country and day (that day's check sees it), unless the
    # country or the date is what was refused.
    assert where["price-nan.json"] == ("us", DAY) and where["rank-3000000000.json"] == ("fr", DAY)
    assert where["country-zz.json"] == (None, DAY) and where["date-9999.json"] == ("gb", None)

    with lake.session(home) as con:
        landed = ingest.land_day(con, store, DAY, run_id="r1")
        rows = con.execute("select country, chart, count(*) from raw.chart_entries group by all order by all"
                           ).fetchall()
    assert landed.rows_inserted == 9 and rows == [("fr", "top-free", 3), ("gb", "top-free", 3), ("us", "top-paid", 3)]


def test_a_smaller_size_limit_is_read_from_the_environment(home, tmp_path, monkeypatch):
    monkeypatch.setenv("CHARTLAKE_MAX_PAYLOAD_BYTES", "100")
    f = tmp_path / "good-gb-v2.json"
    f.write_bytes(GOOD["good-gb-v2.json"])
    with lake.session(home) as con:
        [res] = ingest.stage_files(con, PayloadStore(home.raw), [f], run_id="r1")
    assert res.status == "failed" and f"over the payload size limit of 100" in res.error
    monkeypatch.setenv("CHARTLAKE_MAX_PAYLOAD_BYTES", "lots")
    with lake.session(home) as con, pytest.raises(ValueError, match="CHARTLAKE_MAX_PAYLOAD_BYTES must be"):
        ingest.stage_files(con, PayloadStore(home.raw), [f], run_id="r1")


def test_landing_holds_every_value_staging_accepts(home, tmp_path):
    """The edges of each range land: staging's limits are exactly what the raw table's types hold."""
    from orchestration.config import PARTITIONS_START, last_chart_date

    files = []
    for day in (PARTITIONS_START, last_chart_date()):
        files.append(tmp_path / f"edge-{day}.json")
        files[-1].write_bytes(poison.v2("us", day=day.isoformat()))
    files.append(tmp_path / "edge-price.json")
    files[-1].write_bytes(poison.legacy("kr", ("99999999.99", "0.00000"), currency="KRW"))
    store = PayloadStore(home.raw)
    with lake.session(home) as con:
        results = ingest.stage_files(con, store, files, run_id="r1")
        assert [r.status for r in results] == ["staged"] * 3
        landed = [ingest.land_day(con, store, day, run_id="r1").rows_inserted
                  for day in (PARTITIONS_START, last_chart_date(), DAY)]
        assert landed == [3, 3, 2]
        assert con.execute("select max(price) from raw.chart_entries").fetchone()[0] == Decimal("99999999.99")
