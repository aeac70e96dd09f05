"""dbt wiring, in one place: the project, its partition window, and how its nodes show in Dagster.

The raw Dagster asset is keyed ``["raw", "chart_entries"]``, which is exactly how dagster-dbt keys the dbt source
``source('raw', 'chart_entries')``: the graph connects by key, not by translator tricks.
"""


import contextlib
import functools
import os
import sys
from pathlib import Path
from typing import Any, Mapping

import dagster as dg
from dagster_dbt import (DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject,
                         DbtProjectPreparer, dbt_assets)

from orchestration.config import DBT_PROJECT_DIR
from orchestration.defs.instance import POOL_DBT
from orchestration.defs.raw.partitions import daily_partitions
from orchestration.defs.resources import ChartlakeHome
from orchestration.lib import lake


def dbt_executable() -> str:
    """The dbt of this venv: `dagster dev` started as .venv/bin/dagster does not put .venv/bin on PATH."""
    exe = Path(sys.executable).parent / "dbt"
    if not exe.exists():
        raise FileNotFoundError(
            f"dbt not found beside the Python running Dagster ({exe}); run `make demo` or `make test` to install "
            "the project's virtualenv, then start Dagster with `make ui`"
        )
    return str(exe)


class ChartlakeDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt resource without two costs of every ``cli()`` call that this project does not use, ~4 s
    of each dbt step (measured on a one-day update, 2 cores):

    - ``_cli_version`` runs ``dbt --version`` in a subprocess (~2 s: dbt's import) to tell dbt Core from Fusion.
      The dbt it runs is this venv's (``dbt_executable``), so the installed dbt-core package says the same.
    - ``_initialize_dbt_core_adapter`` loads the profile and registers a dbt adapter inside the Dagster process
      (~2.6 s) for ``fetch_column_metadata()`` / ``fetch_row_counts()`` only, which cannot read this profile's
      ``:memory:`` lake and are not used: the column schema and row counts come from the lake (below).
    Both are private to dagster-dbt 0.29: ``tests/defs/test_dbt_resource.py`` fails if an upgrade renames them.
    """

    @functools.cached_property
    def _cli_version(self):
        from importlib.metadata import version as installed
        from packaging import version

        return version.parse(installed("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        return None


class VenvDbtPreparer(DbtProjectPreparer):
    """Runs `dbt parse` under `dagster dev` with this venv's dbt. dagster-dbt's default preparer calls the `dbt` on
    PATH, which `make ui` (.venv/bin/dagster, venv not activated) does not have: the code location then fails to
    load with "dbt executable 'dbt' was not found on PATH"."""

    def prepare_if_dev(self, project: DbtProject) -> None:
        if self.using_dagster_dev():
            self.prepare(project)

    def prepare(self, project: DbtProject) -> None:
        ChartlakeDbtCliResource(project_dir=project, dbt_executable=dbt_executable()).cli(
            ["parse", "--quiet"], target_path=project.target_path).wait()
        if not project.manifest_path.exists():
            raise FileNotFoundError(f"`dbt parse` in {project.project_dir} wrote no {project.manifest_path}")


dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Under `dagster dev` the manifest is rebuilt from the project; elsewhere `chartlake setup` (run by make) has
# already run `dbt parse`, offline. (DbtProject takes no preparer argument: the venv's one is called directly.)
VenvDbtPreparer().prepare_if_dev(dbt_project)


OWNER = "team:chartlake"
# Everything dbt builds lands in the DuckLake attached as `lake`: the same kinds as the raw layer, so the graph shows
# one storage from raw to marts (Dagster allows three kinds per asset).
LAKE_KINDS = {"dbt", "duckdb", "ducklake"}


def _how_built(props: Mapping[str, Any]) -> str:
    """One line on how a node is built, for the UI: what a partitioned run rebuilds differs by materialization."""
    config = props.get("config", {})
    materialized = config.get("materialized") or props["resource_type"]
    parts = (props.get("database"), props.get("schema"), props.get("alias") or props["name"])
    relation = ".".join(p for p in parts if p)
    rebuilt = {
        "incremental": "a run rebuilds only its chart-date window `[min_date, max_date)` (delete+insert on "
                       f"`{config.get('unique_key') or 'chart_date'}`)",
        "table": "every run rebuilds it whole, over all chart dates",
        "view": "always reads the current rows; nothing is stored",
        "seed": "a hand-kept CSV lookup, loaded as is",
    }.get(materialized, f"materialized as {materialized}")
    return f"dbt {props['resource_type']} `{props['name']}` -> `{relation}` ({materialized}): {rebuilt}."


class ChartlakeDbtTranslator(DagsterDbtTranslator):
    """How dbt nodes show in Dagster. Keys stay dagster-dbt's defaults (``[schema folder, model]``; the source
    ``raw.chart_entries`` is the raw asset's key); this adds the layer group, owner, kinds, tags and a description
    that says how the node is built instead of repeating its SQL."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "marts"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]):
        # `meta.dagster.owners` in a model's yml still wins; otherwise the team that runs the warehouse.
        return super().get_owners(dbt_resource_props) or [OWNER]

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, str]:
        materialized = dbt_resource_props.get("config", {}).get("materialized") or dbt_resource_props["resource_type"]
        return {**super().get_tags(dbt_resource_props), "layer": self.get_group_name(dbt_resource_props) or "",
                "materialized": materialized}

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        # The yml description carries the grain sentence; the SQL is one click away in the code reference.
        text = (dbt_resource_props.get("description") or "").strip()
        return "\n\n".join(filter(None, [text, _how_built(dbt_resource_props)]))

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        return spec.merge_attributes(kinds=LAKE_KINDS - spec.kinds)


