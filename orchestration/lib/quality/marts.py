"""The staging and marts suites: dbt's outputs for one chart date or a small window, before publication.

Inputs are frames read from the lake (one per model), each optional: a check passes only the frames it owns
plus the ones it reconciles against. Column names are the canonical ones (DESIGN.md):

- staging / ``fct_chart_entries`` / ``mart_daily_rankings``: grain date x store x country x device x chart x
  genre x rank, with ``app_id``; rankings add ``previous_rank`` and ``rank_delta`` (``previous_rank - rank``,
  positive = climbed) and optionally ``is_new_entry`` and ``peak_rank``.
- ``mart_daily_country_summary``: grain date x store x country x device x chart (x genre), with the #1 app in
  ``top_app_id`` and optionally ``entries_top10`` / ``entries_top100``.
- ``dim_apps`` (``app_id``), ``dim_countries`` (``country``).

A rule whose column is missing fails (GX reports the missing column): a renamed column must not pass silently.

``marts_sql.check_lake_window`` is the form the ``marts_quality`` asset check runs: the same rules as GX
expectations on GX's SQL datasource over the lake, no frame of the rows built.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pandas as pd

from orchestration.lib.quality import engine
from orchestration.lib.quality.engine import CHART_KEY, blocking, warning
from orchestration.lib.quality.raw import APP_ID_REGEX, MAX_CHART_DEPTH
from orchestration.lib.quality.result import SuiteResult

KEY_COLUMNS = ("store", "country", "device", "chart", "chart_date")  # genre_id is nullable (overall chart)
TOP_APP_COLUMN = "top_app_id"

# Why each rule blocks; shared by the frame rules and their SQL-count forms so both read the same.
_REASONS = {
    "has_rows": "an empty model for a loaded window means a filter or join dropped everything",
    "not_null": "part of the grain: a null key cannot be joined, ranked or published",
    "grain_unique": "one row per date x store x country x device x chart x genre x rank, or sums and joins double count",
    "app_unique_in_chart": "an app twice in one chart would get two previous ranks and two deltas",
    "rank_in_range": "ranks are 1..200 at most",
    "app_id_well_formed": "app ids join the marts to dim_apps; Apple ids are positive integers",
    "row_count_reconciled": "every chart position upstream must arrive exactly once (no drops, no fan-out)",
    "summary_has_rows": "every published chart day has a summary row",
    "summary_grain": "one row per date x store x country x device x chart x genre",
}

def run_staging_suite(
    stg: pd.DataFrame,
    *,
    window: Any = None,
    raw: pd.DataFrame | None = None,
    name: str = "stg_apple__chart_entries",
) -> SuiteResult:
    """Validate the staging model for ``window`` (a date, or a half-open ``(min_date, max_date)``).

    ``raw``: the raw rows that should have reached staging for the same window (quarantined charts left out);
    each chart's staging row count must equal its raw ranks in the latest payload.
    """
    return _run("staging", window, lambda lo, hi: _fact_plan(name, stg, lo, hi, reference=raw))


def run_marts_suite(
    *,
    fct: pd.DataFrame | None = None,
    rankings: pd.DataFrame | None = None,
    summary: pd.DataFrame | None = None,
    dim_apps: pd.DataFrame | None = None,
    dim_countries: pd.DataFrame | None = None,
    raw: pd.DataFrame | None = None,
    window: Any = None,
    max_rank_delta: int = MAX_CHART_DEPTH - 1,
) -> SuiteResult:
    """Validate whichever marts are given, for ``window``, against each other and the dims.

    Reconciliation: ``fct`` against ``raw`` (if given); ``rankings`` against ``fct`` (else ``raw``); the summary
    against ``rankings``. Referential integrity: every ``app_id`` in fct/rankings/summary is in ``dim_apps`` and
    every ``country`` in ``dim_countries``, when those dims are given.
    """
    if all(f is None for f in (fct, rankings, summary, dim_apps, dim_countries)):
        raise ValueError("run_marts_suite needs at least one mart frame")
    if dim_countries is not None and "country" not in dim_countries.columns and "code" in dim_countries.columns:
        dim_countries = dim_countries.rename(columns={"code": "country"})  # the dbt seed names its key `code`

    def plans(lo, hi):
        out = []
        if dim_apps is not None:
            out.append(_dim_plan("dim_apps", dim_apps, "app_id"))
        if dim_countries is not None:
            out.append(_dim_plan("dim_countries", dim_countries, "country"))
        if fct is not None:
            out.extend(_fact_plan("fct_chart_entries", fct, lo, hi, reference=raw,
                                  dim_apps=dim_apps, dim_countries=dim_countries))
        if rankings is not None:
            out.extend(_fact_plan("mart_daily_rankings", rankings, lo, hi,
                                  reference=fct if fct is not None else raw,
                                  dim_apps=dim_apps, dim_countries=dim_countries, max_rank_delta=max_rank_delta))
        if summary is not None:
            out.extend(_summary_plan(summary, rankings, lo, hi, dim_apps, dim_countries))
        return out

    return _run("marts", window, plans)


def _run(suite: str, window, build_plans) -> SuiteResult:
    started = time.perf_counter()
    result = SuiteResult(suite=suite, partition={"window": _window_label(window)})
    try:
        lo, hi = _window(window)
        result.gx_version = engine.gx_version()
        charts: set[str] = set()
        for frame_name, frame, rules, keys in build_plans(lo, hi):
            if CHART_KEY in frame.columns:
                charts.update(frame[CHART_KEY].dropna())
            outcomes, gx_result = engine.validate_frame(suite, frame_name, frame, rules, key_columns=keys)
            result.outcomes.extend(outcomes)
            result.gx_results[frame_name] = gx_result
        result.charts = sorted(charts)
    except Exception as exc:  # a suite that cannot run is a failure, never a pass
        result.error = f"{type(exc).__name__}: {exc} (window={_window_label(window)})"
    result.duration_s = time.perf_counter() - started
    return result


def _fact_plan(frame_name, df, lo, hi, *, reference=None, dim_apps=None, dim_countries=None, max_rank_delta=None,
               aggregated=False):
    """Rules for a frame at the chart-position grain (staging, fct, rankings).

    ``aggregated``: the frame is one part of a window whose per-chart rules (has rows, grain, app once per chart,
    reconciliation) run on SQL counts instead (``_counts_plan``); only the row-by-row rules run here.
    """
    e = engine.gxe()
    f = _with_keys(df)
    f["in_window"] = _in_window(f["chart_date"], lo, hi)
    p = f"{frame_name}."
    rules = [] if aggregated else [
        blocking(p + "has_rows", e.ExpectTableRowCountToBeBetween(min_value=1), _REASONS["has_rows"]),
    ]
    rules.append(blocking(p + "in_window", e.ExpectColumnValuesToBeInSet(column="in_window", value_set=[True]),
                          "rows outside the partition's window would be published under the wrong partition"))
    rules += [
        blocking(p + f"{c}_not_null", e.ExpectColumnValuesToNotBeNull(column=c), _REASONS["not_null"])
        for c in (*KEY_COLUMNS, "rank", "app_id")
    ]
    if not aggregated:
        rules += [
            blocking(p + "grain_unique", e.ExpectCompoundColumnsToBeUnique(column_list=[CHART_KEY, "rank"]),
                     _REASONS["grain_unique"]),
            blocking(p + "app_unique_in_chart", e.ExpectCompoundColumnsToBeUnique(column_list=[CHART_KEY, "app_id"]),
                     _REASONS["app_unique_in_chart"]),
        ]
    rules += [
        blocking(p + "rank_in_range", e.ExpectColumnValuesToBeBetween(column="rank", min_value=1, max_value=MAX_CHART_DEPTH),
                 _REASONS["rank_in_range"]),
        blocking(p + "app_id_well_formed", e.ExpectColumnValuesToMatchRegex(column="app_id", regex=APP_ID_REGEX),
                 _REASONS["app_id_well_formed"]),
    ]
    rules += _ref_rules(p, f, dim_apps, dim_countries)
    if max_rank_delta is not None:  # the rankings mart
        f["expected_rank_delta"] = pd.to_numeric(f.get("previous_rank"), errors="coerce") - pd.to_numeric(
            f["rank"], errors="coerce")
        f["abs_rank_delta"] = pd.to_numeric(f.get("rank_delta"), errors="coerce").abs()
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
        if "is_new_entry" in f.columns:
            f["expected_new_entry"] = f["previous_rank"].isna()
            f["is_new_entry_bool"] = f["is_new_entry"].astype("boolean")
            if "is_re_entry" in f.columns:
                # No previous rank means the app is new to the chart or back after a gap: exactly one of the flags.
                f["is_new_entry_bool"] = f["is_new_entry_bool"] | f["is_re_entry"].astype("boolean")
            rules.append(blocking(p + "new_entry_consistent",
                                  e.ExpectColumnPairValuesToBeEqual(column_A="is_new_entry_bool", column_B="expected_new_entry"),
                                  "a new entry is exactly an app with no previous rank"))
        if "peak_rank" not in f.columns and "peak_rank_to_date" in f.columns:
            f["peak_rank"] = f["peak_rank_to_date"]
        if "peak_rank" in f.columns:
            rules.append(blocking(p + "peak_rank_not_worse_than_rank",
                                  e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="rank", column_B="peak_rank", or_equal=True),
                                  "the peak rank is the best rank so far, so it can never be worse than today's"))
    for c in ("rank", "previous_rank", "abs_rank_delta"):
        if c in f.columns:
            f[c] = _vectorisable(f[c])
    plans = [(frame_name, f, rules, (CHART_KEY,))]
    if reference is not None and not aggregated:
        # Counts live at the chart grain, so they are their own frame (one row per chart).
        plans.append((f"{frame_name}.counts", _reconcile(f, reference), [
            blocking(p + "row_count_reconciled",
                     e.ExpectColumnPairValuesToBeEqual(column_A="rows", column_B="expected_rows"),
                     _REASONS["row_count_reconciled"]),
        ], (CHART_KEY,)))
    return plans


def _vectorisable(s: pd.Series) -> pd.Series:
    """An integer column as int64 (float64 if it has nulls): GX's range check runs vectorised only on those
    dtypes and calls Python per value on DuckDB's int32 or pandas' nullable integers."""
    if not pd.api.types.is_integer_dtype(s):
        return s
    if s.isna().any():
        return s.astype("float64")
    return s.astype("int64")


def _summary_plan(summary, rankings, lo, hi, dim_apps, dim_countries, aggregated=False):
    e = engine.gxe()
    if TOP_APP_COLUMN not in summary.columns and "number_one_app_id" in summary.columns:
        summary = summary.rename(columns={"number_one_app_id": TOP_APP_COLUMN})  # the dbt mart's name for it
    f = _with_keys(summary)
    f["in_window"] = _in_window(f["chart_date"], lo, hi)
    p = "mart_daily_country_summary."
    rules = [blocking(p + "in_window", e.ExpectColumnValuesToBeInSet(column="in_window", value_set=[True]),
                      "rows outside the partition's window would be published under the wrong partition")]
    if not aggregated:  # else both run on SQL counts (``_counts_plan``)
        rules.insert(0, blocking(p + "has_rows", e.ExpectTableRowCountToBeBetween(min_value=1),
                                 _REASONS["summary_has_rows"]))
        rules.append(blocking(p + "grain_unique", e.ExpectColumnValuesToBeUnique(column=CHART_KEY),
                              _REASONS["summary_grain"]))
    rules += [
        blocking(p + f"{c}_not_null", e.ExpectColumnValuesToNotBeNull(column=c),
                 "part of the grain: a null key cannot be joined or published")
        for c in KEY_COLUMNS
    ]
    rules += _ref_rules(p, f, dim_apps, dim_countries, app_column=TOP_APP_COLUMN)
    if rankings is not None:
        r = _with_keys(rankings)
        ranks = pd.to_numeric(r["rank"], errors="coerce")
        top = r[ranks == 1].drop_duplicates(CHART_KEY).set_index(CHART_KEY)["app_id"]
        f["rankings_top_app_id"] = f[CHART_KEY].map(top)
        rules.append(blocking(p + "top_app_matches_rankings",
                              e.ExpectColumnPairValuesToBeEqual(column_A=TOP_APP_COLUMN, column_B="rankings_top_app_id"),
                              "the #1 app shown in the summary must be the app at rank 1 in the day's ranking"))
        prev = pd.to_numeric(r.get("previous_rank"), errors="coerce") if "previous_rank" in r.columns else None
        for n in (10, 100):
            col = f"entries_top{n}"
            if col in f.columns and prev is not None:
                entered = (ranks <= n) & (prev.isna() | (prev > n))
                counts = entered.groupby(r[CHART_KEY]).sum()
                f[f"rankings_{col}"] = f[CHART_KEY].map(counts).fillna(0)
                f[f"{col}_num"] = pd.to_numeric(f[col], errors="coerce")
                rules.append(blocking(p + f"{col}_matches_rankings",
                                      e.ExpectColumnPairValuesToBeEqual(column_A=f"{col}_num", column_B=f"rankings_{col}"),
                                      f"entries into the top {n} are the ranked apps whose previous rank was outside it"))
        # Every summarised chart must have a ranking and vice versa.
        f["has_ranking"] = f[CHART_KEY].isin(set(r[CHART_KEY]))
        rules.append(blocking(p + "chart_has_ranking", e.ExpectColumnValuesToBeInSet(column="has_ranking", value_set=[True]),
                              "a summary without a ranking summarises nothing that can be published"))
        # The other direction has the rankings' grain, so it is its own frame: one row per ranked chart.
        coverage = pd.DataFrame({CHART_KEY: sorted(set(r[CHART_KEY]))})
        coverage["has_summary"] = coverage[CHART_KEY].isin(set(f[CHART_KEY]))
        return [
            ("mart_daily_country_summary", f, rules, (CHART_KEY,)),
            ("mart_daily_country_summary.coverage", coverage, [
                blocking(p + "ranking_has_summary",
                         e.ExpectColumnValuesToBeInSet(column="has_summary", value_set=[True]),
                         "every ranked chart day must appear in the country summary"),
            ], (CHART_KEY,)),
        ]
    return [("mart_daily_country_summary", f, rules, (CHART_KEY,))]


def _dim_plan(name: str, dim: pd.DataFrame, key: str):
    e = engine.gxe()
    unique = (
        # A history dimension (valid_from/valid_to) holds one row per version of its key.
        e.ExpectCompoundColumnsToBeUnique(column_list=[key, "valid_from"]) if "valid_from" in dim.columns
        else e.ExpectColumnValuesToBeUnique(column=key)
    )
    rules = [
        blocking(f"{name}.{key}_not_null", e.ExpectColumnValuesToNotBeNull(column=key),
                 "a dimension row without its key cannot be joined"),
        blocking(f"{name}.{key}_unique", unique, "a duplicated dimension key fans out every fact joined to it"),
    ]
    return (name, dim, rules, ())


def _ref_rules(p, f, dim_apps, dim_countries, app_column="app_id"):
    rules = []
    if dim_apps is not None:
        rules.append(blocking(p + "app_in_dim_apps", _in_dim(f, app_column, dim_apps, "dim_apps", "app_id"),
                              "an app missing from dim_apps shows up in BI without a name or developer"))
    if dim_countries is not None:
        rules.append(blocking(p + "country_in_dim_countries",
                              _in_dim(f, "country", dim_countries, "dim_countries", "country"),
                              "a country missing from dim_countries has no name or region in BI"))
    return rules


def _in_dim(f: pd.DataFrame, column: str, dim: pd.DataFrame, dim_name: str, key: str):
    """An expectation that every non-null ``column`` value of ``f`` is a ``key`` of ``dim``.

    The values missing from the dimension are copied to a helper column that must be null, so GX lists them as
    the unexpected values. Not a value set: GX re-serialises an expectation's arguments many times per
    validation, and with every app id of dim_apps as its value set that took most of the suite's time.
    """
    keys = _values(dim, key)
    if column not in f.columns:
        return engine.gxe().ExpectColumnValuesToBeNull(column=column)  # GX reports the missing column: a failure
    values = f[column]
    helper = f"{column}_not_in_{dim_name}"
    f[helper] = values.astype(object).where(values.notna() & ~values.isin(keys), None)
    return engine.gxe().ExpectColumnValuesToBeNull(column=helper)


def _values(dim: pd.DataFrame, col: str) -> list:
    if col not in dim.columns:
        raise KeyError(f"dimension frame has no column {col!r} (columns: {list(dim.columns)})")
    return sorted(dim[col].dropna().astype(str).unique().tolist())


def _reconcile(frame: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Rows per chart in ``frame`` next to the expected rows from ``reference`` (latest payload per chart)."""
    ref = _with_keys(reference)
    if "payload_sha256" in ref.columns and "fetched_at" in ref.columns:
        latest = ref.sort_values("fetched_at", kind="stable").groupby(CHART_KEY)["payload_sha256"].last()
        ref = ref[ref["payload_sha256"].eq(ref[CHART_KEY].map(latest))]
    expected = ref.groupby(CHART_KEY)["rank"].nunique()
    actual = frame.groupby(CHART_KEY).size()
    keys = sorted(set(expected.index) | set(actual.index))
    return pd.DataFrame({
        CHART_KEY: keys,
        "rows": [int(actual.get(k, 0)) for k in keys],
        "expected_rows": [int(expected.get(k, 0)) for k in keys],
    })


