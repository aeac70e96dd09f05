-- The publish this site shows (the newest row of the publish log) and whether its data is simulated: the demo's
-- rows carry a source_format ending in '-simulated'.
select
    p.publish_id,
    p.published_at,
    strftime(p.published_at, '%Y-%m-%d %H:%M UTC') as published_at_label,
    p.lake_snapshot_id,
    p.run_id,
    f.simulated_rows,
    f.total_rows,
    f.simulated_rows > 0 as has_simulated,
    f.source_formats,
    f.first_chart_date,
    f.last_chart_date,
    strftime(f.first_chart_date, '%Y-%m-%d') as first_chart_date_label,
    strftime(f.last_chart_date, '%Y-%m-%d') as last_chart_date_label
from (select * from analytics.publish_log order by publish_id desc limit 1) as p
cross join (
    select
        count(*) filter (where source_format like '%-simulated') as simulated_rows,
        count(*) as total_rows,
        string_agg(distinct source_format, ', ' order by source_format) as source_formats,
        min(chart_date) as first_chart_date,
        max(chart_date) as last_chart_date
    from analytics.fct_chart_entries
) as f