def rebuild_until(home, window_end):
    """End of the window dbt must rebuild: a late or corrected day changes every later day's running figures
    (previous rank, delta, days in chart, streak at #1, peak to date), so the window runs to the newest loaded day."""
    import datetime as dt

    if not lake.exists(home):
        return window_end
    with lake.session(home, read_only=True) as con:
        newest = con.execute("select max(chart_date) from raw.chart_entries").fetchone()[0]
    return max(window_end, newest + dt.timedelta(days=1)) if newest else window_end


# The window dbt rebuilds (dbt_project/macros/date_window.sql). Not `--vars`: dbt re-parses the whole project
# whenever its command-line vars change, i.e. every run (~2 s per dbt command); these are read only at execution.
WINDOW_ENV = {"min_date": "CHARTLAKE_DBT_MIN_DATE", "max_date": "CHARTLAKE_DBT_MAX_DATE"}


@contextlib.contextmanager
def _home_env(chartlake: ChartlakeHome, window: Mapping[str, str] | None = None):
    """dbt's lake plugin (orchestration.lib.dbt_lake) reads the home and DuckDB's memory bound from the
    environment, and its date_window macros the window: hand it the run's values, then restore."""
    values = {"CHARTLAKE_HOME": str(chartlake.home().root), lake.MEMORY_LIMIT_ENV: chartlake.memory_limit(),
              **{WINDOW_ENV[name]: value for name, value in (window or {}).items()}}
    old = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    # Code references: the UI links each model to its .sql file (the SQL is no longer pasted into descriptions).
    dagster_dbt_translator=ChartlakeDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_code_references=True)),
    partitions_def=daily_partitions,
    # dbt builds a date window in one invocation: a backfill of a month is one dbt run, not 31.
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=POOL_DBT,  # incremental models are delete+insert: never two dbt builds on the same tables at once
)
def chartlake_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource, chartlake: ChartlakeHome):
    """staging -> intermediate -> marts for the partition window ``[min_date, max_date)``."""
    window = context.partition_time_window
    home = chartlake.home()
    window_dates = {"min_date": window.start.date().isoformat(),
                "max_date": rebuild_until(home, window.end.date()).isoformat()}
    if window_dates["max_date"] != window.end.date().isoformat():
        context.log.info(f"rebuilding {window.end.date()}..{window_dates['max_date']} too: later days' previous "
                         "rank, streaks and peaks depend on the days in this window")
    with _home_env(chartlake, window_dates):
        # Unit tests check model logic, not data: they run in the test suite (and `dbt build` by hand), not per partition.
        events = dbt.cli(["build", "--exclude", "resource_type:unit_test"], context=context).stream()
        # Column types and row counts on each model's asset page. Not dagster-dbt's fetch_column_metadata() /
        # fetch_row_counts(): for a DuckDB profile they reopen `path` as an absolute file in READ_ONLY mode, and
        # this profile's path is ':memory:' with the lake ATTACHed, so every fetch fails ("Cannot open database
        # .../dbt_project/:memory: in read-only mode", dagster-dbt 0.29.27). The same metadata keys, read from
        # the lake's catalog for the one relation just built, fill the UI's Type column all the same.
        # One read-only session for the whole stream: opening one per event (extensions, ATTACH) cost ~2 s a model.
        with contextlib.ExitStack() as stack:
            reader = _LazyLake(home, stack)
            for event in events:
                yield _with_preview(context, reader, _with_lake_schema(context, reader, event))


