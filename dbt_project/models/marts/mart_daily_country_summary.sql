{%- set top_n = var('top_n') | int %}
-- One line per chart and day: who is #1, how much the top moved since the chart's previous captured day,
-- and which watch-list heavyweights were overtaken. A row depends only on its own day and the previous
-- chart day, so it is built incrementally. On a chart's first captured day there is nothing to compare
-- with: movement figures are null.
with

days as (

    select chart_id, store, country, device, chart, genre_id, chart_date, previous_chart_date, entry_count
    from {{ ref('int_chart_days') }}
    where {{ in_date_window('chart_date') }}

),

today as (

    select r.*
    from {{ ref('mart_daily_rankings') }} as r
    where {{ in_date_window('r.chart_date') }}

),

-- The previous chart day's rows, each with the same app's rank today (null: it left the chart).
yesterday as (

    select
        d.chart_date,
        p.chart_id,
        p.app_id,
        p.rank,
        t.rank as rank_today
    from days as d
    inner join {{ ref('fct_chart_entries') }} as p
        on p.chart_id = d.chart_id
        and p.chart_date = d.previous_chart_date
    left join today as t
        on t.chart_id = d.chart_id
        and t.chart_date = d.chart_date
        and t.app_id = p.app_id

),

today_figures as (

    select
        chart_id,
        chart_date,
        arg_min_null(app_id, rank) filter (where rank = 1) as number_one_app_id,
        arg_min_null(app_name, rank) filter (where rank = 1) as number_one_app_name,
        count(*) filter (where rank <= {{ top_n }}) as top_n_size,
        count(*) filter (where rank <= 100) as top_100_size,
        count(*) filter (where rank <= {{ top_n }} and coalesce(previous_rank > {{ top_n }}, true)) as top_n_entries,
        list(app_id order by rank) filter (where rank <= {{ top_n }} and coalesce(previous_rank > {{ top_n }}, true)) as top_n_entered_app_ids,
        count(*) filter (where rank <= 100 and coalesce(previous_rank > 100, true)) as top_100_entries,
        count(*) filter (where previous_rank is null) as chart_entries,
        count(*) filter (where is_re_entry) as chart_re_entries
    from today
    group by chart_id, chart_date

),

yesterday_figures as (

    select
        chart_id,
        chart_date,
        count(*) filter (where rank <= {{ top_n }} and coalesce(rank_today > {{ top_n }}, true)) as top_n_exits,
        list(app_id order by rank) filter (where rank <= {{ top_n }} and coalesce(rank_today > {{ top_n }}, true)) as top_n_exited_app_ids,
        count(*) filter (where rank <= 100 and coalesce(rank_today > 100, true)) as top_100_exits,
        count(*) filter (where rank_today is null) as chart_exits,
        list(app_id order by rank) filter (where rank_today is null) as chart_exited_app_ids
    from yesterday
    group by chart_id, chart_date

),

overtaken as (

    select
        o.chart_id,
        o.chart_date,
        count(*) as watchlist_overtaken_count,
        list(o.app_id order by o.rank) as watchlist_overtaken_app_ids,
        string_agg(coalesce(w.app_name, o.app_name), ', ' order by o.rank) as watchlist_overtaken_apps
    from {{ ref('int_watchlist_overtakes') }} as o
    left join {{ ref('watchlist') }} as w on o.app_id = w.app_id
    where {{ in_date_window('o.chart_date') }}
    group by o.chart_id, o.chart_date

)

select
    d.chart_id,
    d.store,
    d.country,
    d.device,
    d.chart,
    d.genre_id,
    d.chart_date,
    d.previous_chart_date,
    cast(d.entry_count as integer) as chart_size,
    t.number_one_app_id,
    t.number_one_app_name,
    -- Movement against the previous chart day; null when there is none.
    case when d.previous_chart_date is not null then cast(t.top_n_entries as integer) end as top_n_entries,
    case when d.previous_chart_date is not null then cast(coalesce(y.top_n_exits, 0) as integer) end as top_n_exits,
    case when d.previous_chart_date is not null then coalesce(t.top_n_entered_app_ids, []) end as top_n_entered_app_ids,
    case when d.previous_chart_date is not null then coalesce(y.top_n_exited_app_ids, []) end as top_n_exited_app_ids,
    case when d.previous_chart_date is not null and t.top_n_size > 0
        then round(t.top_n_entries / t.top_n_size, 4) end as top_n_churn,
    case when d.previous_chart_date is not null then cast(t.top_100_entries as integer) end as top_100_entries,
    case when d.previous_chart_date is not null then cast(coalesce(y.top_100_exits, 0) as integer) end as top_100_exits,
    case when d.previous_chart_date is not null and t.top_100_size > 0
        then round(t.top_100_entries / t.top_100_size, 4) end as top_100_churn,
    case when d.previous_chart_date is not null then cast(t.chart_entries as integer) end as chart_entries,
    case when d.previous_chart_date is not null then cast(t.chart_re_entries as integer) end as chart_re_entries,
    case when d.previous_chart_date is not null then cast(coalesce(y.chart_exits, 0) as integer) end as chart_exits,
    case when d.previous_chart_date is not null then coalesce(y.chart_exited_app_ids, []) end as chart_exited_app_ids,
    cast(coalesce(o.watchlist_overtaken_count, 0) as integer) as watchlist_overtaken_count,
    coalesce(o.watchlist_overtaken_app_ids, []) as watchlist_overtaken_app_ids,
    o.watchlist_overtaken_apps
from days as d
left join today_figures as t using (chart_id, chart_date)
left join yesterday_figures as y using (chart_id, chart_date)
left join overtaken as o using (chart_id, chart_date)
