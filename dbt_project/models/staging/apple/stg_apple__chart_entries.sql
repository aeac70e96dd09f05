-- Current version of every chart position: typed and normalised. Which payload version of a chart key is
-- current is the raw layer's decision (source raw.payload_versions: newest capture not quarantined); this model
-- only keeps that version's rows and renames them.
--
-- Readers filter this view by chart_date (fct_chart_entries reads one day in an update), and the filter must
-- reach the raw scan, or every read re-runs the version rule over all history. So the CTEs are inlined
-- (NOT MATERIALIZED: a CTE read twice is otherwise materialised over every raw row, and filters stop at it),
-- and the current version is picked with an inner join (raw_entries_of_versions, macros/staging.sql).
-- The version relation is per chart key, and chart_date is part of the key, so filtering first changes no result.
-- payload_versions is a view over the quarantine: depending on the quarantine asset too makes every run that
-- materializes both (daily_job) judge the day before staging reads it.
-- depends_on: {{ source('raw', 'quarantined_payloads') }}
with

source as not materialized (

    {{ raw_entries_of_versions('v.is_current') }}

),

renamed as not materialized (

    select
        {{- normalised_columns('store', 'country', 'device', 'chart', 'genre_id', 'chart_date', 'rank', 'app_id') }},
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

)

select
    {{ chart_id('store', 'country', 'device', 'chart', 'genre_id') }} as chart_id,
    *
from renamed
