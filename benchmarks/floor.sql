-- The DuckDB floor: the same marts as the dbt project, from the same raw rows, by one hand-written script in
-- one DuckDB process. No orchestration, no checks, no snapshots, no incremental bookkeeping: what plain DuckDB
-- needs at least. benchmarks/run.py times it and checks that every table equals the lake's mart.
--
-- Reads `lake.raw.chart_entries` (the lake attached read-only) and the watch-list seed; writes tables into the
-- session's default in-memory database (schema `floor`). $top_n, $from_rank, $within_days and $spread_days are
-- filled from dbt_project.yml's vars and $watchlist_csv with the seed's path, so both sides use one rule set.

create schema if not exists floor;

create or replace temp table watchlist as
select app_id, app_name
from read_csv('$watchlist_csv', header = true, columns = {'app_id': 'varchar', 'app_name': 'varchar'});

-- Current payload version of every chart key, then its rows, typed and normalised like the staging model.
create or replace temp table entries as
with raw as (
    select
        lower(trim(store)) as store,
        lower(trim(country)) as country,
        lower(trim(device)) as device,
        lower(trim(chart)) as chart,
        cast(genre_id as integer) as genre_id,
        chart_date,
        rank,
        trim(app_id) as app_id,
        nullif(nfc_normalize(trim(app_name)), '') as app_name,
        nullif(nfc_normalize(trim(developer_name)), '') as developer_name,
        nullif(trim(developer_id), '') as developer_id,
        nullif(nfc_normalize(trim(genre_name)), '') as genre_name,
        release_date,
        price,
        upper(nullif(trim(currency), '')) as currency,
        nullif(trim(url), '') as url,
        payload_sha256, source_url, source_format, fetched_at, run_id, ingested_at
    from lake.raw.chart_entries
),
current_versions as (
    select store, country, device, chart, genre_id, chart_date, payload_sha256, fetched_at, ingested_at
    from (select distinct store, country, device, chart, genre_id, chart_date, payload_sha256, fetched_at,
                 ingested_at from raw)
    qualify row_number() over (
        partition by store, country, device, chart, genre_id, chart_date
        order by fetched_at desc nulls last, ingested_at desc nulls last, payload_sha256 desc) = 1
)
select
    r.store || '/' || r.country || '/' || r.device || '/' || r.chart || '/'
        || coalesce(cast(r.genre_id as varchar), 'all') as chart_id,
    r.*
from raw as r
semi join current_versions as v
    on r.store = v.store and r.country = v.country and r.device = v.device and r.chart = v.chart
    and r.genre_id is not distinct from v.genre_id and r.chart_date = v.chart_date
    and r.payload_sha256 = v.payload_sha256
    and r.fetched_at is not distinct from v.fetched_at and r.ingested_at is not distinct from v.ingested_at;

create or replace table floor.fct_chart_entries as
select chart_id, store, country, device, chart, genre_id, chart_date, rank, app_id, app_name, developer_name,
       developer_id, genre_name, release_date, price, currency, url, payload_sha256, source_url, source_format,
       fetched_at, run_id, ingested_at
from entries;

-- One row per chart series and captured day: "previous day" means the chart's previous captured day.
create or replace temp table chart_days as
select
    *,
    row_number() over w as day_index,
    lag(chart_date) over w as previous_chart_date
from (
    select chart_id, store, country, device, chart, genre_id, chart_date, count(*) as entry_count,
           max(rank) as max_rank
    from entries
    group by all
)
window w as (partition by chart_id order by chart_date);

