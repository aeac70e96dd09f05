"""Issue 17 end to end: one `chartlake import` of a small demo slice mixed with every poisonous input, then
`chartlake run`. The poison is refused by name at staging (failed in raw.payloads with its reason, kept in the raw
store when it was read); every good chart of the same import lands and publishes, nothing is quarantined."""

import datetime as dt
import os

import duckdb
import pytest

from orchestration.config import Home, Replay
from orchestration.lib import lake
from orchestration.lib.payload_store import PayloadStore, sha256_hex
from orchestration.sources import demo
from tests import poison
from tests.conftest import run_chartlake

pytestmark = pytest.mark.slow

START, END = dt.date(2025, 1, 12), dt.date(2025, 1, 14)
COUNTRIES = ("gb", "kr")  # storefronts no poisonous chart claims, so each of their days must publish


def test_poison_is_refused_while_the_good_payloads_of_the_same_import_publish(tmp_path, capsys):
    home = Home(tmp_path / "home")
    folder = tmp_path / "import"
    good = demo.generate(folder / "demo", start=START, end=END, countries=COUNTRIES, depth=20)
    bad = folder / "poison"
    bad.mkdir()
    for case, (content, _field, _shown) in poison.POISON.items():
        (bad / f"{case}.json").write_bytes(content)
    (bad / "rank-superscript.json").write_bytes(poison.SUPERSCRIPT_RANK)
    (bad / "x.json").symlink_to("/etc/passwd")
    with open(bad / "huge.json", "wb") as f:
        f.truncate(200 * 1024 * 1024)
    home.ensure()
    Replay.for_window(home, START, END, COUNTRIES).write()  # judge freshness at the slice's end, as `demo` does

    assert run_chartlake(home, "import", str(folder)) == 1  # some payloads failed: the exit code says so
    err = capsys.readouterr().err
    assert "FAILED" in err and "\x1b" not in err  # the terminal escape is shown escaped
    assert run_chartlake(home, "run") == 0

    with lake.session(home, read_only=True) as con:
        failed = {os.path.basename(url): (sha, error) for url, sha, error in con.execute(
            "select source_url, payload_sha256, error from raw.payloads where status = 'failed'").fetchall()}
        staged = con.execute("select count(distinct payload_sha256) from raw.payloads where status = 'staged'"
                             ).fetchone()[0]
        raw = con.execute("select country, min(chart_date), max(chart_date) from raw.chart_entries group by 1 "
                          "order by 1").fetchall()
    assert staged == len(good)
    assert raw == [("gb", START, END), ("kr", START, END)]
    store = PayloadStore(home.raw)
    for case, (content, field, shown) in poison.POISON.items():
        sha, error = failed[f"{case}.json"]
        assert sha == sha256_hex(content) and f"invalid {field} {shown}" in error and store.get(sha) == content
    assert "rank '²' is not a positive integer" in failed["rank-superscript.json"][1]
    assert failed["x.json"][0] is None and "symbolic link" in failed["x.json"][1]
    assert failed["huge.json"][0] is None and "over the payload size limit" in failed["huge.json"][1]
    assert len(failed) == len(poison.POISON) + 3

    con = duckdb.connect(str(home.serving_db), read_only=True)
    try:
        published = con.execute("select country, chart_date, count(*) from analytics.mart_daily_rankings "
                                 "group by all order by all").fetchall()
        quarantined = con.execute("select count(*) from analytics.quarantine").fetchone()[0]
        publishes = con.execute("select count(*) from analytics.publish_log").fetchone()[0]
    finally:
        con.close()
    per_day = {}
    for p in good:
        day, country = dt.date.fromisoformat(p.parent.name), p.name[:2]
        per_day[(country, day)] = per_day.get((country, day), 0) + 20
    assert [(c, d) for c, d, _ in published] == sorted(per_day) and publishes == 1 and quarantined == 0
    assert {(c, d): n for c, d, n in published} == per_day
    assert run_chartlake(home, "status") == 0
