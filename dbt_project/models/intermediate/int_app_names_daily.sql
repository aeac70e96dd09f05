{#- names_seen / developers_seen were added to a table that existing homes already hold: they gain the columns
    on their next run instead of failing until a full refresh. -#}
{{ config(on_schema_change='append_new_columns') }}
-- The name an app goes by on a day, across all storefronts: the base of dim_apps' name history.
-- Names are localised per storefront, so one name is chosen per day: the US storefront's if the app
-- charted there (analysts read English names), else the name seen in the most charts, then the
-- alphabetically first, so the choice is deterministic. names_seen / developers_seen keep every name and
-- developer of the day verbatim, from every version of the day's charts (stg_apple__app_names).
with

entries as (

    select app_id, chart_date, country, app_name, developer_name, developer_id
    from {{ ref('fct_chart_entries') }}
    where {{ in_date_window('chart_date') }}

),

candidates as (

    select
        app_id,
        chart_date,
        app_name,
        developer_name,
        count(*) as n_rows,
        bool_or(country = 'us') as seen_in_us
    from entries
    group by all

),

chosen as (

    select app_id, chart_date, app_name, developer_name
    from candidates
    qualify row_number() over (
        partition by app_id, chart_date
        order by seen_in_us desc, n_rows desc, app_name nulls last, developer_name nulls last
    ) = 1

),

per_day as (

    select
        app_id,
        chart_date,
        max(developer_id) as developer_id,
        count(distinct country) as countries_charted
    from entries
    group by all

),

-- Every name and developer of the day, verbatim, from every version of the day's charts (not only the current).
seen as (

    select
        app_id,
        chart_date,
        list_sort(list_distinct(list(app_name))) as names_seen,
        list_sort(list_distinct(list(developer_name))) as developers_seen
    from {{ ref('stg_apple__app_names') }}
    where {{ in_date_window('chart_date') }}
    group by all

)

select
    c.app_id,
    c.chart_date,
    c.app_name,
    c.developer_name,
    p.developer_id,
    p.countries_charted,
    s.names_seen,
    s.developers_seen
from chosen as c
inner join per_day as p using (app_id, chart_date)
left join seen as s using (app_id, chart_date)
