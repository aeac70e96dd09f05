select publish_id, published_at, lake_snapshot_id, published_snapshot_id, run_id, partitions_published,
    partitions_quarantined, check_summary
from analytics.publish_log
order by publish_id desc
