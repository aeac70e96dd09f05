"""The dbt-duckdb plugin that opens dbt's connection on the home's lake, named in ``dbt_project/profiles.yml``.

dbt hashes the profile's connection settings (dbt-duckdb's config_options, settings, attach, extensions, plugins)
into its partial-parse state, and re-parses the whole project when they differ from the ones ``chartlake setup``
parsed with: a profile that rendered the home's paths into them re-parsed every run in any other home (~2 s per
dbt command). So the profile holds no home-dependent value, and this plugin reads them from the environment when
dbt connects, through ``orchestration.lib.lake``, the one owner of how a lake session is opened: the same
``CHARTLAKE_HOME`` (default: the project's data/, which is ``../data`` from dbt_project/), extension directory,
memory bound, temp directory, extensions, S3 secret and ATTACH as every other lake connection.

dbt-duckdb calls ``update_connection_config`` before ``duckdb.connect`` and ``configure_connection`` after its own
extensions and secrets but before its ``attach:`` entries, so the lake is attached here first and the profile's
fixed ``ATTACH IF NOT EXISTS ... AS lake`` finds the alias taken and does nothing.
"""

from __future__ import annotations

from typing import Any, Dict

from dbt.adapters.duckdb.plugins import BasePlugin

from orchestration.config import Home
from orchestration.lib import lake


class Plugin(BasePlugin):
    def initialize(self, plugin_config: Dict[str, Any]) -> None:
        # Resolved when dbt loads the adapter, i.e. per dbt command, so a process that runs dbt in several homes
        # (the test suite, dbtRunner) gets each command's own. Home.resolve() reads CHARTLAKE_HOME.
        self.home = Home.resolve()
        self.config = lake.lake_config(self.home)

    def update_connection_config(self, creds, config: Dict[str, Any]) -> None:
        # Options of duckdb.connect itself: the extension directory must be set before anything loads.
        config.update(extension_directory=str(self.home.duckdb_extensions), autoinstall_known_extensions=False,
                      **lake.connect_options(self.home))

    def configure_connection(self, conn) -> None:
        lake.attach(conn, self.home, self.config)

    def configure_cursor(self, cursor) -> None:
        # dbt-duckdb keeps one environment per process and reuses it while the profile is unchanged, and the
        # profile is now the same in every home: an in-process dbtRunner invoked again under another home would
        # silently build into the first one.
        home = Home.resolve()
        config = lake.lake_config(home)
        if home.root != self.home.root or config != self.config:
            raise lake.LakeError(
                f"dbt's DuckDB connection is open on {self.config.describe()} (home {self.home.root}), but this "
                f"command's environment names {config.describe()} (home {home.root}): close dbt-duckdb's "
                "environment between in-process dbt invocations on different lakes")
