"""What ``chartlake query`` lets through, and how it runs it: one read of the marts, bounded in time and memory.

Why DuckDB's own parser and not a keyword list: ``EXPLAIN ANALYZE`` executes its statement (a ``COPY ... TO`` over a
lake data file included), ``PRAGMA x`` is rewritten to ``SELECT * FROM pragma_x()``, a string in ``FROM`` is a file
(replacement scan), and a table function can hide in a subquery or a CTE. So a statement is accepted only when

- the text is exactly one statement, of type SELECT, or EXPLAIN (plain, never ANALYZE) of one such SELECT;
- DuckDB serializes it as a SELECT tree (``json_serialize_sql``; PIVOT, PRAGMA, SET, CALL, COPY, ATTACH, CREATE,
  INSERT ... do not serialize, or are not SELECT);
- every table function anywhere in that tree is in ``SAFE_TABLE_FUNCTIONS`` (none of them reads a file: no
  ``read_parquet``, ``read_csv``, ``read_blob``, ``glob``, ``query``, ``sqlite_scan``, the lake's ``snapshots()``);
- every table it names is a bare name (no catalog or schema: the session's default schema holds the marts, so
  ``raw.chart_entries`` of the lake is out of reach), with no ``/``, ``\\``, ``.`` or ``:`` in it (no file read by a
  replacement scan) and no ``AT (...)`` clause (other lake versions are reached with ``--as-of``).

The session itself is locked down too (``lock_down``): no file access beyond the lake's data directory (DuckLake reads
its Parquet through DuckDB's file system, so that one directory must stay open; measured with DuckDB 1.5.5: with no
allowed directory a snapshot attach cannot scan a single table), no spilling to disk, no Python replacement scans, and
the configuration locked. ``run`` bounds the time (``con.interrupt()`` when the timeout passes or on Ctrl-C) and the
rows fetched.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import duckdb

# Table functions a query may call: they generate values in memory and touch nothing else.
SAFE_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MEMORY_LIMIT = "1GB"
DEFAULT_MAX_ROWS = 100_000
_FILE_LIKE = re.compile(r"[/\\.:]")


class QueryRefused(ValueError):
    """The statement would do more than read the marts; the message names what and why."""


class QueryAborted(RuntimeError):
    """The statement ran out of time, memory or rows, or was interrupted."""


@dataclass(frozen=True)
class Checked:
    """A statement that passed ``check``: ``sql`` is what to run (an EXPLAIN is rebuilt around its checked SELECT)."""

    sql: str
    kind: str  # SELECT | EXPLAIN


def check(sql: str) -> Checked:
    """``sql`` if it is one statement that only reads marts; else QueryRefused naming the first thing that is not."""
    statements = _split(sql)
    if not statements:
        raise QueryRefused("empty query")
    if len(statements) > 1:
        raise QueryRefused(f"query is read-only and takes exactly one statement; got {len(statements)} "
                           f"({_short(statements[1].query)!r} is the second)")
    st = statements[0]
    kind = st.type.name
    if kind == "EXPLAIN":
        inner = _explained(sql)
        _check_select(inner)
        return Checked(f"EXPLAIN {inner}", "EXPLAIN")
    if kind != "SELECT":
        raise QueryRefused(f"query is read-only: a {kind} statement is not allowed ({_short(st.query)!r}); "
                           "only one SELECT (or EXPLAIN of one) runs here")
    _check_select(sql)
    return Checked(sql, "SELECT")


def _split(sql: str):
    try:
        return duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(f"cannot parse the query: {one_line(exc)}") from None


def _explained(sql: str) -> str:
    """The statement an EXPLAIN explains; refused when it is EXPLAIN ANALYZE (which runs it) or has options."""
    tokens = duckdb.tokenize(sql)
    if len(tokens) < 2:
        raise QueryRefused("EXPLAIN of nothing")
    second = sql[tokens[1][0]:tokens[2][0] if len(tokens) > 2 else len(sql)].strip().upper()
    if second in ("ANALYZE", "ANALYSE"):
        raise QueryRefused("query is read-only: EXPLAIN ANALYZE executes its statement and is not allowed; "
                           "plain EXPLAIN shows the plan")
    if second == "(":
        raise QueryRefused("query is read-only: EXPLAIN options are not allowed; plain EXPLAIN shows the plan")
    return sql[tokens[1][0]:]


def _check_select(sql: str) -> None:
    statements = _split(sql)
    if len(statements) != 1 or statements[0].type.name != "SELECT":
        kinds = ", ".join(s.type.name for s in statements) or "nothing"
        raise QueryRefused(f"query is read-only: EXPLAIN may only explain one SELECT, not {kinds}")
    tree = json.loads(duckdb.connect(":memory:").execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    if tree.get("error"):
        # PRAGMA (rewritten to SELECT by the splitter), PIVOT and the like: not a plain SELECT tree.
        raise QueryRefused(f"query is read-only: {_short(sql)!r} is not a plain SELECT "
                           f"({tree.get('error_message')})")
    for node in _walk(tree["statements"]):
        kind = node.get("type")
        if kind == "TABLE_FUNCTION":
            fn = node.get("function") or {}
            name = str(fn.get("function_name", "")).lower()
            if name not in SAFE_TABLE_FUNCTIONS or fn.get("schema") or fn.get("catalog"):
                raise QueryRefused(f"query is read-only: table function {name}() is not allowed (only "
                                   f"{', '.join(sorted(SAFE_TABLE_FUNCTIONS))}): marts are read by name")
        elif kind == "BASE_TABLE":
            name = node.get("table_name", "")
            where = ".".join(p for p in (node.get("catalog_name"), node.get("schema_name"), name) if p)
            if node.get("catalog_name") or node.get("schema_name"):
                raise QueryRefused(f"query reads marts by bare name: {where!r} names another schema or database")
            if _FILE_LIKE.search(name):
                raise QueryRefused(f"query reads marts by bare name: {name!r} looks like a file, not a mart")
            if node.get("at_clause"):
                raise QueryRefused(f"query may not time-travel ({name} AT ...): use --as-of PUBLISH_ID")


def _walk(obj) -> Iterable[dict]:
    if isinstance(obj, dict):
        yield obj
        for v in obj.values():
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)


def connect(memory_limit: str = DEFAULT_MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    """An in-memory session for one query: bounded memory, no spilling to disk, no Python replacement scans."""
    try:
        return duckdb.connect(":memory:", config={"memory_limit": memory_limit, "temp_directory": "",
                                                  "python_enable_replacements": False})
    except duckdb.Error as exc:
        raise QueryRefused(f"--memory-limit {memory_limit!r} is not a DuckDB memory size (e.g. 1GB, 512MB): "
                           f"{one_line(exc)}") from None


def lock_down(con: duckdb.DuckDBPyConnection, allowed_dirs: Iterable[Path]) -> None:
    """After this the session reads no file outside ``allowed_dirs`` and no setting can be changed back."""
    dirs = ", ".join("'" + (str(d).rstrip("/") + "/").replace("'", "''") + "'" for d in allowed_dirs)
    con.execute(f"SET allowed_directories = [{dirs}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def run(con: duckdb.DuckDBPyConnection, sql: str, *, timeout: float = DEFAULT_TIMEOUT_S,
        max_rows: int = DEFAULT_MAX_ROWS) -> tuple[list[str], list[tuple]]:
    """(columns, rows) of ``sql``, interrupting the connection after ``timeout`` seconds or on Ctrl-C.

    The query runs in a worker thread so the main thread stays free to take SIGINT (DuckDB holds it inside
    ``execute`` otherwise) and to watch the clock; either way ``con.interrupt()`` stops DuckDB mid-scan.
    """
    out: dict = {}

    def work() -> None:
        try:
            cur = con.execute(sql)
            cols = [d[0] for d in cur.description] if cur.description else []
            rows = cur.fetchmany(max_rows + 1) if cols else []
            out["result"] = (cols, rows)
        except BaseException as exc:  # handed to the caller's thread
            out["error"] = exc

    worker = threading.Thread(target=work, name="chartlake-query", daemon=True)
    deadline = time.monotonic() + timeout
    worker.start()
    try:
        while worker.is_alive():
            left = deadline - time.monotonic()
            if left <= 0:
                con.interrupt()
                worker.join()
                raise QueryAborted(f"query stopped after its time limit of {timeout:g} s (--timeout)")
            worker.join(min(left, 0.25))
    except KeyboardInterrupt:
        con.interrupt()
        worker.join()
        raise QueryAborted("query interrupted (Ctrl-C)") from None
    if "error" in out:
        exc = out["error"]
        if isinstance(exc, duckdb.OutOfMemoryException):
            raise QueryAborted(f"query needs more memory than its limit (--memory-limit): {one_line(exc)}") from None
        if isinstance(exc, duckdb.InterruptException):
            raise QueryAborted("query interrupted") from None
        raise exc
    cols, rows = out["result"]
    if len(rows) > max_rows:
        raise QueryAborted(f"query returns more than {max_rows:,} rows (--max-rows): add a LIMIT or aggregate")
    return cols, rows


def one_line(exc: BaseException | str) -> str:
    """A DuckDB error as one line: its message and hint, without the 'LINE 1:' caret drawing."""
    lines = [ln.strip() for ln in str(exc).splitlines()]
    keep = [ln for ln in lines if ln and not ln.startswith("LINE ") and set(ln) != {"^"}]
    return " ".join(keep)


def _short(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."
