-- The daily rankings of the overall charts (genre charts are left out of the dashboards), one row per position.
select
    chart_date, store, country, device, chart, rank, app_id, app_name, previous_rank, rank_delta,
    is_new_entry, is_re_entry, days_in_chart, streak_at_1, peak_rank_to_date,
    position('-simulated' in f.source_format) > 0 as is_simulated
from analytics.mart_daily_rankings as r
left join (
    select distinct chart_date, store, country, device, chart, source_format
    from analytics.fct_chart_entries
    where genre_id is null
) as f using (chart_date, store, country, device, chart)
where r.genre_id is null
order by chart_date, store, country, device, chart, rank
