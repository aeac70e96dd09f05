"""The staging and marts rules: what each model must satisfy, and why a failure blocks the publish.

No lake reading here (that is ``marts.py``): a rule names the columns of the rows it is given, a model's window
rows or its per-chart counts (``marts._Plan.count``), and the few derived columns a rule compares are SQL
expressions over those rows, defined here beside the rule that reads them. Every rule keys by chart
(``ChartKey.label()``, store first), so Apple and Google Play charts never mix; a rule whose column is missing
fails, so a renamed column cannot pass silently.
"""

from __future__ import annotations

from orchestration.lib.quality import engine
from orchestration.lib.quality.engine import CHART_KEY, Rule, blocking
from orchestration.lib.quality.raw import APP_ID_REGEX, MAX_CHART_DEPTH

KEY_COLUMNS = ("store", "country", "device", "chart", "chart_date")  # genre_id is nullable (overall chart)
TOP_APP_COLUMN = "top_app_id"
MODEL_NAMES = {"staging": "stg_apple__chart_entries", "fct": "fct_chart_entries",
               "rankings": "mart_daily_rankings", "summary": "mart_daily_country_summary"}
UPSTREAM = {"staging": "raw", "fct": "staging", "rankings": "fct"}  # what each model's rows reconcile against

# Why each rule blocks; shared by a rule's row form and its per-chart count form so both read the same.
REASONS = {
    "has_rows": "an empty model for a loaded window means a filter or join dropped everything",
    "not_null": "part of the grain: a null key cannot be joined, ranked or published",
    "grain_unique": "one row per date x store x country x device x chart x genre x rank, or sums and joins double count",
    "app_unique_in_chart": "an app twice in one chart would get two previous ranks and two deltas",
    "rank_in_range": "ranks are 1..200 at most",
    "app_id_well_formed": "app ids join the marts to dim_apps; Apple ids are positive integers, Google Play ids "
                          "package names",
    "row_count_reconciled": "every chart position upstream must arrive exactly once (no drops, no fan-out)",
    "summary_has_rows": "every published chart day has a summary row",
    "summary_grain": "one row per date x store x country x device x chart x genre",
}

# App ids by store: a store's rows are judged by that store's form only (an unknown store's ids never match).
APP_ID_REGEX_BY_STORE = {
    "apple": APP_ID_REGEX,
    "google_play": r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$",  # Android package names
}


def app_id_well_formed_sql(column: str = "app_id", store: str = "store") -> str:
    """True where ``column`` has its store's form (null for a null id: the not-null rule reports those)."""
    whens = " ".join(f"when '{s}' then regexp_matches(cast({column} as varchar), '{r}')"
                     for s, r in APP_ID_REGEX_BY_STORE.items())
    return f"(case when {column} is null then null else case {store} {whens} else false end end)"


def _braces(text: str) -> str:
    """``text`` inside a GX query template, where braces other than ``{batch}`` must be doubled."""
    return text.replace("{", "{{").replace("}", "}}")


def counts_rules(model: str) -> list[Rule]:
    """The rules over one model's per-chart counts (``rows``, ``ranks``, ``apps``, null and violation counts, and
    ``expected_rows`` from its upstream)."""
    e = engine.gxe()
    name = MODEL_NAMES[model]
    p = f"{name}."
    rules = [blocking(p + "has_rows", e.ExpectColumnMaxToBeBetween(column="rows", min_value=1),
                      REASONS["summary_has_rows" if model == "summary" else "has_rows"])]
    if model == "summary":
        rules.append(blocking(p + "grain_unique", e.ExpectColumnValuesToBeBetween(column="rows", max_value=1),
                              REASONS["summary_grain"]))
        return rules
    if model == "staging":  # not read row by row: its row rules as per-chart violation counts
        rules += [blocking(p + f"{c}_not_null", e.ExpectColumnValuesToBeInSet(column=f"{c}_nulls", value_set=[0]),
                           REASONS["not_null"]) for c in (*KEY_COLUMNS, "rank", "app_id")]
    rules += [
        blocking(p + "grain_unique", e.ExpectColumnPairValuesToBeEqual(column_A="rows", column_B="ranks"),
                 REASONS["grain_unique"]),
        blocking(p + "app_unique_in_chart", e.ExpectColumnPairValuesToBeEqual(column_A="rows", column_B="apps"),
                 REASONS["app_unique_in_chart"]),
    ]
    if model == "staging":
        rules += [
            blocking(p + "rank_in_range", e.ExpectColumnValuesToBeInSet(column="ranks_out_of_range", value_set=[0]),
                     REASONS["rank_in_range"]),
            blocking(p + "app_id_well_formed",
                     e.ExpectColumnValuesToBeInSet(column="malformed_app_ids", value_set=[0]),
                     REASONS["app_id_well_formed"]),
        ]
    rules.append(blocking(p + "row_count_reconciled",
                          e.ExpectColumnPairValuesToBeEqual(column_A="rows", column_B="expected_rows"),
                          REASONS["row_count_reconciled"] + f" ({UPSTREAM[model]} -> {model})"))
    return rules


