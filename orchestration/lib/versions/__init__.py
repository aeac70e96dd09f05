"""Data versions: what the warehouse said at any past publish, what changed between two, where a row came from,
whether a publish can be rebuilt from raw, and lake maintenance that keeps all of that answerable.

A past publish is time travel on the lake's marts at its ``lake_snapshot_id``, with its quarantined partitions
replaced by the rows it carried over: a quarantined partition is published from the *previous* serving file, so
``marts.*`` at that snapshot holds rows nobody was ever shown there. Those rows, the log and the quarantine are what
``serving.publish`` commits per publish (snapshot ``publish_log.published_snapshot_id``); ``serving.recorded``
puts both together as views, which return exactly what the publish's file held.

Grain of the things here:

- a *publish* is one row of the serving file's ``analytics.publish_log`` (``Publish``);
- ``query`` runs one read-only SELECT against the marts of one publish (or the current serving file);
- ``diff`` counts rows added, removed and changed per mart x partition (country x chart_date for the daily
  marts, country for breakouts, the whole table for dimensions) between two publishes;
- ``lineage`` walks one mart row to the raw payload versions and the lake snapshots that landed them;
- ``rebuild`` rebuilds every mart from ``raw.*`` as of a publish's lake snapshot in a scratch home and compares
  a content hash per mart with what was published;
- ``maintain`` compacts small files and expires snapshots, never one a publish references.

One module a concern: ``catalog`` (publishes and the sessions that read them), ``as_of`` (query), ``diffs``,
``row_lineage``, ``rebuilds`` and ``maintenance``; their public names are re-exported here.

Plain Python, no Dagster: the CLI and the maintenance job both call it.
"""

from __future__ import annotations

from .catalog import GRAINS, PARTITIONS, PUBLISHED, Publish, VersionsError, publishes, recent_snapshots, resolve_publish
from .as_of import QueryResult, check_read_only, open_as_of, query
from .diffs import DiffResult, PartitionDiff, diff
from .row_lineage import Lineage, PayloadLineage, lineage
from .rebuilds import MartCheck, content_hash, published_hashes, rebuild
from .maintenance import MaintenanceResult, maintain, referenced_snapshots

__all__ = [
    "GRAINS", "PARTITIONS", "PUBLISHED", "Publish", "VersionsError", "publishes", "recent_snapshots", "resolve_publish",
    "QueryResult", "check_read_only", "open_as_of", "query", "DiffResult", "PartitionDiff", "diff", "Lineage",
    "PayloadLineage", "lineage", "MartCheck", "content_hash", "published_hashes", "rebuild", "MaintenanceResult",
    "maintain", "referenced_snapshots",
]
