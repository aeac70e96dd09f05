"""The serving writer: publish audited marts from the lake into the DuckDB file BI tools read.

Write-audit-publish, last step. The lake (DuckLake) holds every version of the marts; BI tools read one
small DuckDB file, ``<home>/serving/chartlake.duckdb``, read-only. This module builds a *new* file next to it
from one lake snapshot (time travel, ``AT (VERSION => n)``), then fsyncs it and renames it into place with
``os.replace``. So:

- a reader holding the old file open keeps its inode and keeps reading the old, complete state; a reader
  that opens the path afterwards gets the new, complete state; nobody ever sees a half-written file;
- the pipeline never opens the serving path through DuckDB at all (it reads a private byte copy of the previous
  file, checked against the digest its publish recorded, else rebuilt from the lake), so no BI tool, even one
  wrongly holding the file read-write, blocks a publish, and a stale ``.wal`` beside it is never replayed onto a new
  file (``serving_file``).

Grain of what is written, in schema ``analytics``:

- one table per mart (same name as given in ``marts``), rows as of the lake snapshot, except the rows of
  quarantined partitions, which are carried over unchanged from the previous serving file so an analyst keeps
  the last good data for that country/day;
- ``publish_log``: one row per publish ever made (carried over, plus the new one);
- ``quarantine``: one row per quarantined partition per publish (carried over, plus the new ones).

The new file starts as a byte copy of the previous one (same storage version, still written under a temporary
name and renamed), and only what changed is replaced in it: the chart dates a mart's rows changed in the lake
since the previous publish's snapshot, found in DuckLake's catalog without reading data, plus the partitions
the previous publish held back. So a one-day update costs a day, not the history. A first publish, a previous
file that is not a usable base, or a change to most rows writes the file from scratch instead.

Every publish is also recorded in the lake (``record_in_lake``, on by default), but not as a second copy of the marts:
time travel on the lake at ``lake_snapshot_id`` already gives them, except the quarantined partitions, which were
published from the previous file. So one DuckLake commit labelled ``publish <id>`` stores the file's
``publish_log`` and ``quarantine``, the list of marts and the carried-over rows (``recorded``), and its snapshot goes
into ``publish_log.published_snapshot_id``. ``orchestration.lib.versions`` answers as-of queries, diffs and lineage
from both snapshots (``recorded.attach_publish``).

The file is written with an explicit ``STORAGE_VERSION`` (v1.0.0): BI drivers bundle older DuckDB releases,
and a file in DuckDB 1.5's default storage format does not open in them.

Readers in a long-lived process should open the file with ``duckdb.connect(':memory:')`` + ``ATTACH ...
(READ_ONLY)`` or close every connection before reopening: ``duckdb.connect(path)`` reuses an already-open
database instance for the same path, i.e. the *old* file after a swap (see ``read_publish_log``).


The package, one concern a module: ``model`` (what a publish is given and returns), ``swap`` (build the new file and
rename it into place), ``refresh_plan`` (which rows an incremental publish replaces), ``carry_over`` (quarantined
partitions kept from the previous file), ``publish_log`` (what each publish records in the file) and ``recorded``
(what it records in the lake, and a past publish read back from it).
"""

from __future__ import annotations

from .model import (
    PUBLISH_LOG, PUBLISHED_SCHEMA, QUARANTINE, QUARANTINE_KEY_COLUMNS, SCHEMA, STORAGE_VERSION, MartSpec,
    PublishResult, QuarantineEntry, ServingError)
from .publish_log import last_publish, quarantined_partitions, read_publish_log
from .swap import publish, remove_temp_files

__all__ = [
    "PUBLISH_LOG", "PUBLISHED_SCHEMA", "QUARANTINE", "QUARANTINE_KEY_COLUMNS", "SCHEMA", "STORAGE_VERSION", "MartSpec",
    "PublishResult", "QuarantineEntry", "ServingError", "last_publish", "publish", "quarantined_partitions",
    "read_publish_log", "remove_temp_files",
]
