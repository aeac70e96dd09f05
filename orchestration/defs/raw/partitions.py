import dagster as dg

# Daily chart dates. The first real archive in ../shared/real_charts starts 2024-12-28; the demo month is 2025-01.
# Countries are not a partition dimension: a day's countries land in one DuckLake commit (a commit costs ~0.1 s)
# and a bad country feed is isolated inside the day (reported, then quarantined at publish), so it never fails
# the other countries of that day.
daily_partitions = dg.DailyPartitionsDefinition(start_date="2024-12-01", end_offset=1)
