"""GX's SQL path over DuckDB: each rule fails on a lake with that one violation (and only the rules that same
fault breaks with it), the check holds no connection after it ends, and the private GX name the path depends on
is still where it was pinned. (These replace the frame-based suite's tests: the rules exist only as SQL now.)"""

from __future__ import annotations

import importlib

import duckdb
import pytest

from test_marts_lake import DAYS, LAST, WINDOW, failed, lake  # noqa: F401  (lake: the fixture)
from orchestration.lib.quality import engine
from orchestration.lib.quality.marts import check_lake_window

D = f"date '{DAYS[3]}'"
ONE = f"country = 'us' and chart = 'top-free' and chart_date = {D}"
# One violation per rule: (statements on the consistent lake, the suite, the one rule that must fail, and the
# rules that fail with it because the same fault breaks them too).
VIOLATIONS = {
    "fct_chart_entries.country_not_null": ([f"update marts.fct_chart_entries set country = null where rank = 2 and {ONE}"],
                                           None, {"fct_chart_entries.row_count_reconciled", "mart_daily_rankings.row_count_reconciled"}),
    "fct_chart_entries.rank_not_null": ([f"update marts.fct_chart_entries set rank = null where rank = 2 and {ONE}"],
                                        None, {"fct_chart_entries.grain_unique"}),
    "fct_chart_entries.app_id_not_null": ([f"update marts.fct_chart_entries set app_id = null where rank = 2 and {ONE}"],
                                          None, {"fct_chart_entries.app_unique_in_chart"}),
    "fct_chart_entries.rank_in_range": ([f"update marts.fct_chart_entries set rank = 201 where rank = 2 and {ONE}"],
                                        None, set()),
    "fct_chart_entries.app_id_well_formed": ([f"update marts.fct_chart_entries set app_id = 'x' || app_id where rank = 2 and {ONE}"],
                                             None, {"fct_chart_entries.app_in_dim_apps"}),
    "fct_chart_entries.app_in_dim_apps": ([f"update marts.fct_chart_entries set app_id = '999999' where rank = 2 and {ONE}"],
                                          None, set()),
    "fct_chart_entries.country_in_dim_countries": (["delete from marts.dim_countries where code = 'fr'"], None,
                                                   {"mart_daily_rankings.country_in_dim_countries",
                                                    "mart_daily_country_summary.country_in_dim_countries"}),
    "fct_chart_entries.grain_unique": ([f"update marts.fct_chart_entries set rank = 3 where rank = 2 and {ONE}"],
                                       None, set()),
    "mart_daily_rankings.app_unique_in_chart": (
        [f"update marts.mart_daily_rankings set app_id = (select app_id from marts.mart_daily_rankings where rank = 3 "
         f"and {ONE}) where rank = 2 and {ONE}"], None, {"mart_daily_rankings.rank_delta_consistent"}),
    "mart_daily_rankings.previous_rank_in_range": (
        [f"update marts.mart_daily_rankings set previous_rank = 0, rank_delta = 0 - rank where rank = 2 and {ONE}"],
        None, set()),
    "mart_daily_rankings.rank_delta_consistent": (
        [f"update marts.mart_daily_rankings set rank_delta = rank_delta + 1 where rank = 2 and {ONE}"], None, set()),
    "mart_daily_rankings.new_entry_consistent": (
        [f"update marts.mart_daily_rankings set is_new_entry = not is_new_entry where rank = 2 and {ONE}"], None, set()),
    "mart_daily_rankings.row_count_reconciled": ([f"delete from marts.mart_daily_rankings where rank = 2 and {ONE}"],
                                                 None, {"mart_daily_country_summary.entries_top10_matches_rankings",
                                                        "mart_daily_country_summary.entries_top100_matches_rankings"}),
    "mart_daily_country_summary.top_app_matches_rankings": (
        [f"update marts.mart_daily_country_summary set number_one_app_id = (select app_id from marts.fct_chart_entries "
         f"where rank = 2 and {ONE}) where {ONE}"], None, set()),
    "mart_daily_country_summary.entries_top10_matches_rankings": (
        [f"update marts.mart_daily_country_summary set entries_top10 = entries_top10 + 1 where {ONE}"], None, set()),
    "mart_daily_country_summary.ranking_has_summary": ([f"delete from marts.mart_daily_country_summary where {ONE}"],
                                                       None, set()),
    "mart_daily_country_summary.grain_unique": (
        [f"insert into marts.mart_daily_country_summary select * from marts.mart_daily_country_summary where {ONE}"],
        None, set()),
    "mart_daily_country_summary.chart_has_ranking": (
        [f"insert into marts.mart_daily_country_summary select * replace ('top-grossing' as chart) "
         f"from marts.mart_daily_country_summary where {ONE}"], None,
        # A summary of a chart without a ranking has nothing to agree with either.
        {"mart_daily_country_summary.top_app_matches_rankings",
         "mart_daily_country_summary.entries_top10_matches_rankings"}),
    "mart_daily_rankings.app_in_dim_apps": (
        [f"delete from marts.dim_apps where app_id = (select app_id from marts.mart_daily_rankings where rank = 7 "
         f"and {ONE})"], None, {"fct_chart_entries.app_in_dim_apps"}),
    "dim_apps.app_id_unique": (["insert into marts.dim_apps select * from marts.dim_apps limit 1"], None, set()),
    "dim_countries.country_not_null": (["insert into marts.dim_countries values (null, 'x')"], None, set()),
    "mart_daily_rankings.rank_delta_within_bounds": ([], None, set()),  # max_rank_delta below the data's moves
}


