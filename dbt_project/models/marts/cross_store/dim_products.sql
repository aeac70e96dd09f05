-- Products across stores: one row per product of the product_apps seed, with its app id on each store and
-- the name each store shows today (dim_apps' current version; null while the app has never charted).
with

apps as (

    select product_id, product_name, store, app_id from {{ ref('product_apps') }}

),

current_names as (

    select app_id, app_name from {{ ref('dim_apps') }} where is_current

)

select
    a.product_id,
    any_value(a.product_name) as product_name,
    max(a.app_id) filter (where a.store = 'apple') as apple_app_id,
    max(a.app_id) filter (where a.store = 'google_play') as google_play_app_id,
    max(n.app_name) filter (where a.store = 'apple') as apple_app_name,
    max(n.app_name) filter (where a.store = 'google_play') as google_play_app_name,
    count(distinct a.store) as stores_mapped,
    count(distinct a.store) filter (where n.app_id is not null) as stores_charted
from apps as a
left join current_names as n on n.app_id = a.app_id
group by a.product_id
