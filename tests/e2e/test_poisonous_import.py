"""Issue 17 end to end, as a user meets it: one ``chartlake import`` of a folder holding a small demo slice and every
poisonous input of the issue's table, then ``chartlake run``, then a later plain ``chartlake run``.

Each bad payload is refused by name at staging: its file, payload hash, field, value and reason on stderr and in
``raw.payloads`` as ``failed``; it is kept in the raw store, except the symbolic link (refused by name, never
read) and the payload over ``CHARTLAKE_MAX_PAYLOAD_BYTES`` (refused from its size, never read). Every good chart of
the same import lands and publishes (the refused charts' own country-days are listed in the quarantine, as
reported, not blocking), and the next plain ``run`` publishes the same marts.
Exit codes: import 1 (some payloads failed), both runs 0, status 0.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import duckdb
import pytest

from orchestration.config import Home, Replay
from orchestration.lib import lake
from orchestration.lib.payload_store import PayloadStore, sha256_hex
from orchestration import demo
from tests import poison

sys.path.insert(0, str(Path(__file__).resolve().parent))
from writer_helpers import mart_hashes, raw_counts, run  # noqa: E402

pytestmark = pytest.mark.slow

START, END = dt.date(2025, 1, 13), dt.date(2025, 1, 14)
COUNTRIES = ("gb", "kr")
DEPTH = 20
MAX_BYTES = 100_000  # over every demo payload here (~30 KB), under the padded one


def _oversized() -> bytes:
    """A good gb chart padded past the limit: only its size can refuse it (it would stage and change the marts)."""
    doc = json.loads(poison.v2("gb"))
    doc["padding"] = "x" * (MAX_BYTES + 50_000)
    return json.dumps(doc).encode()


def test_poison_is_refused_by_name_while_the_good_payloads_of_the_same_import_publish(tmp_path):
    home = Home(tmp_path / "home")
    folder = tmp_path / "import"
    good = demo.generate(folder / "demo", start=START, end=END, countries=COUNTRIES, depth=DEPTH)
    assert max(p.stat().st_size for p in good) < MAX_BYTES
    bad = folder / "poison"
    bad.mkdir()
    for case, (content, _field, _shown) in poison.POISON.items():
        (bad / f"{case}.json").write_bytes(content)
    (bad / "rank-superscript.json").write_bytes(poison.SUPERSCRIPT_RANK)
    (bad / "x.json").symlink_to("/etc/passwd")
    huge = _oversized()
    (bad / "huge.json").write_bytes(huge)
    home.ensure()
    Replay.for_window(home, START, END, COUNTRIES).write()  # judge freshness at the slice's end, as `demo` does

    imported = run(home, "import", str(folder), env={"CHARTLAKE_MAX_PAYLOAD_BYTES": str(MAX_BYTES)})
    n_bad = len(poison.POISON) + 3
    assert imported.returncode == 1, imported.stderr[-3000:]  # some payloads failed: the exit code says so
    assert (f"{len(good) + n_bad} payloads: {len(good)} new, 0 already stored, {n_bad} failed; "
            f"{len(good) * DEPTH} chart rows staged") in imported.stdout, imported.stdout
    refusals = {Path(line.split()[1]).name: line for line in imported.stderr.splitlines()
                if line.startswith("  FAILED ")}
    assert len(refusals) == n_bad, imported.stderr[-3000:]
    assert "\x1b" not in imported.stderr  # the terminal escape is shown escaped

    with lake.session(home, read_only=True) as con:
        failed = {os.path.basename(url): (sha, error) for url, sha, error in con.execute(
            "select source_url, payload_sha256, error from raw.payloads where status = 'failed'").fetchall()}
        staged = con.execute("select count(distinct payload_sha256) from raw.payloads where status = 'staged'"
                             ).fetchone()[0]
    assert len(failed) == n_bad and staged == len(good)
    store = PayloadStore(home.raw)
    for case, (content, field, shown) in poison.POISON.items():
        sha = sha256_hex(content)
        named = f"invalid {field} {shown}"
        line, (registered_sha, error) = refusals[f"{case}.json"], failed[f"{case}.json"]
        for text in (line, error):
            assert named in text and poison.REASONS[case] in text and f"(field={field})" in text, (case, text)
        assert f"(payload_sha256={sha})" in line and registered_sha == sha, case
        assert store.get(sha) == content, f"{case}: not kept in the raw store"
    superscript = sha256_hex(poison.SUPERSCRIPT_RANK)
    assert "rank '²' is not a positive integer" in failed["rank-superscript.json"][1]
    assert failed["rank-superscript.json"][0] == superscript and store.get(superscript) == poison.SUPERSCRIPT_RANK
    for name, says in (("x.json", "a symbolic link (to '/etc/passwd')"),
                       ("huge.json", f"{len(huge):,} bytes, over the payload size limit of {MAX_BYTES:,}")):
        assert failed[name][0] is None and says in failed[name][1], failed[name]
        assert "(payload_sha256=-)" in refusals[name] and says in refusals[name], refusals[name]
    assert sha256_hex(Path("/etc/passwd").read_bytes()) not in store and sha256_hex(huge) not in store

    # The good charts of the same import landed (the import lands what it staged), and only they.
    with lake.session(home, read_only=True) as con:
        raw = con.execute("select country, min(chart_date), max(chart_date), count(*) from raw.chart_entries "
                          "group by 1 order by 1").fetchall()
    rows_per_country = len(good) // len(COUNTRIES) * DEPTH
    assert raw == [(c, START, END, rows_per_country) for c in COUNTRIES]

    first = run(home, "run")
    assert first.returncode == 0, first.stderr[-3000:]
    con = duckdb.connect(str(home.serving_db), read_only=True)
    try:
        published = con.execute("select country, chart_date, count(*) from analytics.mart_daily_rankings "
                                "group by all order by all").fetchall()
        quarantined = con.execute("select country, chart_date, reason from analytics.quarantine order by all"
                                  ).fetchall()
        publishes = con.execute("select count(*) from analytics.publish_log").fetchone()[0]
    finally:
        con.close()
    per_day: dict[tuple[str, dt.date], int] = {}
    for p in good:
        key = (p.name[:2], dt.date.fromisoformat(p.parent.name))
        per_day[key] = per_day.get(key, 0) + DEPTH
    assert {(c, d): n for c, d, n in published} == per_day
    assert publishes == 1
    # Reported, not blocking: each refused chart whose storefront and day are known is listed under them (those
    # country-days have no good payload here); none of the good storefronts' days is held back.
    held = {"ca": "price", "de": "price", "es": "rank", "fr": "rank", "it": "price", "jp": "app_name", "us": "price"}
    assert [(c, d) for c, d, _ in quarantined] == [(c, END) for c in sorted(held)]
    for country, _, reason in quarantined:
        assert reason.startswith("payload failed: invalid ") and f"(field={held[country]})" in reason, reason
    marts = mart_hashes(home)

    # A later plain run still works: the refused payloads block nothing, and it publishes the same marts.
    second = run(home, "run")
    assert second.returncode == 0, second.stderr[-3000:]
    assert mart_hashes(home) == marts and raw_counts(home) == (len(good) * DEPTH, 0)
    status = run(home, "status")
    assert status.returncode == 0, status.stderr[-3000:]
    assert f"payloads failed: {n_bad} " in status.stdout and "last publish #2 " in status.stdout, status.stdout
    assert "failed landings (latest raw_job run of the chart date failed): 0" in status.stdout
    assert "quarantined partitions: 7" in status.stdout
