{#- One row per app x version, rebuilt per app (not per date); known_names / known_developers were added to a
    table existing homes already hold: they gain the columns instead of failing until a full refresh. -#}
{{
    config(
        unique_key='app_id',
        on_schema_change='append_new_columns',
        pre_hook="{{ dim_apps_drop_vanished_apps() }}"
    )
}}
-- Apps with their name and developer history: a new version starts on the first day the app's daily name
-- (int_app_names_daily) or developer differs from the day before. One row per app × version; valid_to is
-- the next version's valid_from (exclusive), null for the current version.
--
-- An app's rows depend on its own daily names only, so a run rebuilds (delete+insert by app_id) the whole
-- history of the apps the window can change: those seen in the window, and those this table last saw on or
-- after its start (their days in the window may be gone). Other apps keep their rows.
with

{% if is_incremental() %}

affected_apps as (

    select app_id from {{ ref('int_app_names_daily') }} where {{ in_date_window('chart_date') }}
    union
    select app_id from {{ this }} where last_seen_date >= {{ min_date() }}

),

{% endif %}

daily as (

    select d.app_id, d.chart_date, d.app_name, d.developer_name, d.developer_id, d.names_seen, d.developers_seen
    from {{ ref('int_app_names_daily') }} as d
    {% if is_incremental() %}
    semi join affected_apps as a on d.app_id = a.app_id
    {% endif %}

),

changes as (

    select
        *,
        case
            when lag(app_name) over w is not distinct from app_name
                and lag(developer_name) over w is not distinct from developer_name
                and lag(chart_date) over w is not null
            then 0
            else 1
        end as starts_version
    from daily
    window w as (partition by app_id order by chart_date)

),

numbered as (

    select
        *,
        sum(starts_version) over (
            partition by app_id order by chart_date rows between unbounded preceding and current row
        ) as version_number
    from changes

),

versions as (

    select
        app_id,
        version_number,
        any_value(app_name) as app_name,
        any_value(developer_name) as developer_name,
        max(developer_id) as developer_id,
        min(chart_date) as valid_from,
        max(chart_date) as last_seen_date,
        count(*) as days_seen
    from numbered
    group by app_id, version_number

),

known_names as (

    select
        app_id,
        list_sort(list_distinct(flatten(list(names_seen)))) as known_names,
        list_sort(list_distinct(flatten(list(developers_seen)))) as known_developers
    from daily
    group by app_id

)

select
    v.app_id,
    cast(v.version_number as integer) as version_number,
    v.app_name,
    v.developer_name,
    v.developer_id,
    v.valid_from,
    lead(v.valid_from) over (partition by v.app_id order by v.valid_from) as valid_to,
    lead(v.valid_from) over (partition by v.app_id order by v.valid_from) is null as is_current,
    v.last_seen_date,
    cast(v.days_seen as integer) as days_seen,
    n.known_names,
    w.app_id is not null as is_watchlisted,
    -- last: an older home's table gets it appended (on_schema_change), so both orders agree
    n.known_developers
from versions as v
inner join known_names as n using (app_id)
left join {{ ref('watchlist') }} as w on w.app_id = v.app_id
