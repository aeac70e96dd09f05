-- The day's ranking of every chart with its history: previous rank, delta, new entry / re-entry, days in
-- chart, streak at #1, peak rank to date.
--
-- "Previous day" is the chart's previous captured day (int_chart_days), so a day that was not fetched
-- does not turn the whole chart into re-entries. Running figures (days in chart, peak, streak) are window
-- functions over each chart × app sequence. An incremental run computes them only for its date window,
-- continuing from each app's last row before the window in this table (one aggregate over the table,
-- no self-join over history); so days must be built in order, which Dagster's daily partitions do. A
-- full build and a day-by-day build give the same rows (tests/dbt checks it).
with

entries as (

    select
        e.chart_id,
        e.store,
        e.country,
        e.device,
        e.chart,
        e.genre_id,
        e.chart_date,
        e.rank,
        e.app_id,
        e.app_name,
        e.developer_name,
        e.payload_sha256,
        d.day_index,
        d.previous_chart_date,
        false as is_prior
    from {{ ref('fct_chart_entries') }} as e
    inner join {{ ref('int_chart_days') }} as d
        on e.chart_id = d.chart_id
        and e.chart_date = d.chart_date
    where {{ in_date_window('e.chart_date') }}

),

{% if is_incremental() %}

-- Only the chart × app pairs of the window, filtered before the aggregate: grouping all history is what
-- would grow with it.
prior_state as (

    select
        t.chart_id,
        t.app_id,
        max(t.chart_date) as chart_date,
        arg_max_null(t.rank, t.chart_date) as rank,
        max(t.days_in_chart) as prior_days_in_chart,
        min(t.peak_rank_to_date) as prior_peak_rank,
        arg_max_null(t.streak_at_1, t.chart_date) as prior_streak_at_1,
        min(t.first_chart_date) as prior_first_chart_date
    from {{ this }} as t
    semi join (select distinct chart_id, app_id from entries) as w
        on t.chart_id = w.chart_id
        and t.app_id = w.app_id
    where t.chart_date < {{ min_date() }}
    group by t.chart_id, t.app_id

),

prior as (

    select
        p.*,
        d.day_index,
        true as is_prior
    from prior_state as p
    inner join {{ ref('int_chart_days') }} as d
        on p.chart_id = d.chart_id
        and p.chart_date = d.chart_date

),

combined as (

    select * from entries
    union all by name
    select * from prior

),

{% else %}

combined as (

    select
        *,
        cast(null as bigint) as prior_days_in_chart,
        cast(null as integer) as prior_peak_rank,
        cast(null as bigint) as prior_streak_at_1,
        cast(null as date) as prior_first_chart_date
    from entries

),

{% endif %}

sequenced as (

    select
        *,
        lag(day_index) over w as last_day_index,
        lag(rank) over w as last_rank
    from combined
    window w as (partition by chart_id, app_id order by day_index)

),

flagged as (

    select
        *,
        coalesce(last_day_index = day_index - 1, false) as was_in_chart_previous_day,
        -- 1 where a row does not continue a run at #1 from the previous chart day: runs are numbered by
        -- the running sum of these breaks.
        case
            when rank = 1 and last_day_index = day_index - 1 and last_rank = 1 then 0
            else 1
        end as breaks_run_at_1
    from sequenced

),

running as (

    select
        *,
        sum(case when is_prior then prior_days_in_chart else 1 end) over w as days_in_chart,
        min(case when is_prior then prior_peak_rank else rank end) over w as peak_rank_to_date,
        min(case when is_prior then prior_first_chart_date else chart_date end) over w as first_chart_date,
        sum(breaks_run_at_1) over w as run_at_1
    from flagged
    window w as (
        partition by chart_id, app_id
        order by day_index
        rows between unbounded preceding and current row
    )

),

streaks as (

    select
        *,
        case
            when rank = 1 then
                first_value(case when is_prior then prior_streak_at_1 else 1 end) over w
                + row_number() over w - 1
            else 0
        end as streak_at_1
    from running
    window w as (partition by chart_id, app_id, run_at_1 order by day_index)

)

select
    chart_id,
    store,
    country,
    device,
    chart,
    genre_id,
    chart_date,
    rank,
    app_id,
    app_name,
    developer_name,
    previous_chart_date,
    case when was_in_chart_previous_day then last_rank end as previous_rank,
    case when was_in_chart_previous_day then last_rank - rank end as rank_delta,
    last_day_index is null as is_new_entry,
    last_day_index is not null and not was_in_chart_previous_day as is_re_entry,
    cast(days_in_chart as integer) as days_in_chart,
    cast(streak_at_1 as integer) as streak_at_1,
    cast(peak_rank_to_date as integer) as peak_rank_to_date,
    first_chart_date,
    payload_sha256
from streaks
where not is_prior
