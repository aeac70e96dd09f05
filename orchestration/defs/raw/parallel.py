"""Landing many chart dates at once: one ``raw_job`` run per day, several runs at a time, each in its own processes.

Landing is append-only (one commit per day, nothing deleted), so DuckLake commits parallel landers of different days
without conflicts; the day's checks follow in the same run. The limit is ``CHARTLAKE_RAW_MAX_CONCURRENT`` (default 1:
the days one after the other, in this process). Steps run on Dagster's multiprocess executor with a forkserver that
has the definitions preloaded, so a step does not pay for importing Dagster, dbt and GX again. The one-writer steps
(the quarantine written by ``raw_chart_quality``, dbt, publish) are held to one at a time by pools on a PostgreSQL
instance (``orchestration/defs/instance.py``). A deployment with a daemon gets the same from a backfill: one run per
partition, ``max_concurrent_runs`` at a time.
"""

from __future__ import annotations

import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import dagster as dg

MAX_CONCURRENT_ENV = "CHARTLAKE_RAW_MAX_CONCURRENT"


def max_concurrent(env=None) -> int:
    env = os.environ if env is None else env
    raw = (env.get(MAX_CONCURRENT_ENV) or "1").strip()
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{MAX_CONCURRENT_ENV}={raw!r}: expected a whole number of parallel raw runs, at least 1")
    return n


def raw_job_def() -> dg.JobDefinition:
    """The raw job as child processes rebuild it (``dg.reconstructable`` needs a module-level function)."""
    from orchestration.definitions import defs

    return defs.resolve_job_def("raw_job")


def run_config(quiet: dict) -> dict:
    return {**quiet, "execution": {"config": {"multiprocess": {
        "max_concurrent": 2,  # the day's steps: land, then its two checks side by side
        "start_method": {"forkserver": {"preload_modules": ["orchestration.definitions"]}},
    }}}}


def land_days(days: list[dt.date], *, instance: dg.DagsterInstance, workers: int, quiet: dict,
              log: Callable[[str], None] = lambda s: None) -> dict[dt.date, bool]:
    """Run ``raw_job`` for each day, ``workers`` runs at a time; which days succeeded."""
    job = dg.reconstructable(raw_job_def)

    def one(day: dt.date) -> bool:
        with dg.execute_job(job, instance=instance, run_config=run_config(quiet), raise_on_error=False,
                            tags={"dagster/partition": day.isoformat(), "chartlake/parallel": str(workers)}) as res:
            return res.success

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="raw-run") as pool:
        results = dict(zip(days, pool.map(one, days)))
    for day, ok in results.items():
        if not ok:
            log(f"raw {day}: failed (see the run in the Dagster UI or `chartlake status`)")
    return results
