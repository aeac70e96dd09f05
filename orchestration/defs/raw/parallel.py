"""Landing many chart dates at once, inside one run: ``raw_parallel_job`` fans the window out into one step per day.

Landing is append-only (one commit per day, nothing deleted), so DuckLake commits parallel landers of different days
without conflicts. The steps run on Dagster's multiprocess executor, at most ``CHARTLAKE_RAW_MAX_CONCURRENT`` at a
time (``execution: config: multiprocess: max_concurrent``), in a forkserver with the definitions preloaded so a step
does not pay for importing Dagster, dbt and GX again. It is one run, so it holds the home's writer lock once for all
its steps. ``chartlake run`` then materializes ``raw/chart_entries`` day by day as before: each day's landing finds its
payloads landed (nothing to do) and records the partition's data version and runs its checks. The one-writer steps
(the quarantine written by ``raw_chart_quality``, dbt, publish) stay one at a time through pools on a PostgreSQL
instance (``orchestration/defs/instance.py``).
"""


import datetime as dt
import os

import dagster as dg

from orchestration.defs.resources import ChartlakeHome
from orchestration.lib import ingest, lake

MAX_CONCURRENT_ENV = "CHARTLAKE_RAW_MAX_CONCURRENT"


def max_concurrent(env=None) -> int:
    env = os.environ if env is None else env
    raw = (env.get(MAX_CONCURRENT_ENV) or "1").strip()
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{MAX_CONCURRENT_ENV}={raw!r}: expected a whole number of parallel landers, at least 1")
    return n


class LandWindow(dg.Config):
    start: str
    """First chart date (YYYY-MM-DD)."""
    end: str
    """Last chart date, inclusive."""


@dg.op(out=dg.DynamicOut(str))
def plan_days(config: LandWindow):
    day, end = dt.date.fromisoformat(config.start), dt.date.fromisoformat(config.end)
    while day <= end:
        yield dg.DynamicOutput(day.isoformat(), mapping_key=day.strftime("d%Y%m%d"))
        day += dt.timedelta(days=1)


@dg.op
def land_one_day(context: dg.OpExecutionContext, chartlake: ChartlakeHome, day: str) -> int:
    """Append the day's staged charts not yet in raw.chart_entries (one commit)."""
    home = chartlake.home()
    with lake.session(home) as con:
        res = ingest.land_day(con, chartlake.store(), dt.date.fromisoformat(day), run_id=context.run.run_id)
    for f in res.failures:
        context.log.error(f"[{day} {f['country']}] payload failed: {f['error']} (source {f['source']})")
    context.log.info(f"{day}: {res.rows_inserted} rows landed (snapshot {res.snapshot_id})")
    return res.rows_inserted


@dg.op
def total_landed(context: dg.OpExecutionContext, rows: list[int]) -> int:
    context.log.info(f"{sum(rows)} rows landed over {len(rows)} days")
    return sum(rows)


@dg.job(description="Land a window of chart dates in parallel, one step (one append commit) per day; the raw "
        "asset's per-day runs then record each partition and run its checks.")
def raw_parallel_job():
    total_landed(plan_days().map(land_one_day).collect())
