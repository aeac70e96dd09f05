"""The data tests still catch bad rows after they moved from the staging view to fct_chart_entries, were merged
(one not-null test per model) and scoped to the run's chart_date window."""

from __future__ import annotations

import datetime as dt

from dbt_helpers import _rows, chart_apps, day, load_raw, make_dbt_home, synthetic_rows

BAD_DAY = day(5)

# RAW_COLUMNS positions of the fields the bad rows change.
STORE, COUNTRY, DEVICE, CHART, RANK, APP_ID = 0, 1, 2, 3, 6, 7


def _with(rows: list[tuple], **changes) -> list[tuple]:
    fields = {"store": STORE, "country": COUNTRY, "device": DEVICE, "chart": CHART}
    out = []
    for r in rows:
        r = list(r)
        for name, value in changes.items():
            r[fields[name]] = value
        out.append(tuple(r))
    return out


def _bad_rows() -> list[tuple]:
    """A later version of the US chart of BAD_DAY with a rank 0, a duplicated rank and a null app id, plus
    charts with a three-letter country, an unknown store, device and chart type."""
    noon = dt.datetime.combine(BAD_DAY, dt.time(12))
    later = noon + dt.timedelta(hours=2)
    apps = chart_apps("us", "iphone", BAD_DAY)
    us = [list(r) for r in _rows("us", "iphone", BAD_DAY, apps, fetched_at=later, ingested_at=later, tag="bad")]
    us[0][RANK] = 0
    us[2][RANK] = 2
    us[3][APP_ID] = None
    rows = [tuple(r) for r in us]
    short = apps[:5]
    for tag, change in [("country", {"country": "usa"}), ("store", {"store": "google"}),
                        ("device", {"device": "watch"}), ("chart", {"chart": "top-new"})]:
        rows += _with(_rows("us", "iphone", BAD_DAY, short, fetched_at=noon, ingested_at=noon, tag=tag), **change)
    return rows


def _window(d: dt.date) -> str:
    return f"{{min_date: '{d.isoformat()}', max_date: '{(d + dt.timedelta(days=1)).isoformat()}'}}"


def test_bad_rows_fail_the_tests_of_fct_chart_entries(tmp_path):
    h = make_dbt_home(tmp_path)
    load_raw(h.home, synthetic_rows() + _bad_rows())
    h.dbt("seed")
    select = ["--select", "stg_apple__chart_entries", "fct_chart_entries"]

    result = h.dbt("build", *select, "--vars", _window(BAD_DAY), check=False)
    assert not result.success
    failed = {r.node.name for r in result.result.results if str(r.status) in ("fail", "error")}
    assert failed == {
        "fct_chart_entries_required_columns_not_null",
        "unique_combination_of_columns_fct_chart_entries_chart_id__chart_date__rank",
        "accepted_range_fct_chart_entries_rank__200__1",
        "lower_case_iso_code_fct_chart_entries_country",
        "accepted_values_fct_chart_entries_store__apple__google_play",
        "accepted_values_fct_chart_entries_device__iphone__ipad__android",
        "accepted_values_fct_chart_entries_chart__top_free__top_paid__top_grossing",
    }
    # The merged not-null test names the column that holds the nulls, and how many.
    compiled = next((h.target / "compiled").rglob("fct_chart_entries_required_columns_not_null.sql")).read_text()
    assert h.query(compiled) == [("app_id", 1)]

    # The same tests pass on a clean day: they check the run's window, not the bad day built before. The window
    # comes from the environment here, as Dagster hands it over (the bad day above came as --vars, as a CLI user's).
    h.dbt("build", *select, window=(day(6), day(7)))
