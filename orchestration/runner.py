"""How the CLI runs the pipeline through Dagster: the home's instance, ranged runs, and recovery after a crash.

A plain module outside ``defs/``: it resolves the one ``Definitions`` when a run starts (``orchestration.definitions``
imports ``defs/``, never this), so the definitions load without it and nothing imports in a circle.

Every run the CLI launches is tagged ``chartlake/launched_by=cli`` with its process id, so the next writer on the
home (it holds the home's writer lock, ``lib/home_lock.py``) can tell a run whose process was killed from one that
is still going, and mark it failed.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Callable, Sequence

import dagster as dg

from orchestration.config import Home
from orchestration.lib import home_lock

# The CLI prints its own summary; Dagster's console logger only needs to speak up for warnings and errors.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
LAUNCHED_BY_TAG = "chartlake/launched_by"
PID_TAG = "chartlake/pid"
RAW_JOB = "raw_job"
WAREHOUSE_JOB = "warehouse_job"
PLANNED_EVENTS_ENV = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
_UNFINISHED = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def dagster_home(home: Home) -> Path:
    return home.root / "dagster"


def instance_for(home: Home) -> dg.DagsterInstance:
    """The home's persistent Dagster instance (``<home>/dagster``), shared with ``make ui``.

    Opening a new SQLite instance creates its storages and stamps their alembic revision; two processes doing that
    at once leave two heads and every later open fails ("more than one head present"). A lock file beside the
    instance makes creation one at a time, whoever holds the writer lock (``status`` opens it too).
    """
    root = dagster_home(home)
    from orchestration.defs.instance import ensure_dagster_yaml

    # A ranged run (a backfill, a full build of N days) otherwise logs one planned-materialization event per asset
    # and day before its first step: ~13 events a day here, 80-112 s at 90 days on SQLite (issue 13). Dagster's own
    # switch logs one event per asset with the partition subset. What it gives up: a failed ranged run does not
    # mark its partitions failed in the UI; chartlake reads a landing's outcome from its (one-day) raw run, never
    # from partition statuses. A user's own setting wins.
    os.environ.setdefault(PLANNED_EVENTS_ENV, "true")

    with home_lock.file_lock(root / ".instance.lock"):
        ensure_dagster_yaml(root)  # PostgreSQL storage and one-slot pools when CHARTLAKE_DAGSTER_PG_URL is set
        return dg.DagsterInstance.from_config(str(root))


def run_range(home: Home, start: dt.date, end: dt.date, *, raw_only: bool = False,
              instance: dg.DagsterInstance | None = None, log: Callable[[str], None] = lambda s: None,
              days: Sequence[dt.date] | None = None) -> bool:
    """Land each day in ``[start, end]`` (one raw run per day; only ``days`` if given), then build/check/publish the
    window in one run."""
    from orchestration.definitions import defs

    instance = instance or instance_for(home)
    resources = {"chartlake": _home_resource(str(home.root))}
    tags = cli_tags()
    ok = True
    raw = defs.resolve_job_def(RAW_JOB)
    landed_any = False
    from orchestration.defs.raw import parallel

    if (workers := parallel.max_concurrent()) > 1:  # append every day first, N at a time; the loop then records them
        if not land_window(start, end, instance=instance, workers=workers, quiet=QUIET, tags=tags):
            log(f"raw {start}..{end}: parallel landing failed for some days (see the raw_parallel_job run)")
    for day in sorted(days) if days is not None else _each_day(start, end):
        res = raw.execute_in_process(
            partition_key=day.isoformat(), instance=instance, raise_on_error=False, run_config=QUIET,
            resources=resources, tags=tags,
        )
        if res.success:
            landed_any = True
        else:
            ok = False
            log(f"raw {day}: failed (see the run in the Dagster UI or `chartlake status`)")
    log(f"raw: landed {start}..{end}")
    if raw_only or not landed_any:
        return ok
    warehouse = defs.resolve_job_def(WAREHOUSE_JOB)
    res = warehouse.execute_in_process(
        instance=instance, raise_on_error=False, run_config=QUIET,
        tags={**tags, "dagster/asset_partition_range_start": start.isoformat(),
              "dagster/asset_partition_range_end": end.isoformat()},
        resources=resources,
    )
    log(f"warehouse {start}..{end}: {'ok' if res.success else 'FAILED'}")
    return ok and res.success


def _each_day(start: dt.date, end: dt.date):
    day = start
    while day <= end:
        yield day
        day += dt.timedelta(days=1)


def cli_tags() -> dict[str, str]:
    return {LAUNCHED_BY_TAG: "cli", PID_TAG: str(os.getpid())}


def _home_resource(path: str):
    from orchestration.defs.resources import ChartlakeHome

    return ChartlakeHome(path=path)


def recover(home: Home, log: Callable[[str], None] = lambda s: None) -> dict:
    """Clean up after writers that died mid-way (``kill -9``, power loss). Call with the writer lock held.

    - CLI-launched runs still NOT_STARTED/STARTING/STARTED whose process is gone are reported failed through
      the instance (``report_run_failed``), so the UI and ``status`` stop showing them as running. Only this
      home's CLI runs: a daemon-launched run belongs to the daemon (and may be waiting for this very lock).
    - Temp files of the payload store and of the serving writer are removed: with the lock held nothing is
      writing them, and nothing else ever reads them.
    Returns what was done (``{"runs": [...], "temp_files": [...]}``).
    """
    from orchestration.lib import serving
    from orchestration.lib.payload_store import remove_temp_files

    if not home_lock.is_held_here(home.root):
        raise RuntimeError("runner.recover needs the home's writer lock")
    failed_runs: list[str] = []
    if (dagster_home(home) / "dagster.yaml").exists():
        instance = instance_for(home)
        try:
            for run in instance.get_runs(filters=dg.RunsFilter(statuses=_UNFINISHED, tags={LAUNCHED_BY_TAG: "cli"})):
                pid = int(run.tags.get(PID_TAG, "0") or 0)
                if pid == os.getpid() or (pid and home_lock.pid_alive(pid) and _holds_lock(home, pid)):
                    continue
                instance.report_run_failed(
                    run, message=f"chartlake: the process that ran this run (pid {pid or '?'}) ended without "
                                 f"finishing it (killed?); marked failed by the next writer on {home.root}")
                failed_runs.append(run.run_id)
                log(f"recovered: run {run.run_id} ({run.job_name}, pid {pid or '?'}) had been left "
                    f"{run.status.value}; marked FAILURE")
        finally:
            instance.dispose()
    temps = [*remove_temp_files(home.raw), *serving.remove_temp_files(home)]
    if temps:
        log(f"recovered: removed {len(temps)} temp file(s) left by an interrupted writer")
    return {"runs": failed_runs, "temp_files": [str(p) for p in temps]}


def _holds_lock(home: Home, pid: int) -> bool:
    # We hold the lock, so no other live process does: a live pid here is a recycled one.
    holder = home_lock.holder(home.root)
    return holder is not None and holder.pid == pid and holder.pid != os.getpid()


def failed_landings(home: Home, limit: int = 50) -> list[dict]:
    """Chart dates whose latest ``raw_job`` run failed (from the Dagster runs: a landing's outcome is a run's),
    newest date first, with the first error of the run. Reads only; an absent instance means no runs yet."""
    if not (dagster_home(home) / "dagster.yaml").exists():
        return []
    instance = instance_for(home)
    try:
        latest: dict[str, dg.DagsterRun] = {}
        for run in instance.get_runs(filters=dg.RunsFilter(job_name=RAW_JOB), limit=5000):  # newest first
            key = run.tags.get("dagster/partition")
            if key and key not in latest:
                latest[key] = run
        out = []
        for key in sorted(latest, reverse=True):
            run = latest[key]
            if run.status != dg.DagsterRunStatus.FAILURE:
                continue
            out.append({"chart_date": key, "run_id": run.run_id, "error": _first_error(instance, run.run_id)})
            if len(out) >= limit:
                break
        return out
    finally:
        instance.dispose()


def _first_error(instance: dg.DagsterInstance, run_id: str) -> str:
    for record in instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_FAILURE,
                                                     dg.DagsterEventType.RUN_FAILURE}):
        event = record.dagster_event
        data = getattr(event, "event_specific_data", None) if event else None
        error = getattr(data, "error", None)
        while error is not None and getattr(error, "cause", None) is not None:
            error = error.cause  # Dagster wraps the asset's own exception: that one says what went wrong
        if error is not None and getattr(error, "message", None):
            step = f"{event.step_key}: " if event is not None and event.step_key else ""
            return step + error.message.strip().splitlines()[0]
        if event is not None and event.message:
            return event.message.strip().splitlines()[0]
    return "failed (no error recorded)"


# Parallel landing (defs/raw/parallel.py): run here, where the Definitions are resolved, so defs/ never imports
# them back.
def raw_parallel_job_def() -> dg.JobDefinition:
    """The job with the Definitions' resources and executor, as child processes rebuild it (``dg.reconstructable``)."""
    from orchestration.definitions import defs

    return defs.resolve_job_def("raw_parallel_job")


def run_config(start: dt.date, end: dt.date, workers: int, quiet: dict) -> dict:
    return {**quiet,
            "ops": {"plan_days": {"config": {"start": start.isoformat(), "end": end.isoformat()}}},
            "execution": {"config": {"multiprocess": {
                "max_concurrent": workers,
                "start_method": {"forkserver": {"preload_modules": ["orchestration.definitions"]}},
            }}}}


def land_window(start: dt.date, end: dt.date, *, instance: dg.DagsterInstance, workers: int, quiet: dict,
                tags: "dict | None" = None) -> bool:
    """One ``raw_parallel_job`` run over ``[start, end]``, ``workers`` days at a time; whether every day landed."""
    with dg.execute_job(dg.reconstructable(raw_parallel_job_def), instance=instance, raise_on_error=False,
                        run_config=run_config(start, end, workers, quiet), tags=tags or {}) as res:
        return res.success
