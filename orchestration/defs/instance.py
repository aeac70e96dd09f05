"""The Dagster instance's configuration (``<home>/dagster/dagster.yaml``) and the pools that serialise lake writers.

Default: Dagster's SQLite storage under the home, nothing else to run. With ``CHARTLAKE_DAGSTER_PG_URL`` set
(``postgresql://user:pass@host:5432/dagster``) runs, events and schedules are stored in PostgreSQL
(``dagster-postgres``), so a webserver, a daemon and many run workers share one instance (docs/deployment.md), and
every pool gets one slot: a step writing with delete+insert never shares its table with another writer (DuckLake
checks conflicts per table, and two writers deleting nothing then inserting the same key both commit,
duckdb/ducklake#1393). Raw landing is append-only and is in no pool. Pools stay unlimited on the SQLite instance:
without a daemon to notice a crashed run, a slot it held would never be freed.
"""

from __future__ import annotations

import os
from pathlib import Path

DAGSTER_PG_ENV = "CHARTLAKE_DAGSTER_PG_URL"
MAX_CONCURRENT_RUNS_ENV = "CHARTLAKE_DAGSTER_MAX_CONCURRENT_RUNS"
# One pool per table set written with delete+insert: dbt's models, the raw check's quarantine, the publish log.
POOL_DBT = "lake_dbt"
POOL_QUARANTINE = "lake_quarantine"
POOL_PUBLISH = "lake_publish"
POOLS = (POOL_DBT, POOL_QUARANTINE, POOL_PUBLISH)

LEGACY = "telemetry:\n  enabled: false\n"  # what chartlake wrote before this module
MARKER = "# written by chartlake (orchestration/defs/instance.py); delete this line to keep your own edits"


def instance_yaml(env=None) -> str:
    env = os.environ if env is None else env
    lines = [MARKER, "telemetry:", "  enabled: false"]
    if env.get(DAGSTER_PG_ENV):
        max_runs = int(env.get(MAX_CONCURRENT_RUNS_ENV) or 8)
        lines += [
            "storage:", "  postgres:", "    postgres_url:", f"      env: {DAGSTER_PG_ENV}",
            "concurrency:", "  pools:", "    default_limit: 1", "  runs:", f"    max_concurrent_runs: {max_runs}",
            # Two runs of one day could both find a payload not yet landed and land it twice: one run per partition.
            "    tag_concurrency_limits:", "      - key: dagster/partition", "        value:",
            "          applyLimitPerUniqueValue: true", "        limit: 1",
        ]
    return "\n".join(lines) + "\n"


def ensure_dagster_yaml(dagster_home: Path, env=None) -> Path:
    """Write the instance config if missing, or if chartlake wrote it and the configuration changed since."""
    path = Path(dagster_home) / "dagster.yaml"
    want = instance_yaml(env)
    current = path.read_text() if path.exists() else None
    ours = current is not None and (current.startswith(MARKER) or current == LEGACY)
    if current is None or (current != want and ours):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(want)
        tmp.replace(path)
    return path
