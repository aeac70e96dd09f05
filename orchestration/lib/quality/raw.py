"""The raw suite: one country's raw chart rows for one day, all its charts, before dbt reads them.

Grain of the input: one row per chart position as landed in ``lake.raw.chart_entries`` (columns
``canonical.RAW_COLUMNS``), filtered to one ``country`` and one partition date. A "chart" here is one payload
of one chart key: a chart fetched twice in a day has two payloads, and each must be a well-formed ranking.

Blocking rules stop the country-day (or, through ``SuiteResult.failed_charts``, just the bad charts) from
reaching the marts; warnings flag feeds that look wrong without being provably wrong (a byte-identical payload, a short chart
standing still, a reshuffled feed). A deep ranking identical to the previous day's is a frozen feed: blocking.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from typing import Iterable, Mapping

import pandas as pd

from orchestration.lib.quality import engine
from orchestration.lib.quality.engine import CHART_KEY, blocking, warning
from orchestration.lib.quality.result import SuiteResult
from orchestration.sources.canonical import CHARTS, DEVICES, RAW_COLUMNS, STORES

SUITE = "raw_chart_entries"
# Apple ids are positive integers; a leading zero only appears in made-up ids (WBGame's "0000000001" sample).
APP_ID_REGEX = r"^[1-9][0-9]{0,11}$"
# The legacy iTunes feed serves up to 200 entries, the v2 feed 100: nothing larger is a real chart.
MAX_CHART_DEPTH = 200
# Real feeds come back a few entries short of the limit (paid charts: 95-99 of 100), never a tenth of it.
DEFAULT_DEPTH_TOLERANCE = 0.10
# Share of a chart's apps not seen in the country's charts in the previous 7 days. Measured on the real
# WBGame charts (26 days, cn/jp/us): mean 0.03, max 0.21 (US top-paid Business). A feed that silently switched
# to another chart (WBGame's overall -> Business overwrite) scores near 1.
DEFAULT_NEW_APP_SHARE_RANGE = (0.0, 0.35)

# From this depth up, a ranking identical to the previous day's is taken as a frozen feed and quarantined.
STALE_MIN_ENTRIES = 50

_LIMIT_PATTERNS = (re.compile(r"/limit=(\d+)"), re.compile(r"/(\d+)/[a-z-]+\.json"))


def run_raw_suite(
    df: pd.DataFrame,
    *,
    country: str,
    chart_date: dt.date | str,
    expected_depth: int | Mapping[str, int] | None = None,
    depth_tolerance: float = DEFAULT_DEPTH_TOLERANCE,
    previous_payload_hashes: Iterable[str] | None = None,
    previous_day: pd.DataFrame | None = None,
    recent_app_ids: Iterable[str] | None = None,
    new_app_share_range: tuple[float, float] = DEFAULT_NEW_APP_SHARE_RANGE,
) -> SuiteResult:
    """Validate one country-day of raw rows. Never raises: an exception is recorded as a failed run.

    ``expected_depth``: entries each chart should have: an int for all charts, or a mapping keyed by
    ``"device/chart"`` or ``chart`` (e.g. ``{"top-grossing": 200, "ipad/top-free": 100}``). Unset, it is read
    from each chart's ``source_url`` (``limit=N`` or ``/N/apps.json``); unknown, only 1..200 is required.
    ``previous_payload_hashes`` / ``previous_day`` (the previous day's raw rows of this country) enable the
    stale-feed warnings; ``recent_app_ids`` (app ids in this country's charts over the previous 7 days) enables
    the new-app-share warning.
    """
    started = time.perf_counter()
    day = engine.to_date(chart_date)
    result = SuiteResult(suite=SUITE, partition={"country": country, "chart_date": day.isoformat() if day else str(chart_date)})
    try:
        if day is None:
            raise ValueError(f"chart_date {chart_date!r} is not a date")
        result.gx_version = engine.gx_version()
        rows = _rows_frame(df, day)
        charts = _charts_frame(
            rows, expected_depth, depth_tolerance, previous_payload_hashes, previous_day, recent_app_ids
        )
        result.charts = sorted(set(rows[CHART_KEY]))
        schema = engine.schema_frame(df, RAW_COLUMNS)
        plans = [
            ("schema", schema, engine.schema_rules(""), ("column",)),
            ("rows", rows, _row_rules(country), (CHART_KEY, "payload_sha256")),
            (
                "charts",
                charts,
                _chart_rules(
                    stale_hashes=previous_payload_hashes is not None,
                    stale_ranking=previous_day is not None,
                    new_apps=recent_app_ids is not None,
                    share_range=new_app_share_range,
                ),
                (CHART_KEY, "payload_sha256"),
            ),
        ]
        for frame_name, frame, rules, keys in plans:
            outcomes, gx_result = engine.validate_frame(SUITE, frame_name, frame, rules, key_columns=keys)
            result.outcomes.extend(outcomes)
            result.gx_results[frame_name] = gx_result
    except Exception as exc:  # a suite that cannot run is a failure, never a pass
        result.error = f"{type(exc).__name__}: {exc} (country={country}, chart_date={chart_date})"
    result.duration_s = time.perf_counter() - started
    return result


def _row_rules(country: str) -> list[engine.Rule]:
    e = engine.gxe()
    rules = [
        blocking(
            "has_rows",
            e.ExpectTableRowCountToBeBetween(min_value=1),
            "a country-day with no rows is a failed load, not an empty chart",
        ),
    ]
    for col in ("store", "country", "device", "chart", "chart_date", "rank", "app_id", "payload_sha256"):
        rules.append(
            blocking(
                f"{col}_not_null",
                e.ExpectColumnValuesToNotBeNull(column=col),
                "part of the chart grain or its lineage: a null cannot be ranked, joined or traced",
            )
        )
    rules += [
        blocking("store_known", e.ExpectColumnValuesToBeInSet(column="store", value_set=list(STORES)),
                 "marts are keyed by store; an unknown store would be a new, unaudited dimension value"),
        blocking("device_known", e.ExpectColumnValuesToBeInSet(column="device", value_set=list(DEVICES)),
                 "only iphone and ipad charts exist; anything else is a parser bug"),
        blocking("chart_known", e.ExpectColumnValuesToBeInSet(column="chart", value_set=list(CHARTS)),
                 "only top-free, top-paid and top-grossing exist; anything else is a parser bug"),
        blocking("country_is_partition", e.ExpectColumnValuesToBeInSet(column="country", value_set=[country]),
                 "rows filed under another country's partition would publish that country's chart as this one's"),
        blocking("chart_date_within_a_day",
                 e.ExpectColumnValuesToBeBetween(column="chart_date_offset_days", min_value=-1, max_value=1),
                 "Apple dates charts in its own time zone (one day either way is normal); more is a stale or misfiled payload"),
        blocking("rank_positive", e.ExpectColumnValuesToBeBetween(column="rank", min_value=1, max_value=MAX_CHART_DEPTH),
                 "ranks start at 1 and no feed serves more than 200 entries"),
        blocking("rank_unique_in_chart",
                 e.ExpectCompoundColumnsToBeUnique(column_list=[CHART_KEY, "payload_sha256", "rank"]),
                 "two apps at one rank make every rank-based figure (previous rank, #1 app) ambiguous"),
        blocking("app_unique_in_chart",
                 e.ExpectCompoundColumnsToBeUnique(column_list=[CHART_KEY, "payload_sha256", "app_id"]),
                 "an app listed twice in one chart means the payload was mis-parsed or spliced"),
        blocking("rank_within_chart_size",
                 e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="chart_size", column_B="rank", or_equal=True),
                 "with unique ranks starting at 1, rank <= entries means ranks are 1..N with no gap"),
        blocking("app_id_well_formed", e.ExpectColumnValuesToMatchRegex(column="app_id", regex=APP_ID_REGEX),
                 "app ids join every mart to dim_apps; Apple ids are positive integers"),
        warning("app_name_present", e.ExpectColumnValuesToNotBeNull(column="app_name"),
                "a nameless entry still ranks, but the marts and BI will show a blank app"),
    ]
    return rules


def _chart_rules(*, stale_hashes: bool, stale_ranking: bool, new_apps: bool, share_range) -> list[engine.Rule]:
    e = engine.gxe()
    rules = [
        blocking("chart_depth_at_least_expected",
                 e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="entries", column_B="min_entries", or_equal=True),
                 "a chart cut far below its requested depth (10 of 100) would turn the missing apps into false exits"),
        blocking("chart_depth_at_most_expected",
                 e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="max_entries", column_B="entries", or_equal=True),
                 "more entries than requested means payloads were merged or a limit was ignored"),
        warning("one_payload_per_chart",
                e.ExpectColumnValuesToBeBetween(column="payloads_for_chart", min_value=1, max_value=1),
                "a same-day re-fetch is legal (staging keeps the latest) but usually means a retried load"),
    ]
    if stale_hashes:
        rules.append(warning(
            "payload_differs_from_previous_day",
            e.ExpectColumnValuesToBeInSet(column="payload_seen_previous_day", value_set=[False]),
            "a byte-identical payload on consecutive days suggests a stale feed or cache, though charts can stand still",
        ))
    if stale_ranking:
        rules.append(blocking(
            "ranking_differs_from_previous_day",
            e.ExpectColumnValuesToBeInSet(column="frozen_ranking", value_set=[False]),
            f"a ranking of {STALE_MIN_ENTRIES}+ apps identical to the previous day's is a frozen feed (none of 363 "
            "day-over-day pairs of the real charts in shared/real_charts was): publishing it would show a day "
            "without a single move",
        ))
        rules.append(warning(
            "short_ranking_differs_from_previous_day",
            e.ExpectColumnValuesToBeInSet(column="frozen_short_ranking", value_set=[False]),
            f"a chart under {STALE_MIN_ENTRIES} apps can stand still for a day; unchanged, it is only suspicious",
        ))
    if new_apps:
        lo, hi = share_range
        rules.append(warning(
            "new_app_share_usual",
            e.ExpectColumnValuesToBeBetween(column="new_app_share", min_value=lo, max_value=hi),
            "a chart full of apps unseen all week is more likely another chart (genre, device) than a real shake-up",
        ))
    return rules


def _rows_frame(df: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """The input plus helper columns: chart label, chart size and the date offset from the partition."""
    rows = df.copy()
    for col in ("store", "country", "device", "chart", "chart_date", "rank", "app_id", "payload_sha256", "app_name"):
        if col not in rows.columns:
            # Missing columns fail the schema rules; adding them empty lets the other rules still say something.
            rows[col] = pd.Series(None, index=rows.index, dtype=object)
    rows[CHART_KEY] = engine.chart_labels(rows)
    rows["payload_sha256"] = rows["payload_sha256"].astype(object).where(rows["payload_sha256"].notna(), None)
    group = [rows[CHART_KEY], rows["payload_sha256"].fillna("")]
    rows["chart_size"] = rows.groupby(group, dropna=False)[CHART_KEY].transform("size").astype("int64")
    offsets = rows["chart_date"].map(lambda v: _offset(v, day))
    rows["chart_date_offset_days"] = pd.to_numeric(offsets, errors="coerce").astype("float64")
    return rows


def _offset(value, day: dt.date) -> float:
    d = engine.to_date(value)
    return math.nan if d is None else float((d - day).days)


def _charts_frame(rows, expected_depth, tolerance, previous_hashes, previous_day, recent_app_ids) -> pd.DataFrame:
    """One row per (chart, payload): its depth bounds and its day-over-day comparisons."""
    previous_hashes = set(previous_hashes or ())
    recent = set(map(str, recent_app_ids or ()))
    prev_rankings = _rankings_by_chart(previous_day) if previous_day is not None else {}
    out = []
    if rows.empty:
        return pd.DataFrame(columns=[CHART_KEY, "payload_sha256", "entries", "min_entries", "max_entries",
                                     "payloads_for_chart", "payload_seen_previous_day",
                                     "same_ranking_as_previous_day", "frozen_ranking", "frozen_short_ranking",
                                     "new_app_share"])
    payloads_per_chart = rows.groupby(CHART_KEY)["payload_sha256"].nunique(dropna=False)
    for (label, payload), chart in rows.groupby([CHART_KEY, rows["payload_sha256"].fillna("")], sort=True):
        first = chart.iloc[0]
        depth = _expected_depth(first, expected_depth)
        if depth is None:
            lo, hi = 1, MAX_CHART_DEPTH
        else:
            lo, hi = max(1, math.floor(depth * (1 - tolerance))), depth
        ranking = _ranking(chart)
        app_ids = chart["app_id"].dropna().astype(str)
        same = prev_rankings.get(_chart_identity(label)) == ranking
        out.append({
            CHART_KEY: label,
            "payload_sha256": payload or None,
            "entries": len(chart),
            "expected_depth": depth,
            "min_entries": lo,
            "max_entries": hi,
            "payloads_for_chart": int(payloads_per_chart[label]),
            "payload_seen_previous_day": bool(payload) and payload in previous_hashes,
            "same_ranking_as_previous_day": same,
            "frozen_ranking": same and len(chart) >= STALE_MIN_ENTRIES,
            "frozen_short_ranking": same and len(chart) < STALE_MIN_ENTRIES,
            # An empty history (first week of a new country) cannot call anything new.
            "new_app_share": (float((~app_ids.isin(recent)).mean()) if recent and len(app_ids) else 0.0),
        })
    return pd.DataFrame(out)


def _expected_depth(row, expected) -> int | None:
    if isinstance(expected, int):
        return expected
    if isinstance(expected, Mapping):
        for key in (f"{row.get('device')}/{row.get('chart')}", str(row.get("chart"))):
            if key in expected:
                return int(expected[key])
        return None
    url = row.get("source_url")
    if isinstance(url, str):
        for pattern in _LIMIT_PATTERNS:
            m = pattern.search(url)
            if m:
                return min(int(m.group(1)), MAX_CHART_DEPTH)
    return None


def _chart_identity(label: str) -> str:
    return label.rsplit("/", 1)[0]  # the chart without its date


def _ranking(chart: pd.DataFrame) -> tuple:
    ranks = pd.to_numeric(chart["rank"], errors="coerce")
    return tuple(chart.assign(_r=ranks).sort_values("_r", kind="stable")["app_id"].astype(str))


def _rankings_by_chart(previous_day: pd.DataFrame) -> dict[str, tuple]:
    """The previous day's ranking per chart (the latest payload when a chart was fetched twice)."""
    if previous_day.empty:
        return {}
    prev = previous_day.copy()
    prev[CHART_KEY] = engine.chart_labels(prev).map(_chart_identity)
    if "fetched_at" in prev.columns and "payload_sha256" in prev.columns:
        latest = prev.sort_values("fetched_at", kind="stable").groupby(CHART_KEY)["payload_sha256"].last()
        prev = prev[prev["payload_sha256"].eq(prev[CHART_KEY].map(latest)) | prev["payload_sha256"].isna()]
    return {key: _ranking(chart) for key, chart in prev.groupby(CHART_KEY)}
