-- Current version of every chart position: typed, normalised, one payload version per chart key.
--
-- Readers filter this view by chart_date (fct_chart_entries reads one day in an update), and the filter must
-- reach the raw scan, or every read re-runs the version rule over all history. So the CTEs are inlined
-- (NOT MATERIALIZED: a CTE read twice is otherwise materialised over every raw row, and filters stop at it),
-- and the current version is picked with an inner join (one version row per chart key, so no row is
-- duplicated) rather than a semi join, because DuckDB carries a filter to both sides of an inner join only.
-- Every step is per chart key, and chart_date is part of the key, so filtering first changes no result.
with

source as not materialized (

    select * from {{ source('raw', 'chart_entries') }}

),

-- Payloads the raw quality check held back: they stay in raw for lineage, but never reach the marts, so the
-- previous good version of their chart (if any) stays current.
quarantined as not materialized (

    select distinct chart_date, country, payload_sha256 from {{ source('raw', 'quarantined_payloads') }}

),

renamed as not materialized (

    select
        lower(trim(store)) as store,
        lower(trim(country)) as country,
        lower(trim(device)) as device,
        lower(trim(chart)) as chart,
        cast(genre_id as integer) as genre_id,
        cast(chart_date as date) as chart_date,
        cast(rank as integer) as rank,
        trim(cast(app_id as varchar)) as app_id,
        nullif(nfc_normalize(trim(app_name)), '') as app_name,
        nullif(nfc_normalize(trim(developer_name)), '') as developer_name,
        nullif(trim(cast(developer_id as varchar)), '') as developer_id,
        nullif(nfc_normalize(trim(genre_name)), '') as genre_name,
        cast(release_date as date) as release_date,
        cast(price as decimal(10, 2)) as price,
        upper(nullif(trim(currency), '')) as currency,
        nullif(trim(url), '') as url,
        payload_sha256,
        source_url,
        source_format,
        cast(fetched_at as timestamp) as fetched_at,
        run_id,
        cast(ingested_at as timestamp) as ingested_at

    from source
    where not exists (
        select 1 from quarantined q
        where q.payload_sha256 = source.payload_sha256
          and q.chart_date = source.chart_date
          and q.country = source.country
    )

),

-- The version rule works on payloads, not rows: a few thousand payloads instead of millions of rows.
-- The latest fetch wins, then the latest ingestion (a re-ingested payload counts once), then the hash,
-- so the choice is deterministic. Earlier versions stay in raw for lineage and time travel.
versions as (

    select
        store, country, device, chart, genre_id, chart_date,
        payload_sha256, fetched_at, ingested_at
    from renamed
    group by all

),

current_versions as (

    select *
    from versions
    qualify row_number() over (
        partition by store, country, device, chart, genre_id, chart_date
        order by fetched_at desc nulls last, ingested_at desc nulls last, payload_sha256 desc
    ) = 1

)

select
    {{ chart_id('r.store', 'r.country', 'r.device', 'r.chart', 'r.genre_id') }} as chart_id,
    r.*
from renamed as r
inner join current_versions as v
    on r.store = v.store
    and r.country = v.country
    and r.device = v.device
    and r.chart = v.chart
    and r.genre_id is not distinct from v.genre_id
    and r.chart_date = v.chart_date
    and r.payload_sha256 = v.payload_sha256
    and r.fetched_at is not distinct from v.fetched_at
    and r.ingested_at is not distinct from v.ingested_at