def _with_keys(df: pd.DataFrame) -> pd.DataFrame:
    f = df.copy()
    for col in (*KEY_COLUMNS, "rank", "app_id"):
        if col not in f.columns:
            f[col] = pd.Series(None, index=f.index, dtype=object)
    f[CHART_KEY] = engine.chart_labels(f)
    return f


def _in_window(dates: pd.Series, lo: dt.date | None, hi: dt.date | None) -> pd.Series:
    if lo is None:
        return pd.Series(True, index=dates.index)

    def inside(v) -> bool:
        d = engine.to_date(v)
        return d is not None and lo <= d < hi

    return pd.Series(engine.map_distinct(dates, inside, False), index=dates.index, dtype=bool)


def _window(window) -> tuple[dt.date | None, dt.date | None]:
    if window is None:
        return None, None
    if isinstance(window, (tuple, list)):
        lo, hi = (engine.to_date(w) for w in window)
    else:
        lo = engine.to_date(window)
        hi = lo + dt.timedelta(days=1) if lo else None
    if lo is None or hi is None or hi <= lo:
        raise ValueError(f"window {window!r} is not a date or a half-open (min_date, max_date) pair")
    return lo, hi


def _window_label(window) -> str | None:
    if window is None:
        return None
    if isinstance(window, (tuple, list)):
        return "[" + ", ".join(str(w) for w in window) + ")"
    return str(window)