class _LazyLake:
    """A read-only lake session opened on first use (a run whose events carry no model opens none)."""

    def __init__(self, home, stack: contextlib.ExitStack):
        self._home, self._stack, self._con = home, stack, None

    @property
    def con(self):
        if self._con is None:
            self._con = self._stack.enter_context(lake.session(self._home, read_only=True))
        return self._con


def _event_key(context: dg.AssetExecutionContext, event) -> dg.AssetKey | None:
    if isinstance(event, dg.AssetMaterialization):
        return event.asset_key
    if isinstance(event, dg.Output):
        return context.asset_key_for_output(event.output_name)
    return None


def _with_lake_schema(context: dg.AssetExecutionContext, reader: _LazyLake, event):
    """``event`` with ``dagster/column_schema`` (column names and DuckDB types) and, for tables, ``dagster/row_count``
    of the relation ``lake.<schema>.<model>`` its asset key names."""
    key = _event_key(context, event)
    if key is None or len(key.path) != 2:
        return event
    schema, name = key.path
    try:
        con = reader.con
        # DuckDB's own catalog functions: information_schema's views over every catalog cost ~0.35 s a model.
        cols = con.execute(
            "select column_name, data_type, exists (select 1 from duckdb_tables() t where t.database_name = "
            "c.database_name and t.schema_name = c.schema_name and t.table_name = c.table_name) "
            "from duckdb_columns() c where database_name = 'lake' and schema_name = ? and table_name = ? "
            "order by column_index", [schema, name]).fetchall()
        if not cols:
            return event
        extra = {"dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name=c, type=t) for c, t, _ in cols])}
        if cols[0][2]:  # a table, not a view
            extra["dagster/row_count"] = dg.MetadataValue.int(
                con.execute(f'select count(*) from lake."{schema}"."{name}"').fetchone()[0])
    except Exception as exc:  # metadata is a courtesy: never fail the model's materialization over it
        context.log.warning(f"no column metadata for {key.to_user_string()}: {type(exc).__name__}: {exc}")
        return event
    return event.with_metadata({**event.metadata, **extra})


# A few rows of the newest chart day, on the asset page of the marts analysts open first.
PREVIEWS = {
    "mart_daily_rankings": """select chart_date::varchar as chart_date, store, country, device, chart, rank, app_name, previous_rank, rank_delta
        from marts.mart_daily_rankings
        where chart_date = (select max(chart_date) from marts.mart_daily_rankings) and genre_id is null and rank <= 3
        order by store, country, device, chart, rank limit 18""",
    "mart_daily_country_summary": """select chart_date::varchar as chart_date, store, country, device, chart, number_one_app_name,
            top_n_entries, top_n_exits, watchlist_overtaken_apps
        from marts.mart_daily_country_summary
        where chart_date = (select max(chart_date) from marts.mart_daily_country_summary) and genre_id is null
        order by store, country, device, chart limit 18""",
}


def _with_preview(context: dg.AssetExecutionContext, reader: _LazyLake, event):
    """``event`` with a markdown preview of its model's newest chart day, for the models in ``PREVIEWS``."""
    key = _event_key(context, event)
    sql = PREVIEWS.get(key.path[-1]) if key is not None and key.path[0] == "marts" else None
    if sql is None:
        return event
    try:
        frame = reader.con.execute(sql).df()
        preview = dg.MetadataValue.md(frame.to_markdown(index=False) if len(frame) else "_no rows_")
    except Exception as exc:  # a preview is a courtesy: never fail the model's materialization over it
        preview = dg.MetadataValue.md(f"_preview not available: {type(exc).__name__}: {exc}_")
    return event.with_metadata({**event.metadata, "preview_latest_day": preview})
