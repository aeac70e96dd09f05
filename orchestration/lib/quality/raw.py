"""The raw suite: a day's raw chart rows, every country and chart, before dbt reads them.

Grain of the input: one row per chart position as landed in ``lake.raw.chart_entries`` (columns
``canonical.RAW_COLUMNS``) for one partition date. A "chart" here is one payload of one chart key: a chart fetched
twice in a day has two payloads, and each must be a well-formed ranking. What passes or fails is a country-day.

``run_raw_day`` validates all countries of a day in one run of the suite (three GX validations whatever the number
of countries: GX's set-up per validation, not the rows, made a check per country cost ~1 s each) and splits GX's
unexpected rows back per country, so a bad feed fails its own country only. ``run_raw_suite`` is the same suite on
one country's frame.

Blocking rules stop the country-day (or, through ``SuiteResult.failed_charts``, just the bad charts) from
reaching the marts; warnings flag feeds that look wrong without being provably wrong (a byte-identical payload, a short chart
standing still, a reshuffled feed). A deep ranking identical to the previous day's is a frozen feed: blocking.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from orchestration.lib import audit
from orchestration.lib.quality import engine
from orchestration.lib.quality.engine import CHART_KEY, blocking, warning
from orchestration.lib.quality.result import MAX_LISTED, ExpectationOutcome, SuiteResult, render_gx_page, render_html
from orchestration.sources.canonical import ALL_DEVICES, CHARTS, RAW_COLUMNS, STORES

SUITE = "raw_chart_entries"
# Apple ids are positive integers; a leading zero only appears in made-up ids (WBGame's "0000000001" sample).
# Google Play's ids are package names (com.xingin.xhs); the parsers hold each store to its own form.
APP_ID_REGEX = r"^(?:[1-9][0-9]{0,11}|[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)+)$"
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

# Days of history the day-over-day rules look at, and the only columns of it they read: at 50 countries a week
# of full raw rows is ~350,000 rows of mostly unused text.
HISTORY_DAYS = 7
HISTORY_COLUMNS = ("store", "country", "device", "chart", "genre_id", "chart_date", "rank", "app_id",
                   "payload_sha256", "fetched_at")

# Helper column: the country-day a row is validated (and quarantined) under. GX reports it for every unexpected
# row, which is how one validation of the whole day is split back per country.
PARTITION = "partition_country"
# Where a day's own GX Data Docs go, beside the per-country pages that link to them.
DAY_DOCS = "day.gx"

_LIMIT_PATTERNS = (re.compile(r"/limit=(\d+)"), re.compile(r"/(\d+)/[a-z-]+\.json"))


@dataclass
class RawDayCheck:
    """One run of the raw suite over a day: a ``SuiteResult`` per country, split from the day's GX validations."""

    chart_date: str
    results: dict[str, SuiteResult] = field(default_factory=dict)  # by country, sorted
    error: str | None = None  # the suite could not run: every country fails with it
    duration_s: float = 0.0
    # GX's validation result of each frame (all countries in one), for its Data Docs; not per country.
    gx_results: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def failed(self) -> dict[str, SuiteResult]:
        return {c: r for c, r in self.results.items() if not r.passed}

    def save(self, quality_dir: str | Path) -> Path:
        """``<country>.json`` and ``<country>.html`` per country, and GX's pages of the day once under ``day.gx/``.

        GX's pages show every country's rows (they are one validation); each country's page links to them.
        """
        out = Path(quality_dir)
        out.mkdir(parents=True, exist_ok=True)
        pages: dict[str, str] = {}
        note = None
        if self.gx_results:
            gx_dir = out / DAY_DOCS
            try:
                gx_dir.mkdir(exist_ok=True)
                for frame, res in self.gx_results.items():
                    (gx_dir / f"{frame}.html").write_text(render_gx_page(res))
                    pages[frame] = f"{DAY_DOCS}/{frame}.html"
            except Exception as exc:  # our JSON and pages still describe the run fully
                note = f"{type(exc).__name__}: {exc}"
        for country, result in self.results.items():
            paths = result.save(out, country)
            if pages or note:
                paths["html"].write_text(render_html(result, pages, note))
        return out


