"""dbt wiring, in one place: the project, its partition-aware ``--vars`` window, and how its nodes show in Dagster.

The raw Dagster asset is keyed ``["raw", "chart_entries"]``, which is exactly how dagster-dbt keys the dbt source
``source('raw', 'chart_entries')``: the graph connects by key, not by translator tricks.
"""


import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from orchestration.config import DBT_PROJECT_DIR
from orchestration.defs.raw.partitions import daily_partitions
from orchestration.defs.resources import ChartlakeHome

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Under `dagster dev` the manifest is rebuilt from the project; elsewhere `chartlake setup` (run by make) has
# already run `dbt parse`, offline.
dbt_project.prepare_if_dev()


def dbt_executable() -> str:
    """The dbt of this venv: `dagster dev` started as .venv/bin/dagster does not put .venv/bin on PATH."""
    exe = Path(sys.executable).parent / "dbt"
    if not exe.exists():
        raise FileNotFoundError(
            f"dbt not found beside the Python running Dagster ({exe}); run `make demo` or `make test` to install "
            "the project's virtualenv, then start Dagster with `make ui`"
        )
    return str(exe)


class ChartlakeDbtTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "marts"

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, str]:
        return {**super().get_tags(dbt_resource_props), "layer": self.get_group_name(dbt_resource_props) or ""}


@contextlib.contextmanager
def _home_env(chartlake: ChartlakeHome):
    """dbt reads the home from CHARTLAKE_HOME in profiles.yml: hand it the run's home, then restore."""
    old = os.environ.get("CHARTLAKE_HOME")
    os.environ["CHARTLAKE_HOME"] = str(chartlake.home().root)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("CHARTLAKE_HOME", None)
        else:
            os.environ["CHARTLAKE_HOME"] = old


def _manifest_path() -> Path:
    return dbt_project.manifest_path


@dbt_assets(
    manifest=_manifest_path(),
    project=dbt_project,
    dagster_dbt_translator=ChartlakeDbtTranslator(),
    partitions_def=daily_partitions,
    # dbt builds a date window in one invocation: a backfill of a month is one dbt run, not 31.
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def chartlake_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource, chartlake: ChartlakeHome):
    """staging -> intermediate -> marts for the partition window ``[min_date, max_date)``."""
    window = context.partition_time_window
    dbt_vars = {"min_date": window.start.date().isoformat(), "max_date": window.end.date().isoformat()}
    from orchestration.lib import lake

    lake.install_extensions(chartlake.home())
    with _home_env(chartlake):
        # Unit tests check model logic, not data: they run in the test suite (and `dbt build` by hand), not per partition.
        yield from dbt.cli(
            ["build", "--exclude", "resource_type:unit_test", "--vars", json.dumps(dbt_vars)], context=context
        ).stream()
