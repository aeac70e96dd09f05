"""Issue 17: a chart key and payload land at most once, enforced by the insert itself, not only by the lock.

A landing reads what is still to land, then inserts it in a transaction. Another writer landing the same charts in
between (what happened with two `chartlake run` at once before the home's writer lock) must not make them land
twice: the insert re-checks, inside its own transaction, that the chart is not in the lake yet.
"""

from __future__ import annotations

import datetime as dt

from orchestration.lib import ingest, lake
from orchestration.lib.payload_store import PayloadStore
from tests.conftest import v2_payload

DAY = dt.date(2025, 1, 14)


def test_a_landing_overtaken_by_another_inserts_nothing(home, tmp_path, monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    (src / "us.json").write_bytes(v2_payload("us", "top-free", [("1", "A"), ("2", "B"), ("3", "C")]))
    (src / "fr.json").write_bytes(v2_payload("fr", "top-free", [("1", "A"), ("4", "D")]))
    store = PayloadStore(home.raw)
    with lake.session(home) as con:
        ingest.stage_files(con, store, [src], run_id="stage")

    real_frame = ingest._day_frame
    overtaken = []

    def other_writer_lands_first(parts, **kw):
        # Called after this landing read its pending charts and before its insert: the other writer commits now.
        if not overtaken:
            overtaken.append(True)
            with lake.session(home) as other:
                assert ingest.land_day(other, PayloadStore(home.raw), DAY, run_id="other").rows_inserted == 5
        return real_frame(parts, **kw)

    monkeypatch.setattr(ingest, "_day_frame", other_writer_lands_first)
    with lake.session(home) as con:
        first = ingest.land_day(con, store, DAY, run_id="first")
    assert overtaken and first.rows_inserted == 0
    with lake.session(home, read_only=True) as con:
        assert con.execute("select count(*), count(distinct (country, rank)), list(distinct run_id) "
                           "from raw.chart_entries").fetchone() == (5, 5, ["other"])