def dim_rules(name: str, key: str, history: bool) -> list[Rule]:
    """A dimension's key is never null and unique (per ``valid_from`` in a history dimension, one row a version)."""
    e = engine.gxe()
    unique = (e.ExpectCompoundColumnsToBeUnique(column_list=[key, "valid_from"]) if history
              else e.ExpectColumnValuesToBeUnique(column=key))
    return [
        blocking(f"{name}.{key}_not_null", e.ExpectColumnValuesToNotBeNull(column=key),
                 "a dimension row without its key cannot be joined"),
        blocking(f"{name}.{key}_unique", unique, "a duplicated dimension key fans out every fact joined to it"),
    ]


def ref_rules(p: str, app_column: str = "app_id") -> list[Rule]:
    """Over the reading's ``<app_column>_not_in_dim_apps`` and ``country_not_in_dim_countries`` columns (the values
    missing from a dimension, null when found)."""
    e = engine.gxe()
    return [
        blocking(p + "app_in_dim_apps", e.ExpectColumnValuesToBeNull(column=f"{app_column}_not_in_dim_apps"),
                 "an app missing from dim_apps shows up in BI without a name or developer"),
        blocking(p + "country_in_dim_countries",
                 e.ExpectColumnValuesToBeNull(column="country_not_in_dim_countries"),
                 "a country missing from dim_countries has no name or region in BI"),
    ]


def fact_rules(model: str, have: set[str], max_rank_delta: int) -> tuple[tuple[str, ...], list[str], list[Rule]]:
    """(columns to read beyond the chart grain, rank and app id; derived columns over them; rules) for the rows of
    ``fct`` or ``rankings``; ``have``: the model's columns (optional rankings columns are judged when present)."""
    e = engine.gxe()
    p = f"{MODEL_NAMES[model]}."
    wanted: tuple[str, ...] = ()
    derived: list[str] = []
    rules = [
        *(blocking(p + f"{c}_not_null", e.ExpectColumnValuesToNotBeNull(column=c), REASONS["not_null"])
          for c in (*KEY_COLUMNS, "rank", "app_id")),
        blocking(p + "rank_in_range",
                 e.ExpectColumnValuesToBeBetween(column="rank", min_value=1, max_value=MAX_CHART_DEPTH),
                 REASONS["rank_in_range"]),
        *ref_rules(p),
    ]
    if model != "rankings":
        return wanted, derived, rules
    wanted += ("previous_rank", "rank_delta", *(c for c in ("is_new_entry", "is_re_entry", "peak_rank",
                                                            "peak_rank_to_date") if c in have))
    derived += ["previous_rank - rank as expected_rank_delta", "abs(rank_delta) as abs_rank_delta"]
    rules += [
        blocking(p + "previous_rank_in_range",
                 e.ExpectColumnValuesToBeBetween(column="previous_rank", min_value=1, max_value=MAX_CHART_DEPTH),
                 "a previous rank outside 1..200 was read from the wrong day or chart"),
        blocking(p + "rank_delta_consistent",
                 e.ExpectColumnPairValuesToBeEqual(column_A="rank_delta", column_B="expected_rank_delta"),
                 "rank_delta is previous_rank - rank (null for a new entry); anything else misreports climbs"),
        blocking(p + "rank_delta_within_bounds",
                 e.ExpectColumnValuesToBeBetween(column="abs_rank_delta", min_value=0, max_value=max_rank_delta),
                 "no app can move further than the chart is deep"),
    ]
    if "is_new_entry" in have:
        # No previous rank means the app is new to the chart or back after a gap: exactly one of the flags.
        flag = ("cast(is_new_entry as boolean) or cast(is_re_entry as boolean)" if "is_re_entry" in have
                else "cast(is_new_entry as boolean)")
        derived += [f"{flag} as is_new_entry_bool", "previous_rank is null as expected_new_entry"]
        rules.append(blocking(p + "new_entry_consistent",
                              e.ExpectColumnPairValuesToBeEqual(column_A="is_new_entry_bool",
                                                                column_B="expected_new_entry"),
                              "a new entry is exactly an app with no previous rank"))
    peak = "peak_rank" if "peak_rank" in have else "peak_rank_to_date" if "peak_rank_to_date" in have else None
    if peak:
        derived.append(f"{peak} as peak_rank_checked")
        rules.append(blocking(p + "peak_rank_not_worse_than_rank",
                              e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="rank", column_B="peak_rank_checked",
                                                                        or_equal=True),
                              "the peak rank is the best rank so far, so it can never be worse than today's"))
    return wanted, derived, rules


