"""Runs Great Expectations and turns GX's results into ``ExpectationOutcome``s.

Two paths. ``validate_frame``: pandas frames (the raw suite and the frame-based marts suites), one ephemeral
context per process, reused under a lock because a GX context is not thread safe. ``SqlSession``: GX's SQL
datasource over a DuckDB connection (the lake-backed marts check), one context per run, so GX computes every
metric in DuckDB and no frame of the rows is ever built.

Group-wise rules GX lacks (per-chart rank ranges, per-chart depth, day-over-day comparisons) are computed as
helper columns or one-row-per-chart relations (pandas or SQL); GX still evaluates every rule, and GX's verdict
is the outcome.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable

import numpy as np
import pandas as pd

from orchestration.lib.quality.gx_lock import GX_LOCK
from orchestration.lib.quality.result import MAX_LISTED, ExpectationOutcome

CHART_KEY = "chart_key"  # helper column: ChartKey.label() of the row's chart
CHART_KEY_COLUMNS = ("store", "country", "device", "chart", "genre_id", "chart_date")

_lock = GX_LOCK
_state: dict[str, Any] = {}


@dataclass(frozen=True)
class Rule:
    """One expectation of a suite with its severity and the reason for it."""

    name: str
    expectation: Any  # a great_expectations.expectations.Expectation
    blocking: bool
    reason: str


def blocking(name: str, expectation: Any, reason: str) -> Rule:
    return Rule(name, expectation, True, reason)


def warning(name: str, expectation: Any, reason: str) -> Rule:
    return Rule(name, expectation, False, reason)


def gx():
    """The ``great_expectations`` module, imported on first use (it costs about 2.5 s)."""
    import great_expectations

    return great_expectations


def gxe():
    import great_expectations.expectations as expectations

    return expectations


def _context():
    """The process's ephemeral GX context with one pandas dataframe asset; built once."""
    if "batch_definition" not in _state:
        g = gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx = g.get_context(mode="ephemeral")
        # Progress bars on every validation flood Dagster's captured logs.
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        asset = ctx.data_sources.add_pandas("chartlake").add_dataframe_asset("frame")
        _state["context"] = ctx
        _state["batch_definition"] = asset.add_batch_definition_whole_dataframe("whole_frame")
        _state["counter"] = 0
    return _state["context"], _state["batch_definition"]


def gx_version() -> str:
    return gx().__version__


def validate_frame(
    suite_name: str,
    frame_name: str,
    df: pd.DataFrame,
    rules: Iterable[Rule],
    *,
    key_columns: tuple[str, ...] = (),
) -> tuple[list[ExpectationOutcome], Any]:
    """Validate ``df`` against ``rules`` in one GX run; return our outcomes and GX's validation result.

    ``key_columns`` (present in ``df``) are reported for each unexpected row, which is how a failure is traced
    to the chart (``chart_key``) and payload (``payload_sha256``) it came from.
    """
    rules = list(rules)
    if not rules:
        return [], None
    g = gx()
    key_columns = tuple(c for c in key_columns if c in df.columns)
    result_format: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": MAX_LISTED}
    if key_columns:
        result_format = {
            "result_format": "COMPLETE",
            "partial_unexpected_count": MAX_LISTED,
            "unexpected_index_column_names": list(key_columns),
            "return_unexpected_index_query": False,
        }
    by_name = {r.name: r for r in rules}
    with _lock:
        ctx, batch_definition = _context()
        _state["counter"] += 1
        gx_suite_name = f"{suite_name}.{frame_name}.{_state['counter']}"
        suite = g.ExpectationSuite(name=gx_suite_name)
        for r in rules:
            exp = r.expectation  # rules are built per run, so they can carry this run's meta
            exp.meta = {**(exp.meta or {}), "rule": r.name, "blocking": r.blocking, "reason": r.reason}
            suite.add_expectation(exp)
        suite = ctx.suites.add(suite)
        try:
            batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
            res = batch.validate(suite, result_format=result_format)
        finally:
            # Suites are per run (their parameters are the partition's); do not let them pile up.
            ctx.suites.delete(gx_suite_name)
    return _outcomes(rules, frame_name, res, key_columns), res


def _outcomes(rules: list[Rule], frame_name: str, res, key_columns) -> list[ExpectationOutcome]:
    by_name = {r.name: r for r in rules}
    outcomes = []
    seen = set()
    for r in res.results:
        cfg = r.expectation_config
        name = cfg.meta.get("rule")
        rule = by_name[name]
        seen.add(name)
        outcomes.append(_outcome(rule, frame_name, cfg, r, key_columns))
    for name in by_name.keys() - seen:  # GX dropped an expectation: that is a failure, not a pass
        rule = by_name[name]
        outcomes.append(
            ExpectationOutcome(
                name=name, expectation_type=type(rule.expectation).__name__, frame=frame_name, column=None,
                blocking=rule.blocking, reason=rule.reason, success=False, error="GX returned no result",
            )
        )
    order = {r.name: i for i, r in enumerate(rules)}
    outcomes.sort(key=lambda o: order[o.name])
    return outcomes