@dataclass
class _Past:
    """What the day-over-day rules compare with. ``None``: no history at all, so the rule is not run."""

    expected_depth: Mapping[str, int | Mapping[str, int] | None]  # by partition; None: read from source_url
    previous_hashes: set[tuple[str, str]] | None  # (partition, payload_sha256) of the previous day
    previous_rankings: dict[str, tuple] | None  # chart (without its date) -> app ids in rank order
    recent_app_ids: set[tuple[str, str]] | None  # (partition, app_id) seen over the past week
    # expected_depth is the deepest chart of the past week, not a depth that was asked for (run_raw_day).
    depth_from_history: bool = False


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
    repeats: pd.DataFrame | None = None,
) -> SuiteResult:
    """Validate one country-day of raw rows. Never raises: an exception is recorded as a failed run.

    ``expected_depth``: entries each chart should have: an int for all charts, or a mapping keyed by
    ``"device/chart"`` or ``chart`` (e.g. ``{"top-grossing": 200, "ipad/top-free": 100}``). Unset, it is read
    from each chart's ``source_url`` (``limit=N`` or ``/N/apps.json``); unknown, only 1..200 is required.
    ``previous_payload_hashes`` / ``previous_day`` (the previous day's raw rows of this country) enable the
    stale-feed warnings; ``recent_app_ids`` (app ids in this country's charts over the previous 7 days) enables
    the new-app-share warning. ``repeats``: the day's recorded repeats (``lib.repeats.read_day``).
    """

    def past() -> _Past:
        return _Past(
            expected_depth={country: expected_depth},
            previous_hashes=(None if previous_payload_hashes is None
                             else {(country, str(h)) for h in previous_payload_hashes}),
            previous_rankings=None if previous_day is None else _rankings_by_chart(previous_day),
            recent_app_ids=None if recent_app_ids is None else {(country, str(a)) for a in recent_app_ids},
        )

    check = _run(df, chart_date, country, past, depth_tolerance, new_app_share_range, repeats)
    result = check.results[country]
    result.gx_results = check.gx_results  # one country: the day's GX pages are its own
    return result


def run_raw_day(
    df: pd.DataFrame,
    *,
    chart_date: dt.date | str,
    history: pd.DataFrame | None = None,
    depth_tolerance: float = DEFAULT_DEPTH_TOLERANCE,
    new_app_share_range: tuple[float, float] = DEFAULT_NEW_APP_SHARE_RANGE,
    repeats: pd.DataFrame | None = None,
) -> RawDayCheck:
    """Validate every country of one day's raw rows in one run of the suite; one ``SuiteResult`` per country.

    Each row is checked under its own ``country``. ``history``: the current raw rows of the days before
    (``read_history``; at least ``HISTORY_COLUMNS``). From it, per country: the depth each device/chart had at most
    (the expected depth; without history it is read from ``source_url``), the previous day's payloads and rankings
    (stale feed) and the app ids of the week (new-app share). ``repeats``: the day's recorded repeats
    (``lib.repeats.read_day``): a chart's positions are its rows plus its repeats, so the gaps they leave in its
    ranks pass, with a warning. Never raises: an exception fails every country.
    """

    def past() -> _Past:
        hist = history if history is not None else pd.DataFrame(columns=list(HISTORY_COLUMNS))
        day = engine.to_date(chart_date)
        hist = hist[_date_mask(hist["chart_date"], lambda d: d < day)]
        yesterday = hist[_date_mask(hist["chart_date"], lambda d: d == day - dt.timedelta(days=1))]
        prev = yesterday[["country", "payload_sha256"]].dropna().drop_duplicates()
        recent = hist[["country", "app_id"]].dropna().drop_duplicates()
        return _Past(
            expected_depth=usual_depths(hist),
            previous_hashes=set(zip(prev["country"], prev["payload_sha256"].map(str))) if len(yesterday) else None,
            previous_rankings=_rankings_by_chart(yesterday) if len(yesterday) else None,
            recent_app_ids=set(zip(recent["country"], recent["app_id"].map(str))) if len(hist) else None,
            depth_from_history=True,
        )

    return _run(df, chart_date, None, past, depth_tolerance, new_app_share_range, repeats)