-- Rankings: every running figure is a window over the chart x app sequence, over the whole history at once.
create or replace table floor.mart_daily_rankings as
with seq as (
    select
        e.chart_id, e.store, e.country, e.device, e.chart, e.genre_id, e.chart_date, e.rank, e.app_id,
        e.app_name, e.developer_name, e.payload_sha256, d.day_index, d.previous_chart_date,
        lag(d.day_index) over w as last_day_index,
        lag(e.rank) over w as last_rank,
        count(*) over wr as days_in_chart,
        min(e.rank) over wr as peak_rank_to_date,
        min(e.chart_date) over wr as first_chart_date
    from entries as e
    join chart_days as d using (chart_id, chart_date)
    window w as (partition by e.chart_id, e.app_id order by d.day_index),
           wr as (partition by e.chart_id, e.app_id order by d.day_index
                  rows between unbounded preceding and current row)
),
runs as (
    select *,
        sum(case when rank = 1 and last_day_index = day_index - 1 and last_rank = 1 then 0 else 1 end)
            over (partition by chart_id, app_id order by day_index
                  rows between unbounded preceding and current row) as run_at_1
    from seq
)
select
    chart_id, store, country, device, chart, genre_id, chart_date, rank, app_id, app_name, developer_name,
    previous_chart_date,
    case when last_day_index = day_index - 1 then last_rank end as previous_rank,
    case when last_day_index = day_index - 1 then last_rank - rank end as rank_delta,
    last_day_index is null as is_new_entry,
    last_day_index is not null and last_day_index <> day_index - 1 as is_re_entry,
    cast(days_in_chart as integer) as days_in_chart,
    cast(case when rank = 1 then row_number() over (partition by chart_id, app_id, run_at_1 order by day_index)
              else 0 end as integer) as streak_at_1,
    cast(peak_rank_to_date as integer) as peak_rank_to_date,
    first_chart_date,
    payload_sha256
from runs;

-- Watch-list apps overtaken: in the chart yesterday and today, passed by an app that was below it or outside.
create or replace temp table overtaken as
with h as (
    select r.* from floor.mart_daily_rankings as r semi join watchlist as w on r.app_id = w.app_id
    where r.previous_rank is not null
),
per_app as (
    select h.chart_id, h.chart_date, h.app_id, any_value(h.app_name) as app_name, any_value(h.rank) as rank
    from h
    join floor.mart_daily_rankings as o
        on o.chart_id = h.chart_id and o.chart_date = h.chart_date and o.rank < h.rank
    where o.previous_rank is null or o.previous_rank > h.previous_rank
    group by h.chart_id, h.chart_date, h.app_id
)
select
    p.chart_id, p.chart_date,
    count(*) as watchlist_overtaken_count,
    list(p.app_id order by p.rank) as watchlist_overtaken_app_ids,
    string_agg(coalesce(w.app_name, p.app_name), ', ' order by p.rank) as watchlist_overtaken_apps
from per_app as p
left join watchlist as w on p.app_id = w.app_id
group by p.chart_id, p.chart_date;

create or replace table floor.mart_daily_country_summary as
with today as (
    select
        chart_id, chart_date,
        arg_min_null(app_id, rank) filter (where rank = 1) as number_one_app_id,
        arg_min_null(app_name, rank) filter (where rank = 1) as number_one_app_name,
        count(*) filter (where rank <= $top_n) as top_n_size,
        count(*) filter (where rank <= 100) as top_100_size,
        count(*) filter (where rank <= $top_n and coalesce(previous_rank > $top_n, true)) as top_n_entries,
        list(app_id order by rank) filter (where rank <= $top_n and coalesce(previous_rank > $top_n, true))
            as top_n_entered_app_ids,
        count(*) filter (where rank <= 100 and coalesce(previous_rank > 100, true)) as top_100_entries,
        count(*) filter (where previous_rank is null) as chart_entries,
        count(*) filter (where is_re_entry) as chart_re_entries
    from floor.mart_daily_rankings
    group by chart_id, chart_date
),
-- Yesterday's rows with the same app's rank today: a left join of each day to its previous chart day.
yesterday as (
    select
        d.chart_id, d.chart_date,
        count(*) filter (where p.rank <= $top_n and coalesce(t.rank > $top_n, true)) as top_n_exits,
        list(p.app_id order by p.rank) filter (where p.rank <= $top_n and coalesce(t.rank > $top_n, true))
            as top_n_exited_app_ids,
        count(*) filter (where p.rank <= 100 and coalesce(t.rank > 100, true)) as top_100_exits,
        count(*) filter (where t.rank is null) as chart_exits,
        list(p.app_id order by p.rank) filter (where t.rank is null) as chart_exited_app_ids
    from chart_days as d
    join entries as p on p.chart_id = d.chart_id and p.chart_date = d.previous_chart_date
    left join entries as t on t.chart_id = d.chart_id and t.chart_date = d.chart_date and t.app_id = p.app_id
    group by d.chart_id, d.chart_date
),
days as (
    select chart_id, store, country, device, chart, genre_id, chart_date, previous_chart_date, entry_count
    from chart_days
)
select
    d.chart_id, d.store, d.country, d.device, d.chart, d.genre_id, d.chart_date, d.previous_chart_date,
    cast(d.entry_count as integer) as chart_size,
    t.number_one_app_id,
    t.number_one_app_name,
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
left join today as t using (chart_id, chart_date)
left join yesterday as y using (chart_id, chart_date)
left join overtaken as o using (chart_id, chart_date);