def _outcome(rule: Rule, frame_name: str, cfg, r, key_columns) -> ExpectationOutcome:
    kwargs = cfg.kwargs
    column = kwargs.get("column") or (
        ",".join(c for c in (kwargs.get("column_A"), kwargs.get("column_B")) if c)
        or ",".join(kwargs.get("column_list") or [])
        or None
    )
    result = r.result or {}
    exc = r.exception_info or {}
    error = None
    if exc.get("raised_exception"):
        error = exc.get("exception_message")
    else:  # several metrics: GX nests the infos by metric id
        for info in exc.values() if isinstance(exc, dict) else []:
            if isinstance(info, dict) and info.get("raised_exception"):
                error = info.get("exception_message")
                break
    charts: list[str] | None = None
    payloads: list[str] = []
    # COMPLETE (frames) lists every unexpected row; SUMMARY (SQL) the first MAX_LISTED; UnexpectedRowsExpectation
    # hands back the rows its query selected.
    index_list = (result.get("unexpected_index_list") or result.get("partial_unexpected_index_list")
                  or (result.get("details") or {}).get("unexpected_rows"))
    if index_list is None and CHART_KEY in key_columns and all(
            isinstance(v, dict) and CHART_KEY in v for v in result.get("partial_unexpected_list") or [None]):
        index_list = result.get("partial_unexpected_list")  # compound-unique rules list the key values themselves
    if CHART_KEY in key_columns:
        charts = sorted({str(i.get(CHART_KEY)) for i in index_list or [] if isinstance(i, dict)})
        if not r.success and not charts:
            charts = None  # failed without naming rows: it concerns the whole frame
        payloads = sorted(
            {str(i["payload_sha256"]) for i in index_list or [] if isinstance(i, dict) and i.get("payload_sha256")}
        )
    if key_columns and CHART_KEY not in key_columns and index_list:
        # Non-chart frames (schema, dims): the keys of the unexpected rows are the useful values.
        values = [i.get(key_columns[0]) for i in index_list if isinstance(i, dict)]
    elif values_from_rows := [v for i in index_list or [] if isinstance(i, dict)
                              for k, v in i.items() if k != CHART_KEY][:MAX_LISTED] if cfg.type == "unexpected_rows_expectation" else None:
        values = values_from_rows
    else:
        values = result.get("partial_unexpected_list")
    return ExpectationOutcome(
        name=rule.name,
        expectation_type=cfg.type,
        frame=frame_name,
        column=column,
        blocking=rule.blocking,
        reason=rule.reason,
        success=bool(r.success) and error is None,
        unexpected_count=result.get("unexpected_count", result.get("observed_value") if cfg.type == "unexpected_rows_expectation" else None),
        unexpected_values=list(values or [])[:MAX_LISTED],
        charts=charts if not r.success else [],
        payloads=payloads,
        observed_value=result.get("observed_value"),
        error=error,
    )


# ---------------------------------------------------------------------------------------------------------
# GX's SQL datasource over DuckDB

# GX 1.24 closes a SQLAlchemy connection after each metric query unless the dialect is in this private tuple;
# over duckdb_engine that close rolls back DuckDB's transaction before GX has read the result, and every
# expectation errors ("list index out of range"). Pinned: tests/quality/test_marts_sql.py fails if an upgrade
# moves or renames it.
GX_PERSISTED_DIALECTS_PIN = ("1.24.1", "great_expectations.execution_engine.sqlalchemy_execution_engine",
                             "_PERSISTED_CONNECTION_DIALECTS")


class _DuckDBDialect(str, enum.Enum):  # GX reads ``.value`` of each entry and compares them to dialect names
    DUCKDB = "duckdb"


def keep_duckdb_connection() -> None:
    """Make GX keep one connection per execution engine for DuckDB, as it does for SQLite (idempotent)."""
    import importlib

    _, module_name, attr = GX_PERSISTED_DIALECTS_PIN
    module = importlib.import_module(module_name)
    dialects = getattr(module, attr, None)
    if not isinstance(dialects, tuple):
        raise RuntimeError(f"great_expectations {gx_version()} has no {module_name}.{attr} (pinned for "
                           f"{GX_PERSISTED_DIALECTS_PIN[0]}): GX's SQL path over DuckDB cannot run")
    if "duckdb" not in dialects:
        setattr(module, attr, (*dialects, _DuckDBDialect.DUCKDB))


