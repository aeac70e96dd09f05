"""The dbt resource's two overrides of dagster-dbt internals (``ChartlakeDbtCliResource``): pinned, and the version
equal to what the replaced subprocess reports. (That dbt runs without the adapter set-up is every dbt asset test.)"""

import functools
import inspect
import re
import subprocess

from dagster_dbt import DbtCliResource
from packaging import version

from orchestration.defs.dbt.assets import ChartlakeDbtCliResource, dbt_executable, dbt_project


def test_the_overridden_internals_still_exist_and_are_what_cli_calls():
    # If an upgrade renames them, the overrides silently stop saving time: fail here instead.
    source = inspect.getsource(DbtCliResource.cli)
    assert "self._cli_version" in source and "self._initialize_dbt_core_adapter(" in source
    assert isinstance(inspect.getattr_static(DbtCliResource, "_cli_version"), functools.cached_property)


def test_the_version_without_a_subprocess_is_the_one_dbt_reports():
    resource = ChartlakeDbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
    reported = subprocess.run([dbt_executable(), "--version"], capture_output=True, text=True, check=True).stdout
    assert resource._cli_version == version.parse(re.search(r"(\d+\.\d+\.\d+)", reported).group(1))
