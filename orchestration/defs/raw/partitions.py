import dagster as dg

from orchestration.config import PARTITIONS_DAYS_AHEAD, PARTITIONS_START

# Daily chart dates, from config.PARTITIONS_START (staging refuses a chart date outside them, so every staged day
# has its partition) through tomorrow: end_offset=1 is today's partition, each day ahead one more.
# Countries are not a partition dimension: a day's countries land in one DuckLake commit (a commit costs ~0.1 s)
# and a bad country feed is isolated inside the day (reported, then quarantined at publish), so it never fails
# the other countries of that day.
daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START.isoformat(),
                                                end_offset=1 + PARTITIONS_DAYS_AHEAD)
