-- Watch-list heavyweights overtaken on a chart day: the watch-list app was in the chart on the previous
-- chart day and today, and at least one app that was below it then (or outside the chart) is above it now.
-- Only the day's own rows are needed (previous_rank is already on them), so the join stays within one
-- chart day: at most a few hundred rows per watch-list app.
with

day_rows as (

    select chart_id, chart_date, app_id, app_name, rank, previous_rank
    from {{ ref('mart_daily_rankings') }}
    where {{ in_date_window('chart_date') }}

),

heavyweights as (

    select d.*
    from day_rows as d
    semi join {{ ref('watchlist') }} as w on d.app_id = w.app_id
    where d.previous_rank is not null

),

overtakes as (

    select
        h.chart_id,
        h.chart_date,
        h.app_id,
        h.app_name,
        h.rank,
        h.previous_rank,
        o.app_id as overtaker_app_id,
        o.app_name as overtaker_app_name,
        o.rank as overtaker_rank,
        o.previous_rank as overtaker_previous_rank
    from heavyweights as h
    inner join day_rows as o
        on o.chart_id = h.chart_id
        and o.chart_date = h.chart_date
        and o.rank < h.rank
    where o.previous_rank is null or o.previous_rank > h.previous_rank

)

select
    chart_id,
    chart_date,
    app_id,
    any_value(app_name) as app_name,
    any_value(rank) as rank,
    any_value(previous_rank) as previous_rank,
    count(*) as overtaken_by_count,
    list(overtaker_app_id order by overtaker_rank) as overtaken_by_app_ids,
    arg_min_null(overtaker_app_id, overtaker_rank) as top_overtaker_app_id,
    arg_min_null(overtaker_app_name, overtaker_rank) as top_overtaker_app_name,
    min(overtaker_rank) as top_overtaker_rank,
    arg_min_null(overtaker_previous_rank, overtaker_rank) as top_overtaker_previous_rank
from overtakes
group by chart_id, chart_date, app_id
