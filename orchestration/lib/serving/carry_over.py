"""Quarantine carry-over: a quarantined partition's rows come from the previous serving file, not the lake, so an
analyst keeps the last good data for that country and day."""

from __future__ import annotations

from .model import _ident, _lake_source, _mart_columns, MartSpec, _q, SCHEMA


def _copy_mart(con, name, spec: MartSpec, snapshot, entries, target, prev) -> tuple[int, int, set[tuple]]:
    """Create ``target``: lake rows outside quarantine + rows of table ``prev`` = (database, name) inside it."""
    source = _lake_source(spec, snapshot)
    types = dict(_mart_columns(con, name, spec, snapshot))
    pred, params = _quarantine_predicate(spec, types, entries)
    order = f" ORDER BY {', '.join(map(_ident, spec.partition_columns))}" if spec.partition_columns else ""
    keep = f" WHERE NOT coalesce({pred}, false)" if pred else ""
    con.execute(f"CREATE TABLE {target} AS SELECT * FROM {source}{keep}{order}", params)

    carried = 0
    if pred and prev:
        prev_db, prev_name = prev
        prev_cols = {
            r[0]
            for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? "
                "AND table_name = ?",
                [prev_db, SCHEMA, prev_name],
            ).fetchall()
        }
        if all(p in prev_cols for p in spec.partition_columns):
            # Columns the mart gained since the previous publish stay null for carried rows; dropped ones go.
            common = [c for c in types if c in prev_cols]
            col_list = ", ".join(map(_ident, common))
            carried = con.execute(
                f"INSERT INTO {target} ({col_list}) SELECT {col_list} FROM {prev_db}.{SCHEMA}.{_ident(prev_name)} "
                f"WHERE coalesce({pred}, false)",
                params,
            ).fetchone()[0]
    n = con.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
    parts: set[tuple] = set()
    if spec.partition_columns:
        pcols = ", ".join(map(_ident, spec.partition_columns))
        for row in con.execute(f"SELECT DISTINCT {pcols} FROM {source}{keep}", params).fetchall():
            parts.add((spec.partition_columns, tuple(row)))
    return n, carried, parts


def _quarantine_predicate(spec: MartSpec, types: dict[str, str], entries, *, inline: bool = False
                          ) -> tuple[str | None, list]:
    """SQL that is true for rows of a quarantined partition of this mart, with its parameters (``inline``: values
    as literals, no parameters, for a view)."""
    clauses, params = [], []
    for q, part in entries:
        keys = [k for k in spec.partition_columns if k in part]
        if not keys:
            continue
        conds = []
        for k in keys:
            # Cast the value to the column's type: a date given as text still matches a DATE column.
            if inline:
                value = "NULL" if part[k] is None else f"'{_q(part[k])}'"
                conds.append(f"{_ident(k)} IS NOT DISTINCT FROM CAST({value} AS {types[k]})")
            else:
                conds.append(f"{_ident(k)} IS NOT DISTINCT FROM CAST(? AS {types[k]})")
                params.append(part[k])
        clauses.append("(" + " AND ".join(conds) + ")")
    if not clauses:
        return None, []
    return "(" + " OR ".join(clauses) + ")", params
