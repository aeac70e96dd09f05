"""The lake maintenance job: compact small files, expire old snapshots no publish references, delete dead files.

An op job, not an asset: maintenance changes how the lake stores its data, never what any table holds, so it
has no asset of its own to materialize. The work is ``orchestration.lib.versions.maintain``.
"""

import datetime as dt

import dagster as dg

from orchestration.defs.resources import ChartlakeHome
from orchestration.lib import versions


class MaintenanceConfig(dg.Config):
    """How much history to keep. Snapshots a publish references are kept whatever these say."""

    keep_days: float = 7.0  # snapshots younger than this are kept
    keep_last: int = 20  # the newest snapshots kept regardless of age
    # Files dropped by merging/expiry are deleted once scheduled this long ago (readers may still scan them);
    # a negative value deletes them all now.
    cleanup_after_hours: float = 24.0


@dg.op(description="Merge adjacent small files, expire old unreferenced snapshots, delete files nothing needs.")
def maintain_lake(context: dg.OpExecutionContext, config: MaintenanceConfig, chartlake: ChartlakeHome) -> dict:
    home = chartlake.home()
    cleanup = None if config.cleanup_after_hours < 0 else dt.timedelta(hours=config.cleanup_after_hours)
    result = versions.maintain(home, older_than=dt.timedelta(days=config.keep_days), keep_last=config.keep_last,
                               cleanup_older_than=cleanup)
    context.log.info(
        f"lake maintenance: {result.files_before} -> {result.files_after} data files, "
        f"{result.merged_tables} tables compacted, {len(result.expired)} snapshots expired, "
        f"{len(result.kept_for_publishes)} kept for publishes, {result.files_deleted} files deleted"
    )
    context.add_output_metadata({
        "files_before": result.files_before,
        "files_after": result.files_after,
        "expired_snapshots": dg.MetadataValue.json(result.expired),
        "kept_for_publishes": dg.MetadataValue.json(result.kept_for_publishes),
        "files_deleted": result.files_deleted,
    })
    return {"expired": result.expired, "kept_for_publishes": result.kept_for_publishes}


@dg.job(description="Compact the lake and expire old snapshots, never one a publish references.",
        tags={"chartlake/kind": "maintenance"})
def lake_maintenance_job():
    maintain_lake()