def read_history(con, day: dt.date, days: int = HISTORY_DAYS) -> pd.DataFrame:
    """The current raw rows (``raw.payload_versions``' current version, quarantined ones never) of the ``days``
    chart dates before ``day``, only ``HISTORY_COLUMNS``."""
    return audit.current_raw_rows(con, day - dt.timedelta(days=1), days_before=days - 1, columns=HISTORY_COLUMNS)


def usual_depths(history: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per country, the positions each device/chart reached at most over the history: a chart suddenly cut short
    stands out, while feeds that always run a few short (paid charts: 95-99) keep passing within the suite's
    tolerance. Positions (the deepest rank), not rows: a Play chart whose recorded repeats were dropped has fewer
    rows than positions (196 rows for 200), and the next day's chart without repeats must not look over-deep."""
    if not len(history):
        return {}
    ranks = pd.to_numeric(history["rank"], errors="coerce")
    sizes = (history.assign(_rank=ranks)
             .groupby(["country", "device", "chart", "genre_id", "chart_date"], dropna=False)["_rank"].max()
             .groupby(level=[0, 1, 2], dropna=False).max())
    out: dict[str, dict[str, int]] = {}
    for (country, device, chart), n in sizes.items():
        out.setdefault(country, {})[f"{device}/{chart}"] = int(n)
    return out


def _run(df, chart_date, country: str | None, past_fn, depth_tolerance, share_range, repeats=None) -> RawDayCheck:
    """The suite over ``df``: under ``country`` for every row, or (None) each row under its own country."""
    started = time.perf_counter()
    day = engine.to_date(chart_date)
    check = RawDayCheck(chart_date=day.isoformat() if day else str(chart_date))
    partition = _partitions(df, country)
    partitions = sorted(set(partition)) if country is None else [country]
    outcomes: dict[str, list[ExpectationOutcome]] = {p: [] for p in partitions}
    charts: dict[str, list[str]] = {p: [] for p in partitions}
    gx_version = ""
    try:
        if day is None:
            raise ValueError(f"chart_date {chart_date!r} is not a date")
        gx_version = engine.gx_version()
        past = past_fn()
        rows = _rows_frame(df, day, partition, _repeat_counts(repeats))
        if partitions:  # an empty day has no country to pass or fail; one empty country fails has_rows
            for p, keys in rows.groupby(PARTITION)[CHART_KEY].unique().items():
                charts[p] = sorted(keys)
            chart_rows = _charts_frame(rows, past, depth_tolerance)
            plans = [
                ("schema", engine.schema_frame(df, RAW_COLUMNS), engine.schema_rules(""), ("column",)),
                ("rows", rows, _row_rules(partitions), (CHART_KEY, "payload_sha256", PARTITION)),
                (
                    "charts",
                    chart_rows,
                    _chart_rules(
                        stale_hashes=past.previous_hashes is not None,
                        stale_ranking=past.previous_rankings is not None,
                        new_apps=past.recent_app_ids is not None,
                        share_range=share_range,
                    ),
                    (CHART_KEY, "payload_sha256", PARTITION),
                ),
            ]
            for frame_name, frame, rules, keys in plans:
                found, gx_result = engine.validate_frame(SUITE, frame_name, frame, rules, key_columns=keys)
                check.gx_results[frame_name] = gx_result
                for p, outs in _split(found, gx_result, partitions).items():
                    outcomes[p].extend(outs)
    except Exception as exc:  # a suite that cannot run is a failure of every country in it, never a pass
        where = f"country={country}" if country is not None else f"countries={','.join(partitions)}"
        check.error = f"{type(exc).__name__}: {exc} ({where}, chart_date={chart_date})"
    check.duration_s = time.perf_counter() - started
    for p in partitions:
        check.results[p] = SuiteResult(
            suite=SUITE, partition={"country": p, "chart_date": check.chart_date}, outcomes=outcomes[p],
            charts=charts[p], error=check.error, duration_s=check.duration_s, gx_version=gx_version,
        )
    return check


def _partitions(df: pd.DataFrame, country: str | None) -> pd.Series:
    if country is not None:
        return pd.Series(country, index=df.index, dtype=object)
    if "country" not in df.columns:
        return pd.Series("?", index=df.index, dtype=object)
    # A row without a country still belongs to the day: it fails country_not_null under "?", not silently.
    return df["country"].astype(object).where(df["country"].notna(), "?")


def _split(outcomes: list[ExpectationOutcome], gx_result, partitions: list[str]) -> dict[str, list[ExpectationOutcome]]:
    """Each outcome of a validation over several countries, as it stands for each country's own rows.

    Every rule of the rows and charts frames is row by row, or (uniqueness) within a chart, and a chart is one
    country's: so a country's unexpected rows are exactly GX's unexpected rows filed under it. A failure GX does
    not attribute to rows (schema, row count, an error) fails every country.
    """
    if len(partitions) == 1:
        return {partitions[0]: outcomes}
    by_rule = {r.expectation_config.meta.get("rule"): r for r in (gx_result.results if gx_result else [])}
    out: dict[str, list[ExpectationOutcome]] = {p: [] for p in partitions}
    for o in outcomes:
        unexpected = _unexpected_by_partition(o, by_rule.get(o.name))
        for p in partitions:
            if unexpected is None:
                out[p].append(dataclasses.replace(o))
                continue
            mine = unexpected.get(p, [])
            out[p].append(dataclasses.replace(
                o,
                success=not mine,
                unexpected_count=len(mine),
                unexpected_values=[v for _, v in mine[:MAX_LISTED]],
                charts=sorted({str(i.get(CHART_KEY)) for i, _ in mine}),
                payloads=sorted({str(i["payload_sha256"]) for i, _ in mine if i.get("payload_sha256")}),
            ))
    return out


def _unexpected_by_partition(o: ExpectationOutcome, r) -> dict[str, list[tuple[dict, Any]]] | None:
    """GX's unexpected rows of a failed outcome (key columns, value) by partition; None: not attributable."""
    if o.success or o.error or o.charts is None or r is None:
        return None
    result = r.result or {}
    index = result.get("unexpected_index_list")
    if not index or len(index) != o.unexpected_count or not all(isinstance(i, dict) and PARTITION in i for i in index):
        return None
    values = result.get("unexpected_list")
    if values is None or len(values) != len(index):
        values = [None] * len(index)
    found: dict[str, list[tuple[dict, Any]]] = {}
    for i, v in zip(index, values):
        found.setdefault(str(i[PARTITION]), []).append((i, v))
    return found


def _row_rules(countries: list[str]) -> list[engine.Rule]:
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
        blocking("device_known", e.ExpectColumnValuesToBeInSet(column="device", value_set=list(ALL_DEVICES)),
                 "only iphone, ipad and android charts exist; anything else is a parser bug"),
        blocking("chart_known", e.ExpectColumnValuesToBeInSet(column="chart", value_set=list(CHARTS)),
                 "only top-free, top-paid and top-grossing exist; anything else is a parser bug"),
        # A day's run files each row under its own country; a frame filed under one country (run_raw_suite) is
        # where this bites.
        blocking("country_is_partition", e.ExpectColumnValuesToBeInSet(column="country", value_set=list(countries)),
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
                 "with unique ranks starting at 1, rank <= entries (+ recorded repeats) means ranks are 1..N with "
                 "no gap but the positions a recorded repeat took"),
        blocking("app_id_well_formed", e.ExpectColumnValuesToMatchRegex(column="app_id", regex=APP_ID_REGEX),
                 "app ids join every mart to dim_apps; Apple ids are positive integers, Play's package names"),
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
        warning("no_recorded_repeats",
                e.ExpectColumnValuesToBeBetween(column="recorded_repeats", min_value=0, max_value=0),
                "the payload listed an app twice (Play's scraper pages overlap): the first listing ranks, the repeat "
                "is dropped and recorded, so the chart is usable but has a gap in its ranks"),
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


def _repeat_counts(repeats: pd.DataFrame | None) -> dict[tuple[str, str], int]:
    """Recorded repeats per (chart label, payload)."""
    if repeats is None or repeats.empty:
        return {}
    labels = engine.chart_labels(repeats)
    counts = pd.Series(1, index=repeats.index).groupby([labels, repeats["payload_sha256"].astype(str)]).sum()
    return {(str(label), str(sha)): int(n) for (label, sha), n in counts.items()}


def _rows_frame(df: pd.DataFrame, day: dt.date, partition: pd.Series,
                repeat_counts: dict[tuple[str, str], int] | None = None) -> pd.DataFrame:
    """The input plus helper columns: partition, chart label, chart size and the date offset from the partition."""
    rows = df.copy()
    for col in ("store", "country", "device", "chart", "chart_date", "rank", "app_id", "payload_sha256", "app_name",
                "source_url"):
        if col not in rows.columns:
            # Missing columns fail the schema rules; adding them empty lets the other rules still say something.
            rows[col] = pd.Series(None, index=rows.index, dtype=object)
    rows[PARTITION] = partition.to_numpy()
    rows[CHART_KEY] = engine.chart_labels(rows)
    rows["payload_sha256"] = rows["payload_sha256"].astype(object).where(rows["payload_sha256"].notna(), None)
    group = [rows[CHART_KEY], rows["payload_sha256"].fillna("")]
    rows["chart_size"] = rows.groupby(group, dropna=False)[CHART_KEY].transform("size").astype("int64")
    repeat_counts = repeat_counts or {}
    keys = list(zip(rows[CHART_KEY], rows["payload_sha256"].fillna("")))
    rows["recorded_repeats"] = np.array([repeat_counts.get(k, 0) for k in keys], dtype="int64") if len(rows) else 0
    rows["chart_size"] = rows["chart_size"] + rows["recorded_repeats"]
    codes, uniques = pd.factorize(rows["chart_date"], use_na_sentinel=True)  # a day has few distinct dates
    offsets = np.array([_offset(v, day) for v in uniques] + [math.nan], dtype="float64")
    rows["chart_date_offset_days"] = offsets[np.where(codes < 0, len(uniques), codes)]
    return rows


def _offset(value, day: dt.date) -> float:
    d = engine.to_date(value)
    return math.nan if d is None else float((d - day).days)


def _date_mask(s: pd.Series, keep) -> np.ndarray:
    """``keep(date)`` for every value's ``engine.to_date`` (False for nulls), computed once per distinct value."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    table = np.array([d is not None and bool(keep(d)) for d in map(engine.to_date, uniques)] + [False], dtype=bool)
    return table[np.where(codes < 0, len(uniques), codes)]


_CHART_COLUMNS = [CHART_KEY, "payload_sha256", PARTITION, "entries", "expected_depth", "min_entries", "max_entries",
                  "payloads_for_chart", "payload_seen_previous_day", "same_ranking_as_previous_day", "frozen_ranking",
                  "frozen_short_ranking", "new_app_share", "recorded_repeats"]


def _charts_frame(rows: pd.DataFrame, past: _Past, tolerance: float) -> pd.DataFrame:
    """One row per (chart, payload): its depth bounds and its day-over-day comparisons."""
    if rows.empty:
        return pd.DataFrame(columns=_CHART_COLUMNS)
    r = rows.assign(_payload=rows["payload_sha256"].fillna(""), _rank=pd.to_numeric(rows["rank"], errors="coerce"),
                    _app=_app_strings(rows["app_id"]), _named=rows["app_id"].notna())
    recent = past.recent_app_ids or set()
    with_history = {p for p, _ in recent}
    # An empty history (first week of a new country) cannot call anything new.
    r["_new"] = [bool(named) and p in with_history and (p, a) not in recent
                 for p, a, named in zip(r[PARTITION], r["_app"], r["_named"])]
    r = r.sort_values([CHART_KEY, "_payload", "_rank"], kind="stable")  # a ranking: app ids in rank order
    g = r.groupby([CHART_KEY, "_payload"], sort=True)
    per_chart = pd.DataFrame({
        "entries": g.size(),
        "ranking": g["_app"].agg(tuple),
        "named": g["_named"].sum(),
        "new": g["_new"].sum(),
    })
    firsts = r.drop_duplicates([CHART_KEY, "_payload"]).set_index([CHART_KEY, "_payload"])
    payloads_per_chart = rows.groupby(CHART_KEY)["payload_sha256"].nunique(dropna=False)
    prev_rankings = past.previous_rankings or {}
    prev_hashes = past.previous_hashes or set()
    out = []
    for (label, payload), c in per_chart.iterrows():
        first = firsts.loc[(label, payload)]
        partition = first[PARTITION]
        depth = _expected_depth(first, past.expected_depth.get(partition))
        if depth is None:
            lo, hi = 1, MAX_CHART_DEPTH
        else:
            lo, hi = max(1, math.floor(depth * (1 - tolerance))), depth
            if past.depth_from_history:
                # The past week's deepest chart is not a limit: a feed that served 99 all week may serve 100
                # (app-tracker's `in`, limit=200 asked), and holding that back would keep the week at 99 for good.
                # Within the tolerance above it, under what the chart's URL asked for: a merged payload still fails.
                hi = max(depth, min(math.ceil(depth * (1 + tolerance)), _requested_depth(first) or MAX_CHART_DEPTH))
        entries = int(c["entries"])
        same = prev_rankings.get(_chart_identity(label)) == c["ranking"]
        out.append({
            CHART_KEY: label,
            "payload_sha256": payload or None,
            PARTITION: partition,
            "entries": entries,
            "expected_depth": depth,
            "min_entries": lo,
            "max_entries": hi,
            "payloads_for_chart": int(payloads_per_chart[label]),
            "payload_seen_previous_day": bool(payload) and (partition, payload) in prev_hashes,
            "same_ranking_as_previous_day": same,
            "frozen_ranking": same and entries >= STALE_MIN_ENTRIES,
            "frozen_short_ranking": same and entries < STALE_MIN_ENTRIES,
            "new_app_share": float(c["new"]) / int(c["named"]) if int(c["named"]) else 0.0,
            "recorded_repeats": int(first["recorded_repeats"]),
        })
    return pd.DataFrame(out, columns=_CHART_COLUMNS)


def _expected_depth(row, expected) -> int | None:
    if isinstance(expected, int):
        return expected
    if isinstance(expected, Mapping):
        for key in (f"{row.get('device')}/{row.get('chart')}", str(row.get("chart"))):
            if key in expected:
                return int(expected[key])
        return None
    return _requested_depth(row)


def _requested_depth(row) -> int | None:
    """The depth the chart's ``source_url`` asked for (``limit=N``, ``/N/apps.json``), if it names one."""
    url = row.get("source_url")
    if isinstance(url, str):
        for pattern in _LIMIT_PATTERNS:
            m = pattern.search(url)
            if m:
                return min(int(m.group(1)), MAX_CHART_DEPTH)
    return None


def _chart_identity(label: str) -> str:
    return label.rsplit("/", 1)[0]  # the chart without its date


def _app_strings(s: pd.Series) -> pd.Series:
    # Not astype(str): pandas 3 keeps nulls as NaN there, and NaN != NaN would make equal rankings differ.
    return s.astype(object).where(s.notna(), "None").map(str)


def _rankings_by_chart(previous_day: pd.DataFrame) -> dict[str, tuple]:
    """The previous day's ranking per chart (the latest payload when a chart was fetched twice)."""
    if previous_day.empty:
        return {}
    prev = previous_day.copy()
    labels = engine.chart_labels(prev)
    codes, uniques = pd.factorize(labels)
    prev[CHART_KEY] = np.array([_chart_identity(u) for u in uniques], dtype=object)[codes]
    if "fetched_at" in prev.columns and "payload_sha256" in prev.columns:
        latest = prev.sort_values("fetched_at", kind="stable").groupby(CHART_KEY)["payload_sha256"].last()
        prev = prev[prev["payload_sha256"].eq(prev[CHART_KEY].map(latest)) | prev["payload_sha256"].isna()]
    prev = prev.assign(_rank=pd.to_numeric(prev["rank"], errors="coerce"), _app=_app_strings(prev["app_id"]))
    prev = prev.sort_values([CHART_KEY, "_rank"], kind="stable")
    return prev.groupby(CHART_KEY, sort=False)["_app"].agg(tuple).to_dict()
