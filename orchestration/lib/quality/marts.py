"""The staging and marts suites over the lake, for a window: reading the models and running their rules (the rules,
and why each blocks, are ``marts_rules.py``), every rule a GX expectation on GX's SQL datasource.

Relations (``RELATIONS``, canonical column names, DESIGN.md): staging, ``fct_chart_entries`` and
``mart_daily_rankings`` at the grain date x store x country x device x chart x genre x rank with ``app_id``
(rankings add ``previous_rank``, ``rank_delta`` = ``previous_rank - rank``, ``is_new_entry``/``is_re_entry``,
``peak_rank``); ``mart_daily_country_summary`` at the chart grain with its #1 app and entries into the top
10/100; ``dim_apps`` (``app_id``, ``valid_from``) and ``dim_countries`` (``country`` or the seed's ``code``).
Every relation is read through its window's ``chart_date`` filter, so the frame suites' "rows inside the window"
rule cannot fail here and is not a rule any more. An absent column is read as null, so its rule fails.


Why SQL: frames of every model for a window cost ~5 KB per row in pandas and GX's pandas metrics are slow (the
same rules took 54-57 s and 1.4 GB at 1.09 M rows on frames, 10-12 s and 0.6 GB in DuckDB). Here GX computes
each metric in DuckDB over the whole window and only the first ``MAX_LISTED`` unexpected rows of a failed rule
come back to Python, so memory does not follow the window.

Per-chart rules (grain, app once per chart, rows reconciled raw -> staging -> fct -> rankings, the summary's
agreement with the rankings) need one row per chart: those counts are computed once, in DuckDB, into a private
in-memory database attached for the run (``quality_counts``), and GX validates them there. Staging is a view
whose version rule would otherwise be evaluated once per GX metric, so it is only ever aggregated (once) and its
row rules are per-chart violation counts.

Isolation: GX's connections are cursors of the caller's connection (``engine.SqlSession``), closed when the check
ends; the check opens no lake file of its own. The Dagster check passes a read-only lake session it closes.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from orchestration.lib import lake
from orchestration.lib.quality import engine, marts_rules as rules_of
from orchestration.lib.quality.engine import CHART_KEY
from orchestration.lib.quality.marts_rules import (KEY_COLUMNS, MODEL_NAMES, TOP_APP_COLUMN, UPSTREAM,
                                                   app_id_well_formed_sql)
from orchestration.lib.quality.raw import MAX_CHART_DEPTH
from orchestration.lib.quality.result import SuiteResult

RELATIONS = {
    "raw": "raw.chart_entries",
    "versions": None,  # lake.versions_relation: the raw layer's view (or its rule, on a lake without it)
    "staging": "staging.stg_apple__chart_entries",
    "fct": "marts.fct_chart_entries",
    "rankings": "marts.mart_daily_rankings",
    "summary": "marts.mart_daily_country_summary",
    "dim_apps": "marts.dim_apps",
    "dim_countries": "marts.dim_countries",
}
CHART_COLUMNS = ("store", "country", "device", "chart", "genre_id", "chart_date")
COUNTS_DB = "quality_counts"  # in-memory, attached for one run, detached at its end
_ROWS_TABLE = "validated_rows"  # in COUNTS_DB: the rows of the model being validated


@dataclass
class MartsCheck:
    """The staging and marts suites over one window, as the ``marts_quality`` asset check reports them."""

    window: tuple[dt.date, dt.date]
    staging: SuiteResult
    marts: SuiteResult
    rows_checked: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.staging.passed and self.marts.passed


def chart_key_sql(prefix: str = "") -> str:
    """``ChartKey.label()`` in SQL, as ``engine.chart_labels`` builds it ("None" for a null part)."""
    def part(c):
        return f"coalesce(cast({prefix}{c} as varchar), 'None')"
    return (f"concat_ws('/', {part('store')}, {part('country')}, {part('device')}, {part('chart')} || "
            f"coalesce('/genre=' || cast({prefix}genre_id as varchar), ''), "
            f"coalesce(strftime(cast({prefix}chart_date as date), '%Y-%m-%d'), 'None'))")


def check_lake_window(con, window: Any, *, max_rank_delta: int = MAX_CHART_DEPTH - 1,
                      relations: dict[str, str] | None = None) -> MartsCheck:
    """Validate staging and the marts for ``window`` (a date or half-open ``(min_date, max_date)``) read from ``con``.

    ``con``: a DuckDB connection where ``relations`` (default ``RELATIONS``, schema-qualified) resolve, e.g. a
    read-only lake session. One GX context for the run; each model's rules are one GX validation in DuckDB.
    A rule or model that cannot be evaluated is a failure naming it, never a pass.
    """
    lo, hi = _window(window)
    if lo is None:
        raise ValueError("check_lake_window needs a window: a date or a half-open (min_date, max_date) pair")
    rel = {**RELATIONS, **(relations or {})}
    label = _window_label((lo, hi))
    staging = SuiteResult(suite="staging", partition={"window": label})
    marts = SuiteResult(suite="marts", partition={"window": label})
    errors: dict[str, list[str]] = {"staging": [], "marts": []}
    timings: dict[str, float] = {}
    rows = 0
    started = time.perf_counter()
    con.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {COUNTS_DB}")
    try:
        plan = _Plan(con, rel, lo, hi, max_rank_delta)
        t = time.perf_counter()
        counted = plan.count()  # per-chart counts once, into COUNTS_DB; an error here fails both suites
        timings["counts"] = time.perf_counter() - t
        if counted is not None:
            errors["staging"].append(counted)
            errors["marts"].append(counted)
        else:
            rows = plan.rows_checked()
            charts = plan.charts()
            staging.charts, marts.charts = charts, charts
        with engine.SqlSession(con) as session:
            staging.gx_version = marts.gx_version = engine.gx_version()
            for suite, asset, query, rules, complete in plan.validations(counted is None):
                result = staging if suite == "staging" else marts
                t = time.perf_counter()
                keys = {"dim_apps": ("app_id",), "dim_countries": ("country",)}.get(asset, (CHART_KEY,))
                try:
                    outcomes, gx_result = session.validate(suite, asset, query, rules, key_columns=keys,
                                                           complete=complete)
                except Exception as exc:  # this model cannot be validated: a failure naming it
                    errors[suite].append(f"{asset}: {type(exc).__name__}: {exc}")
                    continue
                finally:
                    timings[asset] = timings.get(asset, 0.0) + time.perf_counter() - t
                result.outcomes.extend(outcomes)
                result.gx_results[asset if not complete else asset + ".rows"] = gx_result
    except Exception as exc:  # the suite could not run at all
        for suite in errors:
            errors[suite].append(f"{type(exc).__name__}: {exc}")
    finally:
        con.execute(f"DETACH DATABASE IF EXISTS {COUNTS_DB}")
    elapsed = time.perf_counter() - started
    for suite, result in (("staging", staging), ("marts", marts)):
        if errors[suite]:
            result.error = "; ".join(errors[suite]) + f" (window={label})"
        result.duration_s = elapsed
    return MartsCheck(window=(lo, hi), staging=staging, marts=marts, rows_checked=rows, timings=timings)


class _Plan:
    """The SQL reading every asset for one window, each paired with its rules (``marts_rules``)."""

    def __init__(self, con, rel, lo: dt.date, hi: dt.date, max_rank_delta: int):
        self.con, self.rel, self.lo, self.hi, self.max_rank_delta = con, rel, lo, hi, max_rank_delta
        self.where = f"chart_date >= DATE '{lo.isoformat()}' and chart_date < DATE '{hi.isoformat()}'"

    def columns(self, relation: str) -> list[str]:
        return [d[0] for d in self.con.execute(f"select * from {relation} limit 0").description]

    def rows(self, model: str, wanted: tuple[str, ...], keyed: bool = True) -> str:
        """The window's rows of ``model`` with ``wanted`` columns (an absent one null, so its rule fails) and, if
        ``keyed``, the chart key."""
        relation = self.rel[model]
        have = set(self.columns(relation))
        cols = ", ".join(f'"{c}"' if c in have else f'null as "{c}"' for c in wanted)
        rows = f"select {cols} from {relation} where {self.where}"
        return f"select *, {chart_key_sql()} as {CHART_KEY} from ({rows})" if keyed else rows

    # -- per-chart counts, once -------------------------------------------------------------------------------

    def count(self) -> str | None:
        """Fill COUNTS_DB with one row per chart and model; return an error message instead of raising."""
        rel, where, db = self.rel, self.where, COUNTS_DB
        keys = ", ".join(CHART_COLUMNS)
        distinct = "len(list_distinct(list(rank))) as ranks, len(list_distinct(list(app_id))) as apps"
        not_null = ", ".join(f"count(*) filter (where {c} is null) as {c}_nulls" for c in (*KEY_COLUMNS, "rank", "app_id"))
        sql = {
            # Raw's current version of each chart, from the raw layer's own relation (raw.payload_versions),
            # read here without staging so that staging dropping or duplicating rows still shows.
            "raw": f"""
                with r as (select * from {rel["raw"]} where {where}),
                v as (select * from {rel["versions"] or lake.versions_relation(self.con)} where {where} and is_current),
                current_rows as (
                    select lower(trim(r.store)) as store, lower(trim(r.country)) as country,
                           lower(trim(r.device)) as device, lower(trim(r.chart)) as chart,
                           cast(r.genre_id as integer) as genre_id, cast(r.chart_date as date) as chart_date,
                           len(list_distinct(list(r.rank))) as expected_rows
                    from r semi join v
                      on v.payload_sha256 = r.payload_sha256 and v.store = r.store and v.country = r.country
                      and v.device = r.device and v.chart = r.chart and v.genre_id is not distinct from r.genre_id
                      and v.chart_date = r.chart_date
                    group by all
                )
                select {chart_key_sql()} as {CHART_KEY}, expected_rows from current_rows""",
            "staging": f"""
                select {chart_key_sql()} as {CHART_KEY}, count(*) as rows, {distinct}, {not_null},
                       count(*) filter (where rank < 1 or rank > {MAX_CHART_DEPTH}) as ranks_out_of_range,
                       count(*) filter (where not {app_id_well_formed_sql()}) as malformed_app_ids
                from {rel["staging"]} where {where} group by {keys}""",
            "fct": f"""select {chart_key_sql()} as {CHART_KEY}, count(*) as rows, {distinct}
                       from {rel["fct"]} where {where} group by {keys}""",
            "summary": f"""select {chart_key_sql()} as {CHART_KEY}, count(*) as rows
                           from {rel["summary"]} where {where} group by {keys}""",
        }
        r_cols = set(self.columns(rel["rankings"]))
        prev = "previous_rank" if "previous_rank" in r_cols else "null"
        entries = ", ".join(
            f"count(*) filter (where rank <= {n} and ({prev} is null or {prev} > {n})) as entries_top{n}"
            for n in (10, 100))
        # The rankings' per-chart facts the summary must agree with: rows, #1 app, entries into the top 10/100.
        sql["rankings"] = f"""
            select {chart_key_sql()} as {CHART_KEY}, count(*) as rows, {distinct},
                   first(app_id order by app_id) filter (where rank = 1) as top_app_id, {entries}
            from {rel["rankings"]} where {where} group by {keys}"""
        for model, query in sql.items():
            try:
                self.con.execute(f"create or replace table {db}.{model} as {query}")
            except Exception as exc:
                return f"{MODEL_NAMES.get(model, model)} counts: {type(exc).__name__}: {exc}"
        return None

    def rows_checked(self) -> int:
        return int(self.con.execute(" + ".join(
            f"(select coalesce(sum(rows), 0) from {COUNTS_DB}.{m})" for m in MODEL_NAMES).join(("select ", ""))
        ).fetchone()[0])

    def charts(self) -> list[str]:
        union = " union ".join(f"select {CHART_KEY} from {COUNTS_DB}.{m}" for m in ("fct", "rankings", "summary"))
        return [r[0] for r in self.con.execute(f"select * from ({union}) order by 1").fetchall()]

    # -- the validations -----------------------------------------------------------------------------------------

    def validations(self, counted: bool):
        """(suite, asset, query, rules, complete) for every GX validation of the run."""
        if counted:
            yield ("staging", "stg_apple__chart_entries.counts", self.counts_query("staging"),
                   rules_of.counts_rules("staging"), False)
            for m in ("fct", "rankings", "summary"):
                yield "marts", f"{MODEL_NAMES[m]}.counts", self.counts_query(m), rules_of.counts_rules(m), False
        yield from self.dims()
        dims = self.dim_keys()
        for model in ("fct", "rankings"):
            yield from self.fact(model, dims)
        yield from self.summary(dims, counted)

    def counts_query(self, model: str) -> str:
        db = COUNTS_DB
        upstream = UPSTREAM.get(model)
        if not upstream:
            return f"select * exclude (top_app_id) from {db}.{model}" if model == "rankings" else f"select * from {db}.{model}"
        ref = "expected_rows" if upstream == "raw" else "rows"
        cols = [c for c in self.con.execute(f"select * from {db}.{model} limit 0").description]
        own = ", ".join(f"coalesce(m.{c[0]}, 0) as {c[0]}" for c in cols
                        if c[0] not in (CHART_KEY, "top_app_id"))
        # A chart missing on either side counts 0 rows there.
        return (f"select coalesce(m.{CHART_KEY}, u.{CHART_KEY}) as {CHART_KEY}, {own}, "
                f"coalesce(u.{ref}, 0) as expected_rows from {db}.{model} m full outer join {db}.{upstream} u "
                f"using ({CHART_KEY})")

    def dim_keys(self) -> dict[str, str]:
        """The dims' key relations: distinct non-null keys as text (how the frame rules compared them)."""
        countries = self.rel["dim_countries"]
        key = "country" if "country" in self.columns(countries) else "code"  # the dbt seed names its key `code`
        return {
            "dim_apps": f"select distinct cast(app_id as varchar) from {self.rel['dim_apps']} where app_id is not null",
            "dim_countries": f"select distinct cast({key} as varchar) from {countries} where {key} is not null",
        }

    def dims(self):
        for name, key in (("dim_apps", "app_id"), ("dim_countries", "country")):
            relation = self.rel[name]
            have = self.columns(relation)
            col = key if key in have or name != "dim_countries" else "code"
            history = "valid_from" in have  # a history dimension holds one row per version of its key
            query = (f'select "{col}" as {key}{", valid_from" if history else ""} from {relation}')
            yield "marts", name, query, rules_of.dim_rules(name, key, history), False

    def ref_columns(self, dims: dict[str, str], app_column: str = "app_id", prefix: str = "") -> str:
        """Helper columns holding the values missing from a dimension (null when found), for a must-be-null rule.

        Not a value set: GX re-serialises an expectation's arguments many times per validation, and every app id
        of dim_apps as a value set would dominate the suite's time."""
        a, c = prefix + app_column, prefix + "country"
        return (f"case when {a} is not null and cast({a} as varchar) not in ({dims['dim_apps']}) "
                f"then {a} end as {app_column}_not_in_dim_apps, "
                f"case when {c} is not null and cast({c} as varchar) not in ({dims['dim_countries']}) "
                f"then {c} end as country_not_in_dim_countries")

    def fact(self, model: str, dims: dict[str, str]):
        have = set(self.columns(self.rel[model])) if model == "rankings" else set()
        extra, derived, rules = rules_of.fact_rules(model, have, self.max_rank_delta)
        helpers = [self.ref_columns(dims), *derived]
        columns = self.rows(model, (*CHART_COLUMNS, "rank", "app_id", *extra), keyed=False)
        # The chart key is a view column over the table, so only the rows a failed rule lists pay for it.
        rows = self.materialized(f"select *, {', '.join(helpers)} from ({columns})")
        query = f"select *, {chart_key_sql()} as {CHART_KEY} from {rows}"
        name = MODEL_NAMES[model]
        yield "marts", name, query, rules, False
        yield "marts", name, query, rules_of.app_id_well_formed_rules(model), True

    def materialized(self, query: str) -> str:
        """``query``'s rows as a table of the run's in-memory database (replacing the previous model's, so one
        model's window is held at a time), or ``(query)`` if it cannot be read (GX then fails naming the model).

        GX sends several queries per rule: each would otherwise scan the lake's files and join the dims again."""
        self.con.execute(f"drop table if exists {COUNTS_DB}.{_ROWS_TABLE}")
        try:
            self.con.execute(f"create table {COUNTS_DB}.{_ROWS_TABLE} as {query}")
        except Exception:  # noqa: BLE001 - reported by the validation that runs it
            return f"({query})"
        return f"{COUNTS_DB}.{_ROWS_TABLE}"

    def summary(self, dims: dict[str, str], counted: bool):
        relation = self.rel["summary"]
        have = set(self.columns(relation))
        top = TOP_APP_COLUMN if TOP_APP_COLUMN in have or "number_one_app_id" not in have else "number_one_app_id"
        entries = [f"entries_top{n}" for n in (10, 100) if f"entries_top{n}" in have]
        base = self.rows("summary", (*CHART_COLUMNS, top, *entries))
        if top != TOP_APP_COLUMN:
            base = f"select * rename ({top} as {TOP_APP_COLUMN}) from ({base})"  # the dbt mart's name for it
        rank_charts = f"{COUNTS_DB}.rankings"
        derived, rules = rules_of.summary_rules(entries, counted)
        helpers = [self.ref_columns(dims, TOP_APP_COLUMN, "s."), *derived]
        joins = f" left join {rank_charts} rc using ({CHART_KEY})" if counted else ""
        query = "select * from " + self.materialized(f"select s.*, {', '.join(helpers)} from ({base}) s{joins}")
        yield "marts", "mart_daily_country_summary", query, rules, False
        if counted:
            # The other direction has the rankings' grain: one row per ranked chart.
            yield "marts", "mart_daily_country_summary.coverage", (
                f"select {CHART_KEY}, {CHART_KEY} in (select {CHART_KEY} from {COUNTS_DB}.summary) as has_summary "
                f"from {rank_charts}"), rules_of.coverage_rules(), False


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
