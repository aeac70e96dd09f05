-- Where did a product rank on each store, each day: one row per product × country × chart × chart_date on
-- which either store captured that country's overall chart, with the product's rank on each (null: not in the
-- chart that day, or that store's chart was not captured: see *_chart_captured). Apple's side is the iPhone
-- chart (the analysts' chart; iPad ranks stay in mart_daily_rankings), Play's the android one. Ranks are each
-- store's own, side by side, never combined into one rank.
with

apps as (

    select product_id, product_name, store, app_id from {{ ref('product_apps') }}

),

overall as (

    select store, country, chart, chart_date, app_id, rank, previous_rank
    from {{ ref('mart_daily_rankings') }}
    where genre_id is null
      and ((store = 'apple' and device = 'iphone') or (store = 'google_play' and device = 'android'))

),

-- The chart days each store captured: tells "not in the chart" from "no chart that day".
captured as (

    select distinct store, country, chart, chart_date from overall

),

product_ranks as (

    select a.product_id, a.product_name, o.store, o.country, o.chart, o.chart_date, o.rank, o.previous_rank
    from overall as o
    inner join apps as a on a.store = o.store and a.app_id = o.app_id

),

product_days as (

    select distinct product_id, product_name, country, chart, chart_date from product_ranks

)

select
    d.product_id,
    d.product_name,
    d.country,
    d.chart,
    d.chart_date,
    pa.app_id as apple_app_id,
    ra.rank as apple_rank,
    ra.previous_rank as apple_previous_rank,
    ca.chart_date is not null as apple_chart_captured,
    pg.app_id as google_play_app_id,
    rg.rank as google_play_rank,
    rg.previous_rank as google_play_previous_rank,
    cg.chart_date is not null as google_play_chart_captured,
    ra.rank is not null and rg.rank is not null as ranked_on_both_stores,
    least(ra.rank, rg.rank) as best_rank
from product_days as d
left join apps as pa on pa.product_id = d.product_id and pa.store = 'apple'
left join apps as pg on pg.product_id = d.product_id and pg.store = 'google_play'
left join product_ranks as ra
    on ra.product_id = d.product_id and ra.store = 'apple'
    and ra.country = d.country and ra.chart = d.chart and ra.chart_date = d.chart_date
left join product_ranks as rg
    on rg.product_id = d.product_id and rg.store = 'google_play'
    and rg.country = d.country and rg.chart = d.chart and rg.chart_date = d.chart_date
left join captured as ca
    on ca.store = 'apple' and ca.country = d.country and ca.chart = d.chart and ca.chart_date = d.chart_date
left join captured as cg
    on cg.store = 'google_play' and cg.country = d.country and cg.chart = d.chart and cg.chart_date = d.chart_date