-- Breakouts: into the top N from below $from_rank (or outside the chart) within $within_days days.
create or replace table floor.mart_breakouts as
with top as (
    select r.*, d.day_index
    from floor.mart_daily_rankings as r join chart_days as d using (chart_id, chart_date)
    where r.rank <= $top_n
),
candidates as (
    select * from top where coalesce(previous_rank > $top_n, true)
),
surge_starts as (
    select
        c.chart_id, c.app_id, c.chart_date as breakout_date,
        d.chart_date as surge_start_date,
        r.rank as surge_start_rank,
        coalesce(r.rank, d.max_rank + 1) as surge_start_position
    from candidates as c
    join chart_days as d
        on d.chart_id = c.chart_id
        and d.chart_date between c.chart_date - $within_days and c.chart_date - 1
    left join floor.mart_daily_rankings as r
        on r.chart_id = c.chart_id and r.app_id = c.app_id and r.chart_date = d.chart_date
    where r.rank is null or r.rank > $from_rank
    qualify row_number() over (partition by c.chart_id, c.app_id, c.chart_date order by d.chart_date desc) = 1
),
breakouts as (
    select
        c.chart_id, c.store, c.country, c.device, c.chart, c.genre_id, c.app_id, c.app_name,
        c.chart_date as breakout_date, c.rank as breakout_rank,
        s.surge_start_date, s.surge_start_rank, s.surge_start_position,
        date_diff('day', s.surge_start_date, c.chart_date) as surge_days
    from candidates as c
    join surge_starts as s
        on s.chart_id = c.chart_id and s.app_id = c.app_id and s.breakout_date = c.chart_date
),
runs as (
    select chart_id, app_id, min(chart_date) as run_start, max(chart_date) as run_end, count(*) as run_days,
           min(rank) as best_rank
    from (select *, day_index - row_number() over (partition by chart_id, app_id order by day_index) as island
          from top)
    group by chart_id, app_id, island
),
spread as (
    select b.chart_id, b.app_id, b.breakout_date,
           count(distinct o.country) as country_spread,
           list_sort(list_distinct(list(o.country))) as spread_countries
    from breakouts as b
    join breakouts as o
        on o.app_id = b.app_id and o.store = b.store and o.device = b.device and o.chart = b.chart
        and o.genre_id is not distinct from b.genre_id
        and abs(date_diff('day', o.breakout_date, b.breakout_date)) <= $spread_days
    group by b.chart_id, b.app_id, b.breakout_date
),
last_days as (
    select chart_id, max(chart_date) as last_chart_date from chart_days group by chart_id
)
select
    b.chart_id, b.store, b.country, b.device, b.chart, b.genre_id, b.app_id, b.app_name,
    b.surge_start_date, b.breakout_date, b.surge_start_rank,
    b.surge_start_rank is null as from_outside_chart,
    cast(b.surge_start_position as integer) as surge_start_position,
    b.breakout_rank,
    cast(b.surge_days as integer) as surge_days,
    round((b.surge_start_position - b.breakout_rank) / b.surge_days, 2) as velocity_ranks_per_day,
    cast(s.country_spread as integer) as country_spread,
    s.spread_countries,
    cast(t.run_days as integer) as days_in_top_n,
    t.run_end as last_top_n_date,
    cast(t.best_rank as integer) as best_rank_in_run,
    t.run_end = l.last_chart_date as still_in_top_n