def app_id_well_formed_rules(model: str) -> list[Rule]:
    """The one rule over a fact's rows as unexpected rows (``{batch}`` is the rows GX validates)."""
    e = engine.gxe()
    p = f"{MODEL_NAMES[model]}."
    # Not ExpectColumnValuesToMatchRegex: GX 1.24 does not support it for the duckdb dialect.
    return [blocking(p + "app_id_well_formed", e.UnexpectedRowsExpectation(
        unexpected_rows_query=f"select {CHART_KEY}, app_id from {{batch}} "
                              f"where not {_braces(app_id_well_formed_sql())}",
        description="app ids have their store's form"), REASONS["app_id_well_formed"])]


def summary_rules(entries: list[str], counted: bool) -> tuple[list[str], list[Rule]]:
    """(derived columns, rules) for the country summary's rows, read as ``s`` joined (when the per-chart counts
    exist, ``counted``) to the rankings' counts as ``rc``; ``entries``: its ``entries_top<n>`` columns."""
    e = engine.gxe()
    p = "mart_daily_country_summary."
    derived: list[str] = []
    rules = [
        *(blocking(p + f"{c}_not_null", e.ExpectColumnValuesToNotBeNull(column=c),
                   "part of the grain: a null key cannot be joined or published") for c in KEY_COLUMNS),
        *ref_rules(p, TOP_APP_COLUMN),
    ]
    if not counted:
        return derived, rules
    derived += ["rc.top_app_id as rankings_top_app_id", "rc.rows is not null as has_ranking"]
    rules.append(blocking(p + "top_app_matches_rankings",
                          e.ExpectColumnPairValuesToBeEqual(column_A=TOP_APP_COLUMN, column_B="rankings_top_app_id"),
                          "the #1 app shown in the summary must be the app at rank 1 in the day's ranking"))
    for col in entries:
        derived += [f"cast(s.{col} as double) as {col}_num", f"cast(coalesce(rc.{col}, 0) as double) as rankings_{col}"]
        n = col.removeprefix("entries_top")
        rules.append(blocking(p + f"{col}_matches_rankings",
                              e.ExpectColumnPairValuesToBeEqual(column_A=f"{col}_num", column_B=f"rankings_{col}"),
                              f"entries into the top {n} are the ranked apps whose previous rank was outside it"))
    rules.append(blocking(p + "chart_has_ranking",
                          e.ExpectColumnValuesToBeInSet(column="has_ranking", value_set=[True]),
                          "a summary without a ranking summarises nothing that can be published"))
    return derived, rules


def coverage_rules() -> list[Rule]:
    """Over one row per ranked chart with ``has_summary``: the other direction of the summary's grain."""
    e = engine.gxe()
    return [blocking("mart_daily_country_summary.ranking_has_summary",
                     e.ExpectColumnValuesToBeInSet(column="has_summary", value_set=[True]),
                     "every ranked chart day must appear in the country summary")]
