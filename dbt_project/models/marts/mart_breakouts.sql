{#- One row per chart x app x breakout day: a window rebuilds breakouts, not whole dates (see below). -#}
{{
    config(
        unique_key=['chart_id', 'app_id', 'breakout_date'],
        pre_hook="{{ mart_breakouts_drop_rebuilt_rows() }}"
    )
}}
{%- set top_n = var('top_n') | int %}
{%- set from_rank = var('breakout_from_rank') | int %}
{%- set within_days = var('breakout_within_days') | int %}
{%- set spread_days = var('spread_window_days') | int %}
{%- set incremental = is_incremental() %}
-- Surges into the top N: an app enters the top {{ top_n }} of a chart (it was not in it on the previous
-- chart day) and, on some chart day in the {{ within_days }} days before, it was ranked below
-- {{ from_rank }} or absent from the chart. One row per chart × app × breakout day.
--
-- How long the app stayed in the top N and how many countries had the same breakout within {{ spread_days }}
-- days depend on later days, so an incremental run rebuilds what its window [min_date, max_date) can change:
-- - every breakout from min_date - {{ spread_days }} days on (deleted first by the pre-hook: a window can
--   remove a breakout, and its neighbours' country spread), computed from the rankings from
--   min_date - {{ 2 * spread_days + within_days }} days on (their spread and lookback reach that far back);
-- - older breakouts whose run in the top N reached the chart's last day before the window: the run is
--   continued with the window's days (days in top N, last day, best rank, still in top N).
-- Older breakouts cannot change. Like the other incremental marts, days are built in order.
with

days as (

    select chart_id, chart_date, day_index, max_rank
    from {{ ref('int_chart_days') }}
    {% if incremental %}where chart_date >= {{ mart_breakouts_read_from() }}{% endif %}

),

rankings as (

    select chart_id, store, country, device, chart, genre_id, chart_date, app_id, app_name, rank, previous_rank
    from {{ ref('mart_daily_rankings') }}
    {% if incremental %}where chart_date >= {{ mart_breakouts_read_from() }}{% endif %}

),

candidates as (

    select *
    from rankings
    where rank <= {{ top_n }}
        and coalesce(previous_rank > {{ top_n }}, true)
        {% if incremental %}and chart_date >= {{ min_date() }} - {{ 2 * spread_days }}{% endif %}

),

-- The chart days within the lookback window of each candidate (equi-joins on generated dates, not a
-- range join over the whole history).
lookback as (

    select
        c.chart_id,
        c.app_id,
        c.chart_date as breakout_date,
        d.chart_date as lookback_date,
        d.max_rank as lookback_chart_size,
        r.rank as lookback_rank
    from candidates as c
    cross join range(1, {{ within_days }} + 1) as k(days_back)
    inner join days as d
        on d.chart_id = c.chart_id
        and d.chart_date = cast(c.chart_date - cast(k.days_back as integer) as date)
    left join rankings as r
        on r.chart_id = c.chart_id
        and r.app_id = c.app_id
        and r.chart_date = d.chart_date

),

-- The surge starts on the latest lookback day on which the app was still far down or out of the chart.
surge_starts as (

    select
        chart_id,
        app_id,
        breakout_date,
        lookback_date as surge_start_date,
        lookback_rank as surge_start_rank,
        -- An app outside the chart is placed just below its last position.
        coalesce(lookback_rank, lookback_chart_size + 1) as surge_start_position
    from lookback
    where lookback_rank is null or lookback_rank > {{ from_rank }}
    qualify row_number() over (partition by chart_id, app_id, breakout_date order by lookback_date desc) = 1

),

breakouts as (

    select
        c.chart_id,
        c.store,
        c.country,
        c.device,
        c.chart,
        c.genre_id,
        c.app_id,
        c.app_name,
        c.chart_date as breakout_date,
        c.rank as breakout_rank,
        c.previous_rank,
        s.surge_start_date,
        s.surge_start_rank,
        s.surge_start_position,
        date_diff('day', s.surge_start_date, c.chart_date) as surge_days,
        round(
            (s.surge_start_position - c.rank) / date_diff('day', s.surge_start_date, c.chart_date), 2
        ) as velocity_ranks_per_day
    from candidates as c
    inner join surge_starts as s
        on s.chart_id = c.chart_id
        and s.app_id = c.app_id
        and s.breakout_date = c.chart_date

),

-- Consecutive chart days in the top N (gaps and islands over top-N rows only).
top_n_days as (

    select r.chart_id, r.app_id, r.chart_date, r.rank, d.day_index
    from rankings as r
    inner join days as d using (chart_id, chart_date)
    where r.rank <= {{ top_n }}

),

top_n_runs as (

    select
        chart_id,
        app_id,
        min(chart_date) as run_start,
        max(chart_date) as run_end,
        count(*) as run_days,
        min(rank) as best_rank
    from (
        select *, day_index - row_number() over (partition by chart_id, app_id order by day_index) as island
        from top_n_days
    )
    group by chart_id, app_id, island

),

last_days as (

    select
        chart_id,
        max(chart_date) as last_chart_date,
        max(chart_date) filter (where chart_date < {{ min_date() }}) as prev_chart_date,
        max(day_index) filter (where chart_date < {{ min_date() }}) as prev_day_index
    from {{ ref('int_chart_days') }}
    group by chart_id

),

-- Same app, same store/device/chart/genre, other countries, breakout dates at most N days apart.
spread as (

    select
        b.chart_id,
        b.app_id,
        b.breakout_date,
        count(distinct o.country) as country_spread,
        list_sort(list_distinct(list(o.country))) as spread_countries
    from breakouts as b
    inner join breakouts as o
        on o.app_id = b.app_id
        and o.store = b.store
        and o.device = b.device
        and o.chart = b.chart
        and o.genre_id is not distinct from b.genre_id
        and abs(date_diff('day', o.breakout_date, b.breakout_date)) <= {{ spread_days }}
    group by b.chart_id, b.app_id, b.breakout_date

),

rebuilt as (

    select
        b.chart_id,
        b.store,
        b.country,
        b.device,
        b.chart,
        b.genre_id,
        b.app_id,
        b.app_name,
        b.surge_start_date,
        b.breakout_date,
        b.surge_start_rank,
        b.surge_start_rank is null as from_outside_chart,
        cast(b.surge_start_position as integer) as surge_start_position,
        b.breakout_rank,
        cast(b.surge_days as integer) as surge_days,
        b.velocity_ranks_per_day,
        cast(s.country_spread as integer) as country_spread,
        s.spread_countries,
        cast(t.run_days as integer) as days_in_top_n,
        t.run_end as last_top_n_date,
        cast(t.best_rank as integer) as best_rank_in_run,
        t.run_end = l.last_chart_date as still_in_top_n
    from breakouts as b
    inner join spread as s using (chart_id, app_id, breakout_date)
    inner join top_n_runs as t
        on t.chart_id = b.chart_id
        and t.app_id = b.app_id
        and t.run_start = b.breakout_date
    inner join last_days as l on l.chart_id = b.chart_id
    {% if incremental %}where b.breakout_date >= {{ min_date() }} - {{ spread_days }}{% endif %}

)

{% if incremental %}

-- The run in the top N that continues, from the window's first day, a run reaching the chart's last day before it.
, continuations as (

    select
        t.chart_id,
        t.app_id,
        count(*) as run_days,
        max(t.chart_date) as run_end,
        min(t.rank) as best_rank
    from (
        select
            *,
            day_index - row_number() over (partition by chart_id, app_id order by day_index) as island
        from top_n_days
        where chart_date >= {{ min_date() }}
    ) as t
    inner join last_days as l on l.chart_id = t.chart_id
    group by t.chart_id, t.app_id, t.island
    having min(t.day_index) = any_value(l.prev_day_index) + 1

),

continued as (

    select o.* replace (
        cast(l.prev_day_index - d.day_index + 1 + coalesce(c.run_days, 0) as integer) as days_in_top_n,
        coalesce(c.run_end, l.prev_chart_date) as last_top_n_date,
        cast(least(o.best_rank_in_run, coalesce(c.best_rank, o.best_rank_in_run)) as integer) as best_rank_in_run,
        coalesce(c.run_end, l.prev_chart_date) = l.last_chart_date as still_in_top_n
    )
    from {{ this }} as o
    inner join last_days as l on l.chart_id = o.chart_id
    inner join {{ ref('int_chart_days') }} as d
        on d.chart_id = o.chart_id
        and d.chart_date = o.breakout_date
    left join continuations as c
        on c.chart_id = o.chart_id
        and c.app_id = o.app_id
    where o.breakout_date < {{ min_date() }} - {{ spread_days }}
        and o.last_top_n_date >= l.prev_chart_date

)

select * from rebuilt
union all by name
select * from continued

{% else %}

select * from rebuilt

{% endif %}