@pytest.mark.parametrize("rule", sorted(VIOLATIONS))
def test_each_sql_rule_fails_on_its_violation(lake, rule):
    statements, relations, also = VIOLATIONS[rule]
    for sql in statements:
        lake.execute(sql)
    kw = {"max_rank_delta": 5} if rule.endswith("rank_delta_within_bounds") else {}
    checked = check_lake_window(lake, WINDOW, relations=relations, **kw)
    assert checked.staging.error is None and checked.marts.error is None, (checked.staging.error, checked.marts.error)
    assert failed(checked.staging) == set()
    assert failed(checked.marts) - also == {rule}, checked.marts.describe()
    outcome = checked.marts.outcome(rule)
    assert outcome.unexpected_count or outcome.observed_value is not None
    if rule.startswith(("fct_", "mart_")) and "within_bounds" not in rule and "dim_countries" not in rule:
        assert outcome.charts, outcome  # the failure is traced to its chart
    if rule == "mart_daily_rankings.app_in_dim_apps":  # the missing app is named
        app = lake.execute(f"select app_id from marts.mart_daily_rankings where rank = 7 and {ONE}").fetchone()[0]
        assert set(outcome.unexpected_values) == {app}  # once per row it is on


def test_check_leaves_no_connection_behind(tmp_path, lake):
    """After the check and the caller's close, the file opens with another configuration: nothing GX was handed
    keeps DuckDB's instance (and its file) alive."""
    path = lake.execute("select path from duckdb_databases() where database_name = current_database()").fetchone()[0]
    assert check_lake_window(lake, WINDOW).passed
    lake.close()
    con = duckdb.connect(path, read_only=True)  # raises if a cursor of the check were still open
    assert con.execute("select count(*) from marts.fct_chart_entries").fetchone()[0] > 0
    con.close()


def test_gx_persisted_connection_pin():
    """The fix depends on a private GX name: an upgrade that moves it must fail here, loudly."""
    version, module_name, attr = engine.GX_PERSISTED_DIALECTS_PIN
    assert engine.gx_version() == version, f"GX moved to {engine.gx_version()}: re-check {module_name}.{attr}"
    module = importlib.import_module(module_name)
    assert isinstance(getattr(module, attr), tuple)
    engine.keep_duckdb_connection()
    assert "duckdb" in getattr(module, attr)
    source = importlib.util.find_spec(module_name).origin
    text = open(source, encoding="utf-8").read()
    assert f"self.dialect_name in {attr}" in text  # get_connection still keeps the connection of those dialects
