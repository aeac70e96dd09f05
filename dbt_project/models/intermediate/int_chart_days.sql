-- One row per chart series and captured day: the calendar that "previous day" means.
--
-- Incremental by chart_date: a run computes the days of its window from fct_chart_entries (the same rows as
-- staging, as a table), and continues each chart's day index and previous day from this table's last row
-- before the window. Adding a day also changes the next_chart_date of the chart's previous captured day, so
-- the run re-emits every row of those earlier dates too (delete+insert replaces whole dates). Like
-- mart_daily_rankings, days must be built in order: a full build equals a day-by-day build (tests/dbt).
with

window_days as (

    select
        chart_id,
        store,
        country,
        device,
        chart,
        genre_id,
        chart_date,
        any_value(payload_sha256) as payload_sha256,
        count(*) as entry_count,
        max(rank) as max_rank
    from {{ ref('fct_chart_entries') }}
    where {{ in_date_window('chart_date') }}
    group by all

),

{% if is_incremental() %}

-- Each chart's last captured day before the window (day_index grows with chart_date) ...
before_window as (

    select chart_id, max(chart_date) as chart_date, max(day_index) as day_index
    from {{ this }}
    where chart_date < {{ min_date() }}
    group by chart_id

),

-- ... and its first captured day after the window, if later days were built already.
after_window as (

    select chart_id, min(chart_date) as chart_date
    from {{ this }}
    where chart_date >= {{ max_date() }}
    group by chart_id

),

{% else %}

before_window as (
    select cast(null as varchar) as chart_id, cast(null as date) as chart_date, cast(null as bigint) as day_index
    where false
),

after_window as (
    select cast(null as varchar) as chart_id, cast(null as date) as chart_date
    where false
),

{% endif %}

window_rows as (

    select
        w.*,
        coalesce(b.day_index, 0) + row_number() over s as day_index,
        coalesce(lag(w.chart_date) over s, b.chart_date) as previous_chart_date,
        coalesce(lead(w.chart_date) over s, a.chart_date) as next_chart_date
    from window_days as w
    left join before_window as b using (chart_id)
    left join after_window as a using (chart_id)
    window s as (partition by w.chart_id order by w.chart_date)

)

{% if is_incremental() %}

, first_in_window as (

    select chart_id, min(chart_date) as chart_date
    from window_days
    group by chart_id

),

-- Every row of the dates that hold some chart's last day before the window, unchanged except that day's
-- next_chart_date, which now points into the window (or past it, if the chart has no day in the window).
refreshed_rows as (

    select t.* replace (
        case
            when t.chart_date = b.chart_date then coalesce(f.chart_date, a.chart_date)
            else t.next_chart_date
        end as next_chart_date
    )
    from {{ this }} as t
    left join before_window as b using (chart_id)
    left join first_in_window as f using (chart_id)
    left join after_window as a using (chart_id)
    where t.chart_date in (select chart_date from before_window)

)

select * from window_rows
union all by name
select * from refreshed_rows

{% else %}

select * from window_rows

{% endif %}
