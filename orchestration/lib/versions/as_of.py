"""``query``: one read-only SELECT against the marts of one publish (or the current serving file), in a
locked-down session."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from orchestration.config import Home
from orchestration.lib import readonly_query, serving, serving_file

from .catalog import _base_connection, _marts_in, _open_publish, Publish, resolve_publish, VersionsError


def open_as_of(home: Home, publish: Publish | None, *,
               memory_limit: str = readonly_query.DEFAULT_MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    """A locked-down read-only session whose default schema holds the marts of ``publish`` by bare name.

    ``publish`` None: the current serving file (``analytics`` schema), opened read-only with any WAL beside it
    ignored. Otherwise views over the lake attached read-only at the publish's snapshots (``SNAPSHOT_VERSION``):
    the marts as it read them, its quarantined partitions replaced by the rows it carried over
    (``serving.recorded.attach_publish``); DuckLake time travel, nothing copied, no lake file named by SQL. Either
    way the session then has no file access beyond what those attaches read (``readonly_query.lock_down``).
    """
    con = readonly_query.connect(memory_limit)
    try:
        if publish is None:
            try:
                serving_file.attach_read_only(con, home.serving_db, "srv")
            except serving_file.ServingFileError as exc:
                raise VersionsError(str(exc)) from None
            con.execute(f"USE srv.{serving.SCHEMA}")
            readonly_query.lock_down(con, [])
        else:
            _base_connection(home, con)
            past = _open_publish(con, home, publish, "at_publish")
            con.execute(f"USE memory.{past.name}")
            # DuckLake reads its Parquet through DuckDB's file system: that directory stays readable, for the
            # attach only (check_read_only keeps SQL from naming a file).
            readonly_query.lock_down(con, [home.lake_files])
    except Exception:
        con.close()
        raise
    return con


def check_read_only(sql: str) -> str:
    """The statement to run if ``sql`` only reads marts (see ``readonly_query.check``); else VersionsError."""
    try:
        return readonly_query.check(sql).sql
    except readonly_query.QueryRefused as exc:
        raise VersionsError(str(exc)) from None


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    publish: Publish | None  # None: the current serving file


def query(home: Home, sql: str, as_of: str | int | None = None, *,
          timeout: float = readonly_query.DEFAULT_TIMEOUT_S,
          memory_limit: str = readonly_query.DEFAULT_MEMORY_LIMIT,
          max_rows: int = readonly_query.DEFAULT_MAX_ROWS) -> QueryResult:
    """Run one read-only SELECT against the marts of publish ``as_of`` (id or timestamp) or the current serving file.

    Marts are addressed by bare name (``select ... from mart_daily_rankings``). Anything that could write or read
    beyond the marts is refused before a connection is opened; the query is stopped after ``timeout`` seconds, on
    Ctrl-C, above ``memory_limit`` or beyond ``max_rows`` rows (VersionsError, nothing written either way).
    """
    statement = check_read_only(sql)  # before anything is opened: a refused query touches nothing
    if timeout <= 0:
        raise VersionsError(f"--timeout must be a positive number of seconds, got {timeout:g}")
    if max_rows < 1:
        raise VersionsError(f"--max-rows must be at least 1, got {max_rows}")
    publish = resolve_publish(home, as_of) if as_of is not None else None
    try:
        con = open_as_of(home, publish, memory_limit=memory_limit)
    except readonly_query.QueryRefused as exc:
        raise VersionsError(str(exc)) from None
    where = f"publish {publish.publish_id}" if publish else "the current serving file"
    try:
        try:
            columns, rows = readonly_query.run(con, statement, timeout=timeout, max_rows=max_rows)
        except readonly_query.QueryAborted as exc:
            raise VersionsError(f"{exc} (against {where})") from None
        except duckdb.Error as exc:
            raise VersionsError(f"query failed against {where}: {readonly_query.one_line(exc)}; marts there: "
                                f"{', '.join(_marts_in(con))}") from None
        return QueryResult(columns, rows, publish)
    finally:
        con.close()
