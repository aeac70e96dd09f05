"""The guard against DuckLake's duplicate-on-first-write (duckdb/ducklake#1393): no chart position twice in raw.

Landing is append-only and skips what already landed, so a duplicate means two writers landed the same payload's
chart at once (two runs of one day, or a delete+insert race): the day must not reach the marts.
"""

import datetime as dt

import dagster as dg

from orchestration.defs.raw.assets import RAW_CHART_ENTRIES
from orchestration.defs.raw.partitions import daily_partitions
from orchestration.defs.resources import ChartlakeHome
from orchestration.lib import lake

CHART_POSITION = "store, country, device, chart, genre_id, chart_date, payload_sha256, rank"


@dg.asset_check(
    asset=RAW_CHART_ENTRIES,
    name="raw_no_duplicate_positions",
    partitions_def=daily_partitions,
    blocking=True,
    description="No (chart key, payload, rank) appears twice in raw.chart_entries for the day: parallel landers "
    "never land one payload's chart twice.",
)
def raw_no_duplicate_positions(context: dg.AssetCheckExecutionContext, chartlake: ChartlakeHome) -> dg.AssetCheckResult:
    day = dt.date.fromisoformat(context.partition_key)
    with lake.session(chartlake.home(), read_only=True) as con:
        rows = con.execute(f"""select {CHART_POSITION}, count(*) as n from raw.chart_entries where chart_date = ?
                               group by all having count(*) > 1 order by n desc limit 20""", [day]).fetchall()
        total = con.execute(f"""select count(*) from (select {CHART_POSITION} from raw.chart_entries
                                where chart_date = ? group by all having count(*) > 1)""", [day]).fetchone()[0]
    sample = [{"country": r[1], "device": r[2], "chart": r[3], "genre_id": r[4], "payload_sha256": r[6],
               "rank": r[7], "copies": r[8]} for r in rows]
    return dg.AssetCheckResult(passed=total == 0, metadata={"duplicated_positions": total,
                                                            "sample": dg.MetadataValue.json(sample)})