class SqlSession:
    """One GX context with a SQL datasource whose connections are cursors of ``con`` (a DuckDB connection).

    Cursors share ``con``'s database instance and its attachments (a read-only lake), so GX reads exactly what
    the caller's connection sees and opens no file of its own; ``close`` closes every cursor GX was handed and
    disposes its engines, so nothing outlives the caller's connection. Use as a context manager.
    """

    def __init__(self, con, name: str = "lake"):
        from duckdb_engine import ConnectionWrapper
        from great_expectations.data_context.types.base import ProgressBarsConfig

        keep_duckdb_connection()
        self._con = con
        self._cursors: list = []
        db, schema = con.execute("select current_database(), current_schema()").fetchone()
        use = f'USE "{db}"."{schema}"'

        def creator():
            cur = con.cursor()
            self._cursors.append(cur)
            cur.execute(use)  # a cursor starts in the default catalog, not the one ``con`` selected
            return ConnectionWrapper(cur)

        g = gx()
        self.context = g.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.datasource = self.context.data_sources.add_sql(name, connection_string="duckdb://",
                                                            kwargs={"creator": creator})
        self._n = 0

    def validate(self, suite_name: str, asset_name: str, query: str, rules: Iterable[Rule], *,
                 key_columns: tuple[str, ...] = (), complete: bool = False) -> tuple[list[ExpectationOutcome], Any]:
        """Validate the rows of ``query`` against ``rules`` in one GX run, metrics computed in DuckDB.

        ``key_columns`` name the unexpected rows; SQL results list the first ``MAX_LISTED`` of them (``complete``:
        as many as GX returns, for ``UnexpectedRowsExpectation``, whose rows only come back in that format).
        """
        rules = list(rules)
        if not rules:
            return [], None
        g = gx()
        self._n += 1
        fmt: dict[str, Any] = {"result_format": "COMPLETE" if complete else "SUMMARY",
                               "partial_unexpected_count": MAX_LISTED, "return_unexpected_index_query": False}
        if key_columns:
            fmt["unexpected_index_column_names"] = list(key_columns)
        asset = self.datasource.add_query_asset(f"{asset_name}.{self._n}", query=query)
        batch = asset.add_batch_definition_whole_table("whole").get_batch()
        suite = g.ExpectationSuite(name=f"{suite_name}.{asset_name}.{self._n}")
        for r in rules:
            exp = r.expectation
            exp.meta = {**(exp.meta or {}), "rule": r.name, "blocking": r.blocking, "reason": r.reason}
            suite.add_expectation(exp)
        res = batch.validate(suite, result_format=fmt)
        return _outcomes(rules, asset_name, res, tuple(key_columns)), res

    def close(self) -> None:
        execution = getattr(self.datasource, "_execution_engine", None)
        if execution is not None:
            if execution._connection is not None:  # the connection GX kept (see keep_duckdb_connection)
                execution._connection.close()
            execution.engine.dispose()
        if getattr(self.datasource, "_engine", None) is not None:  # the datasource's own, for its connection test
            self.datasource._engine.dispose()
        for cur in self._cursors:
            cur.close()
        self._cursors.clear()
        self.context = self.datasource = None

    def __enter__(self) -> "SqlSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------------------
# Helpers that prepare frames for GX


def chart_labels(df: pd.DataFrame) -> pd.Series:
    """``ChartKey.label()`` for every row, built from whatever key columns the frame has ("?" if absent).

    Built once per distinct chart, not per row: a frame holds hundreds of thousands of rows but only a few
    thousand charts.
    """
    if df.empty:
        return pd.Series([], index=df.index, dtype=object)
    parts = [
        _distinct(df[c], str, "None") if c in df.columns else (np.zeros(len(df), dtype=np.int64), ["?"])
        for c in ("store", "country", "device", "chart")
    ]
    parts.append(_distinct(df["genre_id"], _genre_str, "") if "genre_id" in df.columns
                 else (np.zeros(len(df), dtype=np.int64), [""]))
    parts.append(_distinct(df["chart_date"], _date_str, "None") if "chart_date" in df.columns
                 else (np.zeros(len(df), dtype=np.int64), ["None"]))
    chart = np.zeros(len(df), dtype=np.int64)
    for codes, table in parts:  # one code per distinct combination, kept dense so it cannot overflow
        chart, _ = pd.factorize(chart * len(table) + codes)
    first = np.unique(chart, return_index=True)[1]
    labels = np.array([
        "{}/{}/{}/{}{}/{}".format(*(table[codes[i]] for codes, table in parts)) for i in first
    ], dtype=object)
    return pd.Series(labels[chart], index=df.index, dtype=object)


