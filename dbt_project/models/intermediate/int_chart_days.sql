-- One row per chart series and captured day: the calendar that "previous day" means.
-- A table rebuilt in full each run: it is small (one row per chart payload) and every incremental model
-- looks days up in it, including days outside its own window.
with

chart_days as (

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
    from {{ ref('stg_apple__chart_entries') }}
    group by all

)

select
    *,
    row_number() over w as day_index,
    lag(chart_date) over w as previous_chart_date,
    lead(chart_date) over w as next_chart_date
from chart_days
window w as (partition by chart_id order by chart_date)