from breakouts as b
join spread as s using (chart_id, app_id, breakout_date)
join runs as t on t.chart_id = b.chart_id and t.app_id = b.app_id and t.run_start = b.breakout_date
join last_days as l on l.chart_id = b.chart_id;

-- Apps with their name/developer history: one name per app and day (the US one if it charted there, else the
-- most frequent, then the first alphabetically), a new version whenever that name or the developer changes.
create or replace table floor.dim_apps as
with candidates as (
    select app_id, chart_date, app_name, developer_name, count(*) as n_rows, bool_or(country = 'us') as seen_in_us
    from entries
    group by all
),
per_day as (
    select app_id, chart_date, max(developer_id) as developer_id
    from entries
    group by all
),
-- Every name and developer of the day as the payloads wrote them (only ASCII spaces trimmed), from every
-- payload version of the day's charts, not only the current one.
seen as (
    select trim(cast(app_id as varchar)) as app_id, chart_date,
           list_sort(list_distinct(list(nullif(trim(app_name, ' '), '')))) as names_seen,
           list_sort(list_distinct(list(nullif(trim(developer_name, ' '), '')))) as developers_seen
    from lake.raw.chart_entries
    group by all
),
daily as (
    select c.app_id, c.chart_date, c.app_name, c.developer_name, p.developer_id, s.names_seen, s.developers_seen
    from candidates as c join per_day as p using (app_id, chart_date) join seen as s using (app_id, chart_date)
    qualify row_number() over (
        partition by c.app_id, c.chart_date
        order by c.seen_in_us desc, c.n_rows desc, c.app_name nulls last, c.developer_name nulls last) = 1
),
changes as (
    select *,
        case when lag(app_name) over w is not distinct from app_name
                  and lag(developer_name) over w is not distinct from developer_name
                  and lag(chart_date) over w is not null then 0 else 1 end as starts_version
    from daily
    window w as (partition by app_id order by chart_date)
),
numbered as (
    select *,
        sum(starts_version) over (partition by app_id order by chart_date
                                  rows between unbounded preceding and current row) as version_number
    from changes
),
versions as (
    select app_id, version_number, any_value(app_name) as app_name, any_value(developer_name) as developer_name,
           max(developer_id) as developer_id, min(chart_date) as valid_from, max(chart_date) as last_seen_date,
           count(*) as days_seen
    from numbered
    group by app_id, version_number
),
known_names as (
    select app_id, list_sort(list_distinct(flatten(list(names_seen)))) as known_names,
           list_sort(list_distinct(flatten(list(developers_seen)))) as known_developers
    from daily
    group by app_id
)
select
    v.app_id,
    cast(v.version_number as integer) as version_number,
    v.app_name, v.developer_name, v.developer_id, v.valid_from,
    lead(v.valid_from) over (partition by v.app_id order by v.valid_from) as valid_to,
    lead(v.valid_from) over (partition by v.app_id order by v.valid_from) is null as is_current,
    v.last_seen_date,
    cast(v.days_seen as integer) as days_seen,
    n.known_names,
    w.app_id is not null as is_watchlisted,
    n.known_developers
from versions as v
join known_names as n using (app_id)
left join watchlist as w on w.app_id = v.app_id;