def map_distinct(s: pd.Series, fn, missing) -> np.ndarray:
    """``fn`` of every value of ``s`` (``missing`` for nulls) as an object array, calling ``fn`` once per distinct
    value: frames hold hundreds of thousands of rows but only a few thousand distinct chart keys or dates."""
    codes, table = _distinct(s, fn, missing)
    return np.array(table, dtype=object)[codes]


def _distinct(s: pd.Series, fn, missing) -> tuple[np.ndarray, list]:
    """Codes of ``s``'s values and the table of ``fn`` of each distinct value, ``missing`` (last) for nulls."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    table = [fn(u) for u in uniques] + [missing]
    return np.where(codes < 0, len(table) - 1, codes), table


def _genre_str(g) -> str:
    return f"/genre={int(g)}" if _is_int(g) else f"/genre={g}"


def _is_int(v) -> bool:
    try:
        return float(v).is_integer()
    except (TypeError, ValueError):
        return False


def _date_str(v) -> str:
    d = to_date(v)
    return d.isoformat() if d else "None"


def to_date(v) -> dt.date | None:
    if v is None:
        return None
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(v, pd.Timestamp):
        return v.date()
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    try:
        return pd.Timestamp(v).date()
    except (TypeError, ValueError):
        return None


# Kinds of the canonical DuckDB types, and how a pandas column shows each one. DuckDB hands pandas 3 a VARCHAR
# as ``str`` (or ``object`` when all null), INTEGER as int32/Int32, DATE/TIMESTAMP as datetime64, DECIMAL as
# float64; frames built elsewhere may hold python dates or Decimals in object columns.
def duckdb_kind(duckdb_type: str) -> str:
    t = duckdb_type.upper()
    if t.startswith(("VARCHAR", "TEXT")):
        return "string"
    if t in ("INTEGER", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT"):
        return "integer"
    if t == "DATE":
        return "date"
    if t.startswith("TIMESTAMP"):
        return "timestamp"
    if t.startswith(("DECIMAL", "DOUBLE", "FLOAT", "NUMERIC")):
        return "number"
    if t == "BOOLEAN":
        return "boolean"
    return t.lower()


def pandas_kind(s: pd.Series, expected: str | None = None) -> str:
    """The kind a column's values actually have. An all-null column fits any kind (it is a nullable column)."""
    values = s.dropna()
    if values.empty:
        return expected or "null"
    api = pd.api.types
    if api.is_bool_dtype(s):
        return "boolean"
    if api.is_integer_dtype(s):
        return "integer"
    if api.is_float_dtype(s):
        # Integer columns with nulls become float64 on some paths; whole numbers still count as integers.
        if expected == "integer" and (values % 1 == 0).all():
            return "integer"
        return "number"
    if api.is_datetime64_any_dtype(s):
        if expected == "date":
            return "date" if (values == values.dt.normalize()).all() else "timestamp"
        return "timestamp"
    if api.is_string_dtype(s) and not api.is_object_dtype(s):
        return "string"
    types = {type(v) for v in values}
    if types <= {str}:
        return "string"
    if types <= {dt.date}:
        return "date"
    if types <= {dt.datetime, pd.Timestamp}:
        return "date" if expected == "date" and all(v == pd.Timestamp(v).normalize() for v in values) else "timestamp"
    if types <= {int, bool} and bool not in types:
        return "integer"
    if types <= {int, float, Decimal}:
        return "number"
    return "mixed:" + ",".join(sorted(t.__name__ for t in types))


def schema_frame(df: pd.DataFrame, columns: list[tuple[str, str]]) -> pd.DataFrame:
    """One row per expected column: whether it is present and which kind its values have."""
    rows = []
    for name, duck_type in columns:
        expected = duckdb_kind(duck_type)
        present = name in df.columns
        actual = pandas_kind(df[name], expected) if present else "missing"
        if expected == "number" and actual == "integer":
            actual = "number"  # a price column of whole numbers is still a number
        rows.append({"column": name, "present": present, "expected_kind": expected, "actual_kind": actual})
    return pd.DataFrame(rows, columns=["column", "present", "expected_kind", "actual_kind"])


def schema_rules(prefix: str, *, blocking_types: bool = True) -> list[Rule]:
    e = gxe()
    return [
        blocking(
            f"{prefix}columns_present",
            e.ExpectColumnValuesToBeInSet(column="present", value_set=[True]),
            "every later rule and every downstream model reads these columns by name",
        ),
        Rule(
            f"{prefix}column_types",
            e.ExpectColumnPairValuesToBeEqual(column_A="actual_kind", column_B="expected_kind"),
            blocking_types,
            "values of the wrong type would be cast or compared wrongly downstream (dates as text, ids as floats)",
        ),
    ]
