"""Move a home's lake catalog from SQLite onto PostgreSQL, history included (``chartlake migrate-catalog --to DSN``).

DuckLake keeps its whole state in ordinary catalog tables (snapshots, tables, columns, data files, inlined rows), and
data files are referenced relative to the catalog's data path. So the move is: let DuckLake create its tables in the
target (a first ATTACH), copy every ``ducklake_*`` table row for row from the SQLite file (inlined-data tables, which
DuckLake creates per table version, are created as they are), point the target's data path at the configured one, and
check that the target shows the same snapshots and the same rows. Data files stay where they are; nothing in the
source is changed, so going back is unsetting ``CHARTLAKE_LAKE_CATALOG``. Run it while nothing writes to the lake.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from orchestration.config import Home
from orchestration.lib import lake


class MigrateError(RuntimeError):
    pass


@dataclass
class MigrateResult:
    tables: int
    catalog_rows: int
    snapshots: int
    lake_rows: dict[str, int]
    target: lake.LakeConfig


def migrate_catalog(home: Home, dsn: str) -> MigrateResult:
    source = lake.lake_config(home)
    if not source.is_sqlite:
        raise MigrateError(f"the home's lake is already on {source.describe()}: only a SQLite catalog can be moved")
    if not source.sqlite_file.exists():
        raise MigrateError(f"no lake at {source.sqlite_file}: nothing to move")
    env = {lake.CATALOG_ENV: dsn, lake.DATA_PATH_ENV: source.data_path}
    target = lake.LakeConfig.resolve(home, env)
    schema = target.metadata_schema or "public"
    if lake.exists_at(home, target):
        raise MigrateError(f"{lake.mask(dsn)} already holds a DuckLake catalog: give an empty database")
    con = duckdb.connect(":memory:")
    try:
        lake.prepare(con, home, target)
        con.execute(f"ATTACH '{lake._sql_str(source.sqlite_file)}' AS src (TYPE sqlite, READ_ONLY)")
        con.execute(target.attach_sql(alias="dst"))  # DuckLake creates its catalog tables in the target
        con.execute("DETACH dst")
        con.execute(f"ATTACH '{lake._sql_str(dsn)}' AS pg (TYPE postgres)")
        tables = [t for (t,) in con.execute(
            "select table_name from duckdb_tables() where database_name = 'src' and table_name like 'ducklake_%' "
            "order by 1").fetchall()]
        present = {t for (t,) in con.execute(
            "select table_name from duckdb_tables() where database_name = 'pg' and schema_name = ?", [schema]).fetchall()}
        copied = 0
        con.execute("BEGIN")
        for t in tables:
            if t not in present:  # an inlined-data table: DuckLake made it for one table version
                con.execute(f"CREATE TABLE pg.{schema}.{t} AS SELECT * FROM src.{t}")
            else:
                cols = ", ".join(c for (c,) in con.execute(
                    "select column_name from duckdb_columns() where database_name = 'pg' and schema_name = ? "
                    "and table_name = ? order by column_index", [schema, t]).fetchall())
                con.execute(f"DELETE FROM pg.{schema}.{t}")
                con.execute(f"INSERT INTO pg.{schema}.{t} ({cols}) SELECT {cols} FROM src.{t}")
            copied += con.execute(f"select count(*) from src.{t}").fetchone()[0]
        # The source recorded the path it was created with; a moved home reads its files where they are now.
        con.execute(f"UPDATE pg.{schema}.ducklake_metadata SET value = ? WHERE key = 'data_path'", [target.data_path])
        con.execute("COMMIT")
        con.execute("DETACH pg")
        con.execute("DETACH src")
        con.execute(source.attach_sql(alias="a", read_only=True))
        con.execute(target.attach_sql(alias="b", read_only=True))
        snaps = [con.execute(f"select count(*), max(snapshot_id) from {a}.snapshots()").fetchone() for a in ("a", "b")]
        if snaps[0] != snaps[1]:
            raise MigrateError(f"snapshots differ after the copy: source {snaps[0]}, target {snaps[1]}")
        counts = {}
        for schema_name, table in con.execute(
                "select schema_name, table_name from duckdb_tables() where database_name = 'a' order by 1, 2").fetchall():
            rel = f"{schema_name}.{table}"
            n_a, n_b = (con.execute(f"select count(*) from {db}.{rel}").fetchone()[0] for db in ("a", "b"))
            if n_a != n_b:
                raise MigrateError(f"{rel}: {n_a} rows in the source, {n_b} in the target")
            counts[rel] = n_a
    except duckdb.Error as exc:
        raise MigrateError(f"moving {source.sqlite_file} to {lake.mask(dsn)} failed: {exc}") from exc
    finally:
        con.close()
    return MigrateResult(tables=len(tables), catalog_rows=copied, snapshots=snaps[0][0], lake_rows=counts, target=target)
