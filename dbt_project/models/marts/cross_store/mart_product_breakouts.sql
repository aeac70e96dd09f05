-- Did a product break out on both stores: one row per product × country × chart with a breakout (mart_breakouts'
-- rule, each store on its own chart) on at least one store; the first breakout on each store and how many days
-- the second store followed the first. Overall charts only, iPhone for Apple, android for Play.
with

apps as (

    select product_id, product_name, store, app_id from {{ ref('product_apps') }}

),

firsts as (

    select
        a.product_id,
        any_value(a.product_name) as product_name,
        b.store,
        b.country,
        b.chart,
        min(b.breakout_date) as breakout_date,
        arg_min(b.breakout_rank, b.breakout_date) as breakout_rank,
        arg_min(b.days_in_top_n, b.breakout_date) as days_in_top_n
    from {{ ref('mart_breakouts') }} as b
    inner join apps as a on a.store = b.store and a.app_id = b.app_id
    where b.genre_id is null
      and ((b.store = 'apple' and b.device = 'iphone') or (b.store = 'google_play' and b.device = 'android'))
    group by a.product_id, b.store, b.country, b.chart

)

select
    product_id,
    any_value(product_name) as product_name,
    country,
    chart,
    max(breakout_date) filter (where store = 'apple') as apple_breakout_date,
    max(breakout_rank) filter (where store = 'apple') as apple_breakout_rank,
    max(days_in_top_n) filter (where store = 'apple') as apple_days_in_top_n,
    max(breakout_date) filter (where store = 'google_play') as google_play_breakout_date,
    max(breakout_rank) filter (where store = 'google_play') as google_play_breakout_rank,
    max(days_in_top_n) filter (where store = 'google_play') as google_play_days_in_top_n,
    count(distinct store) = 2 as broke_out_on_both_stores,
    date_diff('day', max(breakout_date) filter (where store = 'apple'),
              max(breakout_date) filter (where store = 'google_play')) as google_play_days_after_apple
from firsts
group by product_id, country, chart
